"""Bad input gets one clear line naming the problem and the fix.

Inputs (stvit_mm/models/backbones/input_checks.py, at the top of every forward), configs
(each backbone's __init__), checkpoints (a load pre-hook after the converters), data
paths (tools/train.py) and unreadable images (stvit_mm/datasets/image_errors.py).
"""
import os

import pytest
import torch
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint

import train as train_tool
from stvit_mm.datasets.image_errors import (
    ImageReadError,
    LoadImageFromFileNamingFailures,
    name_unreadable_images,
)
from stvit_mm.datasets.synthetic_coco import make_coco_instance
from stvit_mm.models import STViT, STViTSwin, STViTVideoSwin

# Narrow variants: the checks do not depend on width, and they build in milliseconds.
SWIN = dict(embed_dims=16, depths=(2, 2, 6, 2), num_heads=(1, 2, 4, 8))
DEIT = dict(embed_dims=32, num_heads=2)
BUILD = {
    'STViT': lambda **kw: STViT(kw.pop('arch', DEIT), **kw),
    'STViTSwin': lambda **kw: STViTSwin(kw.pop('arch', SWIN), **kw),
    'STViTVideoSwin': lambda **kw: STViTVideoSwin(kw.pop('arch', SWIN), **kw),
}
GOOD = {'STViT': (1, 3, 32, 32), 'STViTSwin': (1, 3, 32, 32), 'STViTVideoSwin': (1, 3, 4, 32, 32)}


@pytest.fixture(scope='module')
def models():
    torch.manual_seed(0)
    return {name: build().eval() for name, build in BUILD.items()}


def _bad(name: str, what: str) -> torch.Tensor:
    shape = list(GOOD[name])
    if what == 'channels':
        shape[1] = 4
    elif what == 'rank':
        shape = shape[1:]
    elif what == 'empty batch':
        shape[0] = 0
    elif what == 'empty axis':
        shape[-1] = 0
    elif what == 'uint8':
        return torch.zeros(shape, dtype=torch.uint8)
    x = torch.randn(shape)
    if what == 'nan':
        x[0, 0, ..., 3] = float('nan')
    elif what == 'inf':
        x.view(-1)[7] = float('inf')
        x.view(-1)[9] = float('-inf')
    return x


INPUT_CASES = [
    ('channels', 'expected 3 input channels, got 4; set in_channels in the backbone config'),
    ('rank', r'expected (images|clips) \(B, C, .*H, W\), got a \d-D tensor of shape .*; '
             r'(add the batch axis|clips need a time axis)'),
    ('empty batch', r'empty batch \(B=0\) .*; skip the call'),
    ('empty axis', r'empty (image|clip) of shape .*; every axis needs at least one pixel'),
    ('uint8', 'expected a floating-point tensor, got torch.uint8; normalise the input'),
    ('nan', r'input holds \d+ NaN and 0 inf values .*; fix the data'),
    ('inf', r'input holds 0 NaN and 2 inf values .*; fix the data'),
]


@pytest.mark.parametrize('name', list(BUILD))
@pytest.mark.parametrize('what, message', INPUT_CASES)
def test_bad_input(models, name, what, message):
    error = TypeError if what == 'uint8' else ValueError
    with pytest.raises(error, match=f'^{name}: {message}') as info:
        models[name](_bad(name, what))
    assert '\n' not in str(info.value)  # one line


def test_finite_check_can_be_switched_off(models, monkeypatch):
    """STVIT_CHECK_FINITE=0 (read at import) skips the check: NaN propagates to the outputs."""
    from stvit_mm.models.backbones import input_checks
    monkeypatch.setattr(input_checks, 'CHECK_FINITE', '0')
    with torch.no_grad():
        outs = models['STViTSwin'](_bad('STViTSwin', 'nan'))
    assert all(torch.isnan(o).any() for o in outs)


@pytest.mark.parametrize('mode, checked', [('cpu', {'cpu'}), ('1', {'cpu', 'cuda', 'xpu'}),
                                           ('0', set())])
def test_finite_check_never_syncs_an_accelerator_unless_asked(monkeypatch, mode, checked):
    """By default only CPU inputs are read (no host-device sync per forward on a GPU)."""
    from stvit_mm.models.backbones import input_checks
    monkeypatch.setattr(input_checks, 'CHECK_FINITE', mode)
    for device in ('cpu', 'cuda', 'xpu', 'meta'):
        assert input_checks.checks_finite_on(torch.device(device)) == (device in checked)


def test_good_input_still_runs(models):
    for name, model in models.items():
        with torch.no_grad():
            outs = model(torch.randn(GOOD[name]))
        assert all(torch.isfinite(o).all() for o in outs)


