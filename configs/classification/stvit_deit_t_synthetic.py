# STViT-DeiT-Tiny on the generated 4-class ImageNet-format set (stvit_mm.datasets), for the demo
# and tests: the stock recipe with a small input, no batch mixing, a short schedule.
# Point data_root at any folder-per-class dataset (train/<class>/*.png, val/<class>/*.png).
_base_ = './stvit_deit_t_in1k.py'

data_root = 'data/generated/imagenet_synthetic'
num_classes = 4
image_size = 64

# Patch 8 on 64x64 gives an 8x8 token grid, pooled to the usual 4x4 semantic tokens.
model = dict(
    backbone=dict(img_size=image_size, patch_size=8),
    head=dict(num_classes=num_classes),
    train_cfg=dict(_delete_=True))  # no Mixup/CutMix: 4 classes, a few hundred images
data_preprocessor = dict(num_classes=num_classes)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]
train_dataloader = dict(
    batch_size=32, num_workers=0, persistent_workers=False,
    dataset=dict(_delete_=True, type='CustomDataset', data_root=data_root, data_prefix='train',
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=32, num_workers=0, persistent_workers=False,
    dataset=dict(_delete_=True, type='CustomDataset', data_root=data_root, data_prefix='val',
                 pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator

optim_wrapper = dict(optimizer=dict(lr=1e-3))
max_epochs = 12
param_scheduler = [dict(type='CosineAnnealingLR', T_max=max_epochs, eta_min=1e-5, by_epoch=True)]
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
default_hooks = dict(logger=dict(interval=5), checkpoint=dict(interval=max_epochs))
env_cfg = dict(dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)

# The dicts defined here (not merged into stock ones) name their registry scope: mmengine tags
# the dicts of a `pkg::` base with `pkg`, and `stvit_mm` (a config inheriting this one as
# `stvit_mm::...`) has no registries of its own.
for _fresh in [*train_pipeline, *test_pipeline, *param_scheduler,
               train_dataloader['dataset'], val_dataloader['dataset']]:
    _fresh['_scope_'] = 'mmpretrain'
del _fresh
