# Video STViT-R-Swin-T on the generated 8-class motion set (stvit_mm.datasets.
# make_kinetics_rawframes: 8 directions of motion, 40 train / 8 val videos per class), for
# `make demo-video` and tests: the K400 recipe with raw frames, 8-frame 32x32 clips, no
# pretrained weights, fp32 on CPU and a short schedule (5 epochs = 200 iterations, about
# 0.8 s each on 2 CPU cores; top-1 about 0.9). Generate the data with
#   python -c "from stvit_mm.datasets.synthetic_kinetics import make_kinetics_rawframes as m; \
#              m('data/generated/kinetics_synthetic')"
# Any raw-frame set works the same way: data_root/rawframes/<video>/img_00001.jpg ... and
# data_root/{train,val}_list.txt with lines "<video> <total frames> <label>".
_base_ = './video_stvit_r_swin_t_k400.py'

data_root = 'data/generated/kinetics_synthetic'
num_classes = 8
clip_len = 8
image_size = 32  # the generator's default frame size

model = dict(
    # Random init (nothing to download); no stochastic depth for a 200-iteration schedule.
    backbone=dict(pretrained=None, pretrained2d=None, drop_path_rate=0.0),
    cls_head=dict(num_classes=num_classes))

# No Flip: the classes are directions of motion, a horizontal flip swaps left and right.
# Training clips start at a random frame of the 16 (SampleFrames), test clips in the middle.
train_pipeline = [
    dict(type='SampleFrames', clip_len=clip_len, frame_interval=1, num_clips=1),
    dict(type='RawFrameDecode'),
    dict(type='Resize', scale=(-1, image_size)),
    dict(type='CenterCrop', crop_size=image_size),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs'),
]
test_pipeline = [
    dict(type='SampleFrames', clip_len=clip_len, frame_interval=1, num_clips=1,
         test_mode=True),
    dict(type='RawFrameDecode'),
    dict(type='Resize', scale=(-1, image_size)),
    dict(type='CenterCrop', crop_size=image_size),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs'),
]


def _loader(ann_file, pipeline, shuffle, test_mode):
    return dict(
        batch_size=8, num_workers=0, persistent_workers=False,
        sampler=dict(type='DefaultSampler', shuffle=shuffle),
        dataset=dict(_delete_=True, type='RawframeDataset', data_root=data_root,
                     ann_file=ann_file, data_prefix=dict(img='rawframes'),
                     pipeline=pipeline, test_mode=test_mode))


train_dataloader = _loader('train_list.txt', train_pipeline, True, False)
val_dataloader = _loader('val_list.txt', test_pipeline, False, True)
test_dataloader = val_dataloader

# Kinetics metrics: keys acc/top1, acc/top5, acc/mean1 (chance 1/8 and 5/8).
val_evaluator = dict(type='AccMetric')
test_evaluator = val_evaluator

max_epochs = 5
train_cfg = dict(max_epochs=max_epochs, val_begin=1, val_interval=1)
# fp32 (AmpOptimWrapper needs CUDA); no 0.1x backbone lr: nothing here is pretrained.
optim_wrapper = dict(
    type='OptimWrapper', optimizer=dict(lr=5e-4),  # from scratch, batch 8: 2e-3 did not learn
    paramwise_cfg=dict(backbone=dict(lr_mult=1.0)))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs, eta_min=1e-5, by_epoch=True, begin=0,
         end=max_epochs, convert_to_iter_based=True),
]
default_hooks = dict(logger=dict(interval=10), checkpoint=dict(interval=1, max_keep_ckpts=2))
env_cfg = dict(dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)
auto_scale_lr = dict(enable=False, base_batch_size=8)

# The dicts defined here (not merged into stock ones) name their registry scope: mmengine tags
# the dicts of a `pkg::` base with `pkg`, and `stvit_mm` (a config inheriting this one as
# `stvit_mm::...`) has no registries of its own.
for _fresh in [*train_pipeline, *test_pipeline, *param_scheduler,
               train_dataloader['dataset'], val_dataloader['dataset']]:
    _fresh['_scope_'] = 'mmaction'
del _fresh
