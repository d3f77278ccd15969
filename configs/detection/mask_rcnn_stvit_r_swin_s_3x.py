# Mask R-CNN, STViT-R-Swin-S backbone, COCO 3x with multi-scale crop training: mmdet's Swin-S
# 3x config (AMP: AmpOptimWrapper, CUDA only) with only the backbone swapped.
_base_ = 'mmdet::swin/mask-rcnn_swin-s-p4-w7_fpn_amp-ms-crop-3x_coco.py'
custom_imports = dict(imports=['stvit_mm.models', 'stvit_mm.engine'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='STViTSwin',
        arch='small',  # embed 96 as Swin-T -> 96, 192, 384, 768 = the stock neck in_channels
        recovery=True,  # stage 3 (18 blocks) = 3 dumbbell units, each with recovery
        drop_path_rate=0.2,  # stock values from here on (Swin-S 3x keeps Swin-T's 0.2)
        out_indices=(0, 1, 2, 3),
        with_cp=False,
        init_cfg=dict(type='Pretrained', checkpoint={{_base_.pretrained}})))  # Swin-S IN-1k
