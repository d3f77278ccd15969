# UperNet, STViT-R-Swin-S backbone, ADE20K 160k at 512x512 (paper: 48.3 mIoU): mmseg's Swin-S
# UperNet config with only the backbone swapped.
_base_ = 'mmseg::swin/swin-small-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512.py'
custom_imports = dict(imports=['stvit_mm.models', 'stvit_mm.engine'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='STViTSwin',
        arch='small',  # embed 96 as Swin-T -> 96, 192, 384, 768 = decode_head.in_channels
        recovery=True,  # stage 3 (18 blocks) = 3 dumbbell units, each with recovery
        drop_path_rate=0.3,  # stock value (inherited from the Swin-T config)
        out_indices=(0, 1, 2, 3),
        init_cfg=dict(type='Pretrained', checkpoint={{_base_.checkpoint_file}})))  # Swin-S IN-1k
