"""The one-word swap: in every installed stock Swin config, ``backbone=dict(type='STViTSwin')``
(``'STViTVideoSwin'`` for mmaction2's ``SwinTransformer3D``) merged into the stock backbone dict
gives STViT-R with the config's sizes, and the model runs with the stock output shapes.

The sweep (slow: every stock Swin config of mmdet, mmseg, mmpretrain and mmaction2 installed
here) builds the stock model and the swapped one, runs backbone and neck on one small input and
compares output shapes. Stock models that do not build here (e.g. language models that need a
download) are skipped with the reason. The quick tests pin the swap on one config per package.
"""
import glob
import importlib
import os
import re

import pytest
import torch
from mmengine.config import Config

from stvit_mm.utils import build_model

PACKAGES = ('mmdet', 'mmseg', 'mmpretrain', 'mmaction')
SWAP = {'SwinTransformer': 'STViTSwin', 'SwinTransformer3D': 'STViTVideoSwin'}
IMAGE, CLIP = (1, 3, 128, 192), (1, 3, 4, 64, 64)  # a multiple of 64: p6 necks fit it


def stock_swin_config_files():
    """(package, config path relative to its configs/) of files that name a Swin backbone."""
    found = []
    for package in PACKAGES:
        try:
            root = os.path.join(os.path.dirname(importlib.import_module(package).__file__),
                                '.mim', 'configs')
        except ImportError:
            continue
        for path in sorted(glob.glob(os.path.join(root, '**', '*.py'), recursive=True)):
            if '_base_' in path.split(os.sep):
                continue
            with open(path, encoding='utf-8') as f:
                text = f.read()
            # a Swin backbone is named here or inherited (then the file name says swin)
            if re.search(r"SwinTransformer(3D)?'", text) or (
                    'swin' in os.path.basename(path) and 'swinv2' not in path
                    and 'swin_v2' not in path):
                found.append((package, os.path.relpath(path, root)))
    return found


def _swin_backbone(cfg):
    backbone = cfg.get('model', {}).get('backbone') if isinstance(cfg.get('model'), dict) else None
    if not isinstance(backbone, dict):
        return None
    kind = str(backbone.get('type', '')).split('.')[-1]
    return kind if kind in SWAP else None


def _image_for(cfg):
    """The config's input channels (change detection stacks two images: 6); mmpretrain's
    Swin asserts maps no smaller than its window: give it its img_size."""
    channels = cfg.model.backbone.get('in_channels', 3)
    size = cfg.model.backbone.get('img_size')
    if size is None:
        return (1, channels) + IMAGE[2:]
    side = size if isinstance(size, int) else size[0]
    return (1, channels, side, side)


def _run(model, x):
    with torch.no_grad():
        feats = model.backbone(x)
        outs = [feats] if isinstance(feats, torch.Tensor) else list(feats)
        if getattr(model, 'neck', None) is not None:
            neck = model.neck(feats)
            outs += [neck] if isinstance(neck, torch.Tensor) else list(neck)
    return [tuple(o.shape) for o in outs]


def swap_and_compare(package, rel):
    """Stock and swapped output shapes, or pytest.skip with the reason."""
    root = os.path.join(os.path.dirname(importlib.import_module(package).__file__), '.mim',
                        'configs')
    try:
        cfg = Config.fromfile(os.path.join(root, rel))
    except Exception as error:  # noqa: BLE001  (stock configs that do not load here)
        pytest.skip(f'stock config does not load here: {type(error).__name__}: {error}')
    kind = _swin_backbone(cfg)
    if kind is None:
        pytest.skip('the backbone is not a Swin Transformer')
    try:
        stock = build_model(cfg)
    except Exception as error:  # noqa: BLE001
        pytest.skip(f'the stock model does not build here: {type(error).__name__}: '
                    f'{str(error)[:200]}')
    swapped_cfg = Config.fromfile(os.path.join(root, rel))
    swapped_cfg.merge_from_dict({'model.backbone.type': SWAP[kind]})  # the one-word swap
    swapped_cfg.custom_imports = dict(imports=['stvit_mm.models'], allow_failed_imports=False)
    ours = build_model(swapped_cfg)
    assert type(ours.backbone).__name__ == SWAP[kind]
    x = torch.randn(CLIP if kind == 'SwinTransformer3D' else _image_for(cfg))
    return _run(stock, x), _run(ours, x), ours


CONFIGS = stock_swin_config_files()


@pytest.mark.slow
@pytest.mark.parametrize('package, rel', CONFIGS, ids=[f'{p}:{r}' for p, r in CONFIGS])
def test_every_stock_swin_config_takes_stvit_r(package, rel):
    stock, ours, _ = swap_and_compare(package, rel)
    assert ours == stock


@pytest.mark.parametrize('package, rel, window', [
    ('mmdet', 'swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py', 7),
    ('mmseg', 'swin/swin-base-patch4-window12-in22k-384x384-pre_upernet_8xb2-160k_ade20k-'
              '512x512.py', 12),
    ('mmpretrain', 'swin_transformer/swin-large_16xb64_in1k-384px.py', 12),
    ('mmdet', 'rtmdet/rtmdet_l_swin_b_p6_4xb16-100e_coco.py', 12),  # five stages
    ('mmaction', 'recognition/swin/swin-tiny-p244-w877_in1k-pre_8xb8-amp-32x2x1-30e_'
                 'kinetics400-rgb.py', 7),
])
def test_one_word_swap(package, rel, window):
    stock, ours, model = swap_and_compare(package, rel)
    assert ours == stock
    backbone = model.backbone
    unit = next(u for stage in backbone.stages for u in stage.units)
    assert unit.window[-1] == window and backbone.recovery
