# Mask R-CNN, STViT-R-Swin-T backbone, COCO 1x: mmdet's Swin-T config with only the backbone
# swapped. Neck, heads, data, AdamW schedule and runtime are mmdet's, unchanged.
_base_ = 'mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py'
custom_imports = dict(imports=['stvit_mm.models', 'stvit_mm.engine'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='STViTSwin',
        arch='tiny',  # embed 96 -> stage channels 96, 192, 384, 768 = stock neck in_channels
        recovery=True,  # STViT-R: stage-3 image tokens restored at full resolution
        drop_path_rate=0.2,  # stock values from here on
        out_indices=(0, 1, 2, 3),  # four maps for the stock FPN (len(neck.in_channels) == 4)
        with_cp=False,
        # Microsoft Swin-T ImageNet-1k weights (the stock `pretrained`), converted on load: each
        # Swin block initialises the unit layer at its depth; layer scales and centres are new.
        init_cfg=dict(type='Pretrained', checkpoint={{_base_.pretrained}})))
