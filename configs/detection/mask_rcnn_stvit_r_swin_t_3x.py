# Mask R-CNN, STViT-R-Swin-T backbone, COCO 3x with multi-scale crop training: mmdet's Swin-T
# 3x config with only the backbone swapped (see mask_rcnn_stvit_r_swin_t.py).
_base_ = 'mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_ms-crop-3x_coco.py'
custom_imports = dict(imports=['stvit_mm.models', 'stvit_mm.engine'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='STViTSwin',
        arch='tiny',  # stage channels 96, 192, 384, 768 = stock neck in_channels
        recovery=True,
        drop_path_rate=0.2,  # stock values from here on
        out_indices=(0, 1, 2, 3),  # four maps for the stock FPN
        with_cp=False,
        init_cfg=dict(type='Pretrained', checkpoint={{_base_.pretrained}})))  # Swin-T IN-1k
