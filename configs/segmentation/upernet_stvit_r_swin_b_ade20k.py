# UperNet, STViT-R-Swin-B backbone, ADE20K 160k at 512x512 (paper: 48.9 mIoU): mmseg's Swin-B
# UperNet config with only the backbone swapped.
_base_ = 'mmseg::swin/swin-base-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512.py'
custom_imports = dict(imports=['stvit_mm.models', 'stvit_mm.engine'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='STViTSwin',
        arch='base',  # embed 128 -> 128, 256, 512, 1024 = the stock decode_head.in_channels
        recovery=True,  # stage 3 (18 blocks) = 3 dumbbell units, each with recovery
        drop_path_rate=0.3,  # stock value (inherited from the Swin-T config)
        out_indices=(0, 1, 2, 3),
        init_cfg=dict(type='Pretrained', checkpoint={{_base_.checkpoint_file}})))  # Swin-B IN-1k
