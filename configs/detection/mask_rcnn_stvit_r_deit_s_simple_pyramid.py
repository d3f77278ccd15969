# Mask R-CNN with a plain-ViT backbone: STViT-R-DeiT-S (one stride-16 map) + the ViTDet-style
# STViTSimplePyramid neck (strides 4-64), COCO 1x. Base: mmdet's Swin-T Mask R-CNN 1x config, for
# its transformer optimiser (AdamW lr 1e-4, wd 0.05, no decay on norms); heads, data and schedule
# stay stock. Not ViTDet's full recipe (no LSJ 1024 crops, no layer-wise lr decay, 2fc heads).
_base_ = 'mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py'
custom_imports = dict(
    imports=['stvit_mm.models', 'stvit_mm.engine'], allow_failed_imports=False)

pretrained = 'https://download.openmmlab.com/mmclassification/v0/deit/deit-small_pt-4xb256_in1k_20220218-9425b9bb.pth'  # noqa
model = dict(
    # Inputs padded to multiples of 32: whole 16x16 patches, and an even stride-16 map so that
    # the stride-32 level is exact.
    data_preprocessor=dict(pad_size_divisor=32),
    backbone=dict(
        _delete_=True,
        type='STViT',
        arch='deit-small',  # embed 384 (= neck in_channels)
        # Position embedding stored on a 64x64 grid (1024 px, as ViTDet): the DeiT checkpoint's
        # 14x14 grid is resized once on load, and the stored grid is resized to each padded
        # batch's grid at run time, so any image size works.
        img_size=1024,
        patch_size=16,
        recovery=True,  # STViT-R: the recovered image tokens as one (B, 384, H/16, W/16) map
        drop_path_rate=0.1,
        # mmpretrain DeiT-S IN-1k classifier file: keep the 'backbone.' keys, converted on load
        init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    neck=dict(
        _delete_=True,
        type='STViTSimplePyramid',
        in_channels=384,  # = backbone embed dims
        out_channels=256,  # = rpn_head / roi extractors in_channels (stock 256)
        num_outs=5))  # strides 4..64 = rpn anchor_generator strides [4, 8, 16, 32, 64]

optim_wrapper = dict(
    paramwise_cfg=dict(custom_keys={
        'pos_embed': dict(decay_mult=0.),
        '.centres': dict(decay_mult=0.),  # global centres G: embeddings, as pos_embed
    }))