def test_finite_values_whose_sum_overflows_are_not_refused(models):
    """The check sums first (cheap); a sum that overflows must fall back to the exact test."""
    for name, model in models.items():
        x = torch.full(GOOD[name], torch.finfo(torch.float32).max / 2)
        assert torch.isinf(x.sum())
        with torch.no_grad():
            model(x)  # finite input: no ValueError, whatever the outputs


def test_input_side_not_a_multiple_of_the_patch():
    with pytest.raises(ValueError, match='STViT: input 32x36 is not a multiple of patch_size 16; '
                                         'pad or resize'):
        STViT(DEIT)(torch.randn(1, 3, 32, 36))


def test_checks_are_skipped_while_tracing(models):
    """jit tracing / torch.compile cannot branch on values: the NaN check steps aside."""
    model = models['STViT']
    traced = torch.jit.trace(model, torch.randn(GOOD['STViT']), check_trace=False)
    assert torch.isfinite(traced(torch.randn(GOOD['STViT']))[0]).all()


# ------------------------------------------------------------------ configs

@pytest.mark.parametrize('name, kwargs, message', [
    ('STViT', dict(arch='huge'), "unknown arch 'huge'; choose one of"),
    ('STViTSwin', dict(arch='huge'), "unknown arch 'huge'; choose one of"),
    ('STViTVideoSwin', dict(arch='huge'), "unknown arch 'huge'; choose one of"),
    ('STViT', dict(arch=dict(embed_dims=32)), r"arch dict misses \['num_heads'\]"),
    ('STViT', dict(img_size=100), 'img_size .* is not a multiple of patch_size 16'),
    # semantic grid per window larger than the window
    ('STViTSwin', dict(pool_size=8), 'pool_size 8 .* is larger than window_size 7; use at most'),
    ('STViTVideoSwin', dict(pool_size=(2, 8, 2)),
     r'semantic grid per window \(pool_size\) \(2, 8, 2\) is larger than the window'),
    ('STViTSwin', dict(out_indices=(4, )), r'out_indices \(4,\) must be non-empty and lie in 0..3'),
    # nonsense combinations
    ('STViT', dict(recovery=True, out_type='avg'),
     "recovery=True with out_type='avg' builds a recovery block that never runs; use "
     "out_type='featmap' or recovery=False"),
    ('STViTSwin', dict(recovery=False),
     r'with recovery=False stage 2 hands its semantic token grid on, not a feature map; '
     r'remove 2 from out_indices \(0, 1, 2, 3\) or set recovery=True'),
    ('STViTVideoSwin', dict(recovery=False, out_indices=(2, 3)),
     'with recovery=False stage 2 hands its semantic token grid on'),
    # stock Swin arguments that cannot be honoured (the one-word swap)
    ('STViTSwin', dict(use_abs_pos_embed=True), r'use_abs_pos_embed=True cannot be honoured '
     r'\(STViT-R windows use relative position bias only\); remove it'),
    ('STViTSwin', dict(attn_drop_rate=0.1), 'attn_drop_rate=0.1 cannot be honoured'),
    ('STViTSwin', dict(qk_scale=0.5), 'qk_scale=0.5 cannot be honoured'),
    ('STViTSwin', dict(strides=(4, 2, 2, 1)), r'strides=\(4, 2, 2, 1\) cannot be honoured'),
    ('STViTSwin', dict(act_cfg=dict(type='ReLU')), "act_cfg=.*'ReLU'.* cannot be honoured"),
    ('STViTSwin', dict(stage_cfgs=dict(block_cfgs=dict(mlp_ratio=2))),
     'stage_cfgs=.* cannot be honoured'),
    ('STViTVideoSwin', dict(patch_norm=False), 'patch_norm=False cannot be honoured'),
])
def test_inconsistent_config(name, kwargs, message):
    with pytest.raises(ValueError, match=f'^{name}: {message}'):
        BUILD[name](**kwargs)


@pytest.mark.parametrize('name', list(BUILD))
def test_drop_rate_reaches_every_layer(name):
    """drop_rate is honoured everywhere, generator layers included (not silently 0)."""
    kwargs = dict(out_indices=(3, )) if name != 'STViT' else {}
    model = BUILD[name](drop_rate=0.25, **kwargs)
    rates = {n: m.p for n, m in model.named_modules() if isinstance(m, torch.nn.Dropout)}
    assert any('generator.layer' in n for n in rates)
    assert set(rates.values()) == {0.25}, rates


# ------------------------------------------------------------------ checkpoints

WIDER = {'STViT': dict(embed_dims=64, num_heads=2),
         'STViTSwin': dict(SWIN, embed_dims=32),
         'STViTVideoSwin': dict(SWIN, embed_dims=32)}


def _save(tmp_path, state_dict) -> str:
    path = str(tmp_path / 'ckpt.pth')
    torch.save({'state_dict': state_dict}, path)
    return path


