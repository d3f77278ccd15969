# The main job on generated data (`make demo`, tests): Mask R-CNN STViT-R-Swin-T exactly as in
# ./mask_rcnn_stvit_r_swin_t.py, trained from scratch on the generated COCO-format shapes set
# (stvit_mm.datasets.make_coco_instance: squares, discs, triangles at 256x192), evaluated with
# the real CocoMetric (bbox + segm). To use real COCO, use ./mask_rcnn_stvit_r_swin_t.py.
_base_ = './mask_rcnn_stvit_r_swin_t.py'

data_root = 'data/generated/coco_synthetic/'
image_size = (256, 192)  # (w, h) the images are generated at
num_classes = 3
metainfo = dict(classes=('square', 'disc', 'triangle'),
                palette=[(220, 50, 50), (50, 190, 50), (50, 80, 220)])

model = dict(
    backbone=dict(init_cfg=None),  # from scratch: nothing to download
    roi_head=dict(bbox_head=dict(num_classes=num_classes),
                  mask_head=dict(num_classes=num_classes)),
    # A few large objects per image: far fewer proposals and RoI samples than COCO needs
    # (on a CPU the RoI heads on COCO's 512 samples per image cost more than the backbone).
    train_cfg=dict(rpn_proposal=dict(nms_pre=1000, max_per_img=300),
                   rcnn=dict(sampler=dict(num=128))),
    test_cfg=dict(rpn=dict(nms_pre=500, max_per_img=100), rcnn=dict(score_thr=0.05)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
# num_workers=0: a few dozen small PNGs load faster in-process than through worker start-up.
train_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),  # iteration-based training
    dataset=dict(_delete_=True, type='CocoDataset', data_root=data_root, metainfo=metainfo,
                 ann_file='annotations/instances_train.json', data_prefix=dict(img='train/'),
                 filter_cfg=dict(filter_empty_gt=True, min_size=8), pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(_delete_=True, type='CocoDataset', data_root=data_root, metainfo=metainfo,
                 ann_file='annotations/instances_val.json', data_prefix=dict(img='val/'),
                 test_mode=True, pipeline=test_pipeline))
test_dataloader = val_dataloader
# pycocotools opens ann_file itself: a run that moves data_root overrides this path too.
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
test_evaluator = val_evaluator

# Short iteration-based schedule: warm-up, then cosine (AdamW and its paramwise settings stay).
max_iters = 100
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=max_iters,
                 val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=20),
    dict(type='CosineAnnealingLR', T_max=max_iters, eta_min=1e-6, by_epoch=False, begin=0,
         end=max_iters),
]
optim_wrapper = dict(optimizer=dict(lr=2e-4))
default_hooks = dict(logger=dict(interval=10),
                     checkpoint=dict(by_epoch=False, interval=max_iters),
                     visualization=dict(draw=False))
log_processor = dict(by_epoch=False)
env_cfg = dict(dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)

# The dicts defined here (not merged into stock ones) name their registry scope: mmengine tags
# the dicts of a `pkg::` base with `pkg`, and `stvit_mm` (a config inheriting this one as
# `stvit_mm::...`) has no registries of its own.
for _fresh in [*train_pipeline, *test_pipeline, *param_scheduler, train_cfg,
               train_dataloader['dataset'], val_dataloader['dataset']]:
    _fresh['_scope_'] = 'mmdet'
del _fresh
