# UperNet STViT-R-Swin-T on the generated ADE20K-format set (stvit_mm.datasets.
# make_ade20k_style: 5 textured stuff classes, 128x160 images, label 0 = unlabelled), for
# `make demo-seg` and tests: ./upernet_stvit_r_swin_t_ade20k.py trained from scratch on
# 128x128 crops with a short schedule on a CPU. Generate the data with
#   python -c "from stvit_mm.datasets.synthetic_ade20k import make_ade20k_style as m; \
#              m('data/generated/ade20k_synthetic')"
# Any ADE20K-layout set works the same way (images/{training,validation}/*.jpg,
# annotations/{training,validation}/*.png); set metainfo to its classes.
_base_ = './upernet_stvit_r_swin_t_ade20k.py'

data_root = 'data/generated/ade20k_synthetic'
crop_size = (128, 128)
metainfo = dict(classes=('ground', 'stripes', 'checks', 'dots', 'grain'),
                palette=[(120, 100, 70), (60, 90, 220), (220, 60, 60), (60, 190, 80),
                         (230, 200, 50)])
num_classes = 5

model = dict(
    # The preprocessor pads training batches to `size`: the inherited 512x512 would cost 16x.
    # (A child's crop_size reaches neither this nor the inherited RandomCrop.)
    data_preprocessor=dict(size=crop_size),
    backbone=dict(init_cfg=None,  # from scratch: nothing to download
                  drop_path_rate=0.0),  # no stochastic depth for a few hundred steps
    # CPU budget: UPerHead's 512 channels cost 13 G MACs per 128x128 crop, ten times the
    # backbone; 128 channels learn this set as well. Stock heads otherwise.
    decode_head=dict(channels=128, num_classes=num_classes),
    auxiliary_head=dict(channels=64, num_classes=num_classes))

# ADE20KDataset accepts only ADE20K's 150 class names: BaseSegDataset with our metainfo, the
# ADE20K file suffixes and label 0 ignored (reduce_zero_label), as ADE20K.
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
test_pipeline = [  # whole 128x160 images (no resize: they are small already)
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs'),
]


def _dataset(split, pipeline):
    return dict(_delete_=True, type='BaseSegDataset', data_root=data_root, metainfo=metainfo,
                img_suffix='.jpg', seg_map_suffix='.png', reduce_zero_label=True,
                data_prefix=dict(img_path=f'images/{split}', seg_map_path=f'annotations/{split}'),
                pipeline=pipeline)


# num_workers=0: small JPEGs load faster in-process than through worker start-up (and
# persistent_workers must then be False). Batch 4; >= 2 per process keeps BN working when
# tools/dist_train.sh runs 2 CPU processes (SyncBN is switched to BN there).
train_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False,
                        dataset=_dataset('training', train_pipeline))
val_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False,
                      dataset=_dataset('validation', test_pipeline))
test_dataloader = val_dataloader

# Short schedule: AdamW (stock paramwise settings) at a from-scratch learning rate, a short
# linear warm-up instead of the stock 1500 iterations, then the stock poly decay.
max_iters = 150
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
optim_wrapper = dict(optimizer=dict(lr=1e-3))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=15),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=15, end=max_iters, by_epoch=False),
]
default_hooks = dict(logger=dict(interval=20),
                     checkpoint=dict(by_epoch=False, interval=max_iters))
env_cfg = dict(dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)

# The dicts defined here (not merged into stock ones) name their registry scope: mmengine tags
# the dicts of a `pkg::` base with `pkg`, and `stvit_mm` (a config inheriting this one as
# `stvit_mm::...`) has no registries of its own.
for _fresh in [*train_pipeline, *test_pipeline, *param_scheduler,
               train_dataloader['dataset'], val_dataloader['dataset']]:
    _fresh['_scope_'] = 'mmseg'
del _fresh