@pytest.mark.parametrize('name', list(BUILD))
def test_checkpoint_of_another_width_via_init_cfg(tmp_path, name):
    path = _save(tmp_path, BUILD[name](arch=WIDER[name]).state_dict())
    model = BUILD[name](init_cfg=dict(type='Pretrained', checkpoint=path))
    with pytest.raises(ValueError, match=f'^{name}: checkpoint tensors do not fit this model: '
                                         r'\S+ \(.*\) vs \(.*\) \(checkpoint vs model\) and \d+ '
                                         'more; .*configure the backbone as the checkpoint'):
        model.init_weights()


@pytest.mark.parametrize('name', list(BUILD))
def test_checkpoint_of_another_model_via_load_checkpoint(tmp_path, name):
    path = _save(tmp_path, {'conv1.weight': torch.zeros(8, 3, 7, 7), 'fc.bias': torch.zeros(8)})
    with pytest.raises(ValueError, match=f"^{name}: none of the 2 checkpoint tensors \\(e.g. "
                                         "'conv1.weight'\\) belongs to this backbone; load a"):
        load_checkpoint(BUILD[name](), path, map_location='cpu')


def test_checkpoint_with_missing_and_unexpected_keys(tmp_path):
    """Missing keys (new layers) and extra keys (heads) are legitimate for Pretrained
    (never strict: mmengine warns with the key names); a strict load names them."""
    source = STViTSwin(SWIN)
    state = source.state_dict()
    missing = 'stages.2.units.0.generator.centres'
    del state[missing]
    state['head.fc.weight'] = torch.zeros(2, 2)
    path = _save(tmp_path, state)
    model = STViTSwin(SWIN, init_cfg=dict(type='Pretrained', checkpoint=path))
    model.init_weights()
    torch.testing.assert_close(model.stages[0].blocks[0].attn.qkv.weight,
                               source.stages[0].blocks[0].attn.qkv.weight)
    with pytest.raises(RuntimeError, match=f'(?s)unexpected key .*head.fc.weight.*missing keys '
                                           f'.*{missing}'):
        load_checkpoint(STViTSwin(SWIN), path, map_location='cpu', strict=True)


def test_checkpoint_file_that_does_not_exist(tmp_path):
    model = STViTSwin(SWIN, init_cfg=dict(type='Pretrained', checkpoint=str(tmp_path / 'no.pth')))
    with pytest.raises(FileNotFoundError, match='no.pth does not exist; check the path'):
        model.init_weights()


def test_own_checkpoint_still_loads_strictly(tmp_path):
    for name, build in BUILD.items():
        source = build()
        model = build()
        load_checkpoint(model, _save(tmp_path, source.state_dict()), map_location='cpu',
                        strict=True)
        for key, value in source.state_dict().items():
            torch.testing.assert_close(model.state_dict()[key], value, msg=f'{name} {key}')


# ------------------------------------------------------------------ config typos

@pytest.mark.parametrize('config, option, message', [
    ('configs/classification/stvit_deit_t_synthetic.py', 'model.backbone.archh=small',
     r"config: model.backbone \(STViT\) has no option 'archh'; did you mean 'arch'\?"),
    ('configs/detection/mask_rcnn_stvit_r_swin_t_synthetic.py', 'model.backbone.recovry=False',
     r"config: model.backbone \(STViTSwin\) has no option 'recovry'; did you mean "
     r"'recovery'\?"),
    ('configs/classification/stvit_deit_t_synthetic.py', 'model.backbone.arch.depth=3',
     r'--cfg-options model.backbone.arch.depth=3: .*arch is a dict in the child config'),
])
def test_config_typo_is_named_before_anything_is_built(tmp_path, repo_root, monkeypatch,
                                                       config, option, message):
    monkeypatch.chdir(repo_root)
    with pytest.raises(SystemExit, match=f'^error: {message}'):
        train_tool.main([config, '--work-dir', str(tmp_path), '--cfg-options', option])


def test_config_typo_in_get_flops(capsys, repo_root, monkeypatch):
    import get_flops
    monkeypatch.chdir(repo_root)
    assert get_flops.main(['configs/video/video_stvit_r_swin_t_synthetic.py', '--cfg-options',
                           'model.backbone.pool_szie=[1,2,2]']) == 2
    error = capsys.readouterr().err.strip()
    assert '\n' not in error
    assert error == ("get_flops.py: error: config: model.backbone (STViTVideoSwin) has no "
                     "option 'pool_szie'; did you mean 'pool_size'?")


# ------------------------------------------------------------------ data

