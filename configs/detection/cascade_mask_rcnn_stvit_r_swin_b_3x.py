# Cascade Mask R-CNN, STViT-R-Swin-B, COCO 3x: the authors' detector (paper Table 6, 52.2 box /
# 45.2 mask AP): the Swin-S config with Swin-B's width and drop path, initialised from the
# official STViT-R-Swin-B ImageNet classifier, as the fork's Swin-B config.
_base_ = './cascade_mask_rcnn_stvit_r_swin_s_3x.py'

pretrained = 'https://huggingface.co/csncsn/STViT-R/resolve/main/STViT-R-Swin-B.pth'
model = dict(
    backbone=dict(
        arch='base',  # embed 128: stage channels 128, 256, 512, 1024 (= neck in_channels)
        drop_path_rate=0.3,  # the fork's Swin-B config
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=dict(in_channels=[128, 256, 512, 1024]))
