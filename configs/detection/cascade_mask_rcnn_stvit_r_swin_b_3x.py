# Cascade Mask R-CNN, STViT-R-Swin-B, COCO 3x (paper Table 6): the Swin-S config with Swin-B's
# width, drop path and ImageNet-1k weights.
_base_ = './cascade_mask_rcnn_stvit_r_swin_s_3x.py'

pretrained = 'https://github.com/SwinTransformer/storage/releases/download/v1.0.0/swin_base_patch4_window7_224.pth'  # noqa
model = dict(
    backbone=dict(
        arch='base',  # embed 128: stage channels 128, 256, 512, 1024 (= neck in_channels)
        drop_path_rate=0.3,  # Swin-B Cascade 3x (Swin and official STViT-R configs)
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=dict(in_channels=[128, 256, 512, 1024]))
