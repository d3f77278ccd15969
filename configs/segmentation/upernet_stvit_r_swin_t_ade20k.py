# UperNet, STViT-R-Swin-T backbone, ADE20K 160k at 512x512: mmseg's Swin-T UperNet config with
# only the backbone swapped. Heads (UPerHead + auxiliary FCNHead), data, AdamW schedule and
# runtime are mmseg's, unchanged.
_base_ = 'mmseg::swin/swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512.py'
custom_imports = dict(imports=['stvit_mm.models', 'stvit_mm.engine'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='STViTSwin',
        arch='tiny',  # embed 96 -> stage channels 96, 192, 384, 768 = decode_head.in_channels
        recovery=True,  # STViT-R: stage-3 image tokens restored at full resolution
        drop_path_rate=0.3,  # stock value
        out_indices=(0, 1, 2, 3),  # four maps for UPerHead; the auxiliary head reads index 2
        # Swin-T ImageNet-1k weights (the stock `checkpoint_file`, mmseg's Swin layout),
        # converted on load: each Swin block initialises the unit layer at its depth; layer
        # scales and global centres are new.
        init_cfg=dict(type='Pretrained', checkpoint={{_base_.checkpoint_file}})))
