# Cascade Mask R-CNN, STViT-R-Swin-S, COCO 3x: the authors' detector (paper Table 6, 51.8 box /
# 44.7 mask AP), as the official detection fork changsn/STViT-R-Object-Detection (mmdet 2.11)
# builds and trains it. Delta on mmdet's Cascade Mask R-CNN 1x config:
#   - backbone STViTSwin small with preset='official-det': the fork's plan (conv stem, its unit,
#     zero padding attended, docs/coco_detectors.md), initialised as the fork was, from the
#     official STViT-R-Swin-S ImageNet classifier (converted on load);
#   - neck in_channels = the backbone's stage channels;
#   - 4conv1fc bbox heads with GIoU loss (Swin detection repo) instead of 2fc + SmoothL1;
#   - the 3x data/optim/schedule of mmdet's swin/*ms-crop-3x* configs (multi-scale crop
#     training, AdamW lr 1e-4 wd 0.05, 36 epochs, steps at 27 and 33).
# RPN, RoI extractors, mask heads and test settings are mmdet's, the fork's too. The official
# runs used fp16: add `--amp` to tools/train.py on CUDA. The authors' trained file converts
# into this config with no option: tools/convert_checkpoint.py FILE OUT --from
# official-stvit-r-swin --config configs/detection/cascade_mask_rcnn_stvit_r_swin_s_3x.py
_base_ = 'mmdet::cascade_rcnn/cascade-mask-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['stvit_mm.models', 'stvit_mm.engine'], allow_failed_imports=False)
# `load_from` (and tools/test.py) of an official detector file converts it whole, refusing a
# backbone of another plan; scope named for configs inheriting this one as `stvit_mm::...`.
custom_hooks = _base_.get('custom_hooks', []) + [
    dict(type='ForeignCheckpointHook', _scope_='mmdet')]

# the fork's initialisation (its logs: the classification run without global centres)
pretrained = 'https://huggingface.co/csncsn/STViT-R/resolve/main/STViT-R-Swin-S.pth'
model = dict(
    backbone=dict(
        _delete_=True,
        type='STViTSwin',
        arch='small',  # embed 96: stage channels 96, 192, 384, 768 (= neck in_channels)
        preset='official-det',
        recovery=True,
        drop_path_rate=0.2,  # Swin-S Cascade 3x (Swin and official STViT-R configs)
        out_indices=(0, 1, 2, 3),
        with_cp=False,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=dict(in_channels=[96, 192, 384, 768]),  # must equal the backbone's stage channels
    roi_head=dict(bbox_head=[
        dict(
            type='Shared4Conv1FCBBoxHead',
            in_channels=256,
            conv_out_channels=256,
            fc_out_channels=1024,
            roi_feat_size=7,
            num_classes=80,
            bbox_coder=dict(
                type='DeltaXYWHBBoxCoder', target_means=[0., 0., 0., 0.], target_stds=stds),
            reg_class_agnostic=False,
            reg_decoded_bbox=True,  # GIoU acts on decoded boxes
            norm_cfg=dict(type='SyncBN', requires_grad=True),  # BN when not distributed
            loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
            loss_bbox=dict(type='GIoULoss', loss_weight=10.0))
        # one head per cascade stage; the box-delta stds shrink with the stage IoU (.5/.6/.7)
        for stds in ([0.1, 0.1, 0.2, 0.2], [0.05, 0.05, 0.1, 0.1], [0.033, 0.033, 0.067, 0.067])
    ]))

# Multi-scale crop training of mmdet's swin/mask-rcnn_swin-t-p4-w7_fpn_ms-crop-3x_coco.py
# (from DETR); mmengine cannot inherit it beside the cascade model (duplicate base keys).
scales = [(480, 1333), (512, 1333), (544, 1333), (576, 1333), (608, 1333), (640, 1333),
          (672, 1333), (704, 1333), (736, 1333), (768, 1333), (800, 1333)]
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomFlip', prob=0.5),
    dict(
        type='RandomChoice',
        transforms=[
            [dict(type='RandomChoiceResize', scales=scales, keep_ratio=True)],
            [
                dict(type='RandomChoiceResize', scales=[(400, 1333), (500, 1333), (600, 1333)],
                     keep_ratio=True),
                dict(type='RandomCrop', crop_type='absolute_range', crop_size=(384, 600),
                     allow_negative_crop=True),
                dict(type='RandomChoiceResize', scales=scales, keep_ratio=True)
            ]
        ]),
    dict(type='PackDetInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

max_epochs = 36
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=1000),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[27, 33],
         gamma=0.1)
]
optim_wrapper = dict(
    type='OptimWrapper',
    paramwise_cfg=dict(
        custom_keys={
            'absolute_pos_embed': dict(decay_mult=0.),
            'relative_position_bias_table': dict(decay_mult=0.),
            'norm': dict(decay_mult=0.),
        }),
    optimizer=dict(
        _delete_=True, type='AdamW', lr=0.0001, betas=(0.9, 0.999), weight_decay=0.05))

# The dicts defined here (not merged into stock ones) name their registry scope: mmengine tags
# the dicts of a `pkg::` base with `pkg`, and `stvit_mm` (a config inheriting this one as
# `stvit_mm::...`) has no registries of its own.
for _fresh in [*train_pipeline, *param_scheduler]:
    _fresh['_scope_'] = 'mmdet'
del _fresh