def test_dataset_path_that_does_not_exist(tmp_path, repo_root, monkeypatch):
    monkeypatch.chdir(repo_root)
    missing = tmp_path / 'nowhere'
    with pytest.raises(SystemExit, match=f'dataset path does not exist \\(train: data_root '
                                         f'{missing}.*set it with --cfg-options'):
        train_tool.main(['configs/classification/stvit_deit_t_synthetic.py',
                         '--work-dir', str(tmp_path),
                         '--cfg-options', f'train_dataloader.dataset.data_root={missing}',
                         f'val_dataloader.dataset.data_root={missing}'])


@pytest.fixture(scope='module')
def coco_train(tmp_path_factory, repo_root):
    """The synthetic detection config's training set (real CocoDataset and pipeline)."""
    from mmdet.registry import DATASETS

    from stvit_mm.utils import load_config
    root = str(tmp_path_factory.mktemp('coco')) + '/'
    make_coco_instance(root, num_train=3, num_val=1, image_size=(64, 48))
    cfg = load_config(os.path.join(repo_root, 'configs', 'detection',
                                   'mask_rcnn_stvit_r_swin_t_synthetic.py'))
    cfg.train_dataloader.dataset.data_root = root
    init_default_scope('mmdet')
    assert name_unreadable_images(cfg, ('train', )) == 1  # as tools/train.py does
    return root, lambda: DATASETS.build(cfg.train_dataloader.dataset)


@pytest.mark.parametrize('damage, cause', [
    (lambda path: open(path, 'wb').write(b'\x89PNG\r\n\x1a\n' + b'garbage' * 20),
     'AssertionError: failed to load image'),
    (lambda path: open(path, 'wb').close(), 'error: .*buf.empty'),  # OpenCV on an empty file
    (os.remove, 'FileNotFoundError'),
])
def test_unreadable_image_names_the_file_and_the_fix(coco_train, damage, cause):
    root, build = coco_train
    path = os.path.join(root, 'train', '000002.png')
    backup = open(path, 'rb').read()
    try:
        damage(path)
        dataset = build()
        assert dataset[0]['inputs'].shape[0] == 3  # other images still load
        with pytest.raises(ImageReadError, match=f'^cannot read image {path} \\({cause}.*\\); '
                                                 'the file is missing, empty or not a decodable '
                                                 'image: restore or regenerate it, or remove'):
            dataset[1]
    finally:
        open(path, 'wb').write(backup)


def test_ignore_empty_skips_any_unreadable_image(tmp_path):
    path = tmp_path / 'bad.png'
    path.write_bytes(b'not an image')
    assert LoadImageFromFileNamingFailures(ignore_empty=True)(dict(img_path=str(path))) is None
    with pytest.raises(ImageReadError, match='bad.png'):
        LoadImageFromFileNamingFailures()(dict(img_path=str(path)))


def test_naming_unreadable_images_leaves_mmcv_as_it_is(repo_root, tmp_path):
    """The named errors come from our registered transform, put in the run's dataloaders
    (train and val when training, test when testing); mmcv's class is not patched, and the
    test pipeline that inferencers search for LoadImageFromFile keeps it."""
    import mmcv.transforms.loading
    from mmcv.transforms import LoadImageFromFile
    from mmengine.registry import TRANSFORMS

    import stvit_mm.apis  # noqa: F401
    import stvit_mm.models  # noqa: F401
    from stvit_mm.apis import train_config
    original = vars(LoadImageFromFile)['transform']
    data = str(tmp_path / 'coco') + '/'
    make_coco_instance(data, num_train=1, num_val=1)  # train_config checks the annotations
    options = {f'{s}_dataloader.dataset.data_root': data for s in ('train', 'val')}
    options['val_evaluator.ann_file'] = data + 'annotations/instances_val.json'
    cfg = train_config(os.path.join(repo_root, 'configs', 'detection',
                                    'mask_rcnn_stvit_r_swin_t_synthetic.py'),
                       options, work_dir='unused')
    assert vars(LoadImageFromFile)['transform'] is original
    assert original.__module__ == mmcv.transforms.loading.__name__
    assert mmcv.transforms.LoadImageFromFile is LoadImageFromFile
    types = {split: [t['type'] for t in cfg[f'{split}_dataloader'].dataset.pipeline]
             for split in ('train', 'val', 'test')}
    assert types['train'][0] == types['val'][0] == 'LoadImageFromFileNamingFailures'
    assert types['test'][0] == 'LoadImageFromFile'
    assert 'stvit_mm.datasets.image_errors' in cfg.custom_imports.imports
    # it builds from the task packages' scopes (their registries fall back to the root)
    from mmdet.registry import TRANSFORMS as MMDET_TRANSFORMS
    from mmpretrain.registry import TRANSFORMS as MMPRETRAIN_TRANSFORMS
    for registry in (TRANSFORMS, MMDET_TRANSFORMS, MMPRETRAIN_TRANSFORMS):
        built = registry.build(dict(type='LoadImageFromFileNamingFailures'))
        assert type(built) is LoadImageFromFileNamingFailures
