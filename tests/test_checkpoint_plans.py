"""A checkpoint of another sparsification plan is refused on every loading path.

Blocks of Swin-family and DeiT checkpoints are placed by index, and our own checkpoints by
name; either way a checkpoint made with other units per stage, recovery, layer kinds or pool
size would load its layers into layers of other roles (or leave some random) with at most a
log line. The backbones' load pre-hooks refuse it with one line naming the first difference and
the fix (stvit_mm/checkpoints/plans.py, swin.py, deit.py). A
plain Swin / DeiT checkpoint stays a legitimate initialisation of any plan of its depth.
"""
import json
import os

import pytest
import torch
from mmdet.models.backbones import SwinTransformer as MMDetSwin
from mmengine.runner import load_checkpoint
from mmengine.runner.checkpoint import _load_checkpoint_to_model
from mmpretrain.models import VisionTransformer
from torch import nn

from stvit_mm.checkpoints import whole_checkpoint as conversion
from stvit_mm.models import STViT, STViTSwin, STViTVideoSwin

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SWIN = dict(embed_dims=16, depths=(2, 2, 6, 2), num_heads=(1, 2, 4, 8))
DEIT = dict(embed_dims=32, num_heads=2)
FIX = 'build the backbone as the checkpoint was trained'


@pytest.fixture(autouse=True)
def seed():
    torch.manual_seed(0)


def _load_state_dict(model, path):
    model.load_state_dict(torch.load(path)['state_dict'], strict=False)


def _load_checkpoint(model, path):
    load_checkpoint(model, path, map_location='cpu')


def _init_cfg(model, path):
    model.init_cfg = dict(type='Pretrained', checkpoint=path)
    model.init_weights()


def _load_from(model, path):
    """What a Runner does with ``load_from`` (and resume): the whole model's checkpoint."""
    whole = nn.Module()
    whole.backbone = model
    checkpoint = torch.load(path)
    checkpoint['state_dict'] = {f'backbone.{k}': v for k, v in checkpoint['state_dict'].items()}
    _load_checkpoint_to_model(whole, checkpoint)


PATHS = {'load_state_dict': _load_state_dict, 'load_checkpoint': _load_checkpoint,
         'init_cfg Pretrained': _init_cfg, 'load_from': _load_from}

# (model that made the checkpoint, model it is loaded into, start of the difference named)
OTHER_PLANS = {
    'STViTSwin recovery': (
        lambda: STViTSwin(SWIN),
        lambda: STViTSwin(SWIN, recovery=False, out_indices=(3, ), pool_size=3),
        'the checkpoint has no stages.2.blocks.0 (a window block of the model)'),
    'STViTSwin units per stage': (
        lambda: STViTSwin(dict(SWIN, units=(0, 0, 1, 0))),
        lambda: STViTSwin(dict(SWIN, units=(0, 0, 0, 0))),
        'the checkpoint has no stages.2.blocks.0 (a window block of the model)'),
    'STViTSwin pool size': (
        lambda: STViTSwin(SWIN, pool_size=2, global_centres=False),
        lambda: STViTSwin(SWIN, pool_size=3, global_centres=False),
        'stages.2.units.0.generator pools each window to 2x2 semantic tokens in the checkpoint, '
        '3x3 in the model'),
    'STViT plan': (
        lambda: STViT(DEIT), lambda: STViT(dict(DEIT, num_full_layers=3, num_semantic_layers=7)),
        'the checkpoint has no semantic_blocks.6 (a self-attention block of the model)'),
    'STViT pool size': (
        lambda: STViT(DEIT, global_centres=False),
        lambda: STViT(dict(DEIT, pool_size=(2, 2)), global_centres=False),
        'generator pools each window to 4x4 semantic tokens in the checkpoint, 2x2 in the model'),
    'STViTVideoSwin recovery': (
        lambda: STViTVideoSwin(SWIN, recovery=False),
        lambda: STViTVideoSwin(SWIN),
        'the checkpoint has no stages.2.units.0.recovery'),
}


@pytest.mark.parametrize('path', list(PATHS))
@pytest.mark.parametrize('plan', list(OTHER_PLANS))
def test_checkpoint_of_another_plan_is_refused(tmp_path, plan, path):
    make_source, make_target, difference = OTHER_PLANS[plan]
    file = str(tmp_path / 'other_plan.pth')
    torch.save({'state_dict': make_source().state_dict()}, file)
    model = make_target()
    owner = type(model).__name__
    with pytest.raises(ValueError) as info:
        PATHS[path](model, file)
    message = str(info.value)
    assert message.startswith(f'{owner}: the checkpoint has another sparsification plan than '
                              f'this model: {difference}')
    assert FIX in message and '\n' not in message


def _official_release_s():
    """The official STViT-R-Swin-S release's tensors (names and shapes from tests/data)."""
    with open(os.path.join(ROOT, 'tests/data/official_stvit_r_swin_s_keys.json')) as f:
        listed = json.load(f)
    state = {k: torch.randn(s) * 0.02 for k, s in listed['parameters'].items()}
    state.update({k: torch.zeros(s, dtype=torch.long) for k, s in listed['buffers'].items()})
    return {'model': state}


def test_official_release_into_stvit_swin_without_recovery_is_refused():
    """The case of the issue: the official STViT-R-Swin-S file into the same backbone built
    with recovery=False used to load 'silently' (7 missing keys, generator weights in plain
    blocks)."""
    model = STViTSwin('small', recovery=False, out_indices=(3, ), preset='official')
    with pytest.raises(ValueError, match=r'^STViTSwin: the checkpoint has another sparsification '
                       r'plan than this model: stage 2 block 1 is a STViT-R layer \(q/kv, layer '
                       r'scale\) in the checkpoint but a window block '
                       r'\(stages.2.units.0.window_block\) in the model'):
        model.load_state_dict(_official_release_s(), strict=False)
    # the same file into the plan it was made with loads, with nothing missing
    model = STViTSwin('small', out_indices=(3, ), preset='official')
    result = model.load_state_dict(_official_release_s(), strict=False)
    assert result.missing_keys == [] and result.unexpected_keys == []


def test_official_release_into_another_pool_size_is_refused():
    model = STViTSwin('small', out_indices=(3, ), pool_size=2, preset='official')
    with pytest.raises(ValueError, match='the official STViT-R-Swin pools each window to 3x3 '
                                         'semantic tokens, the model to 2x2'):
        model.load_state_dict(_official_release_s(), strict=False)


def test_converter_tool_refuses_another_plan():
    target = conversion.target_from_arch('stvit-swin-s', 'official-stvit-r-swin')
    with pytest.raises(conversion.ConversionError, match='cannot convert for stvit-swin-s: the '
                       'checkpoint has another sparsification plan than the target: stage 2 '
                       'block 1 is a STViT-R layer'):
        conversion.convert_checkpoint(_official_release_s(), 'official-stvit-r-swin', target)


def test_swin_of_another_depth_is_refused():
    swin = MMDetSwin(embed_dims=16, depths=(2, 2, 6, 2), num_heads=(1, 2, 4, 8))
    model = STViTSwin(dict(SWIN, depths=(2, 2, 12, 2), units=(0, 0, 2, 0)))
    with pytest.raises(ValueError, match='stage 2 has 6 blocks in the checkpoint and 12 layers '
                                         r'in the model \(another depth\)'):
        model.load_state_dict(swin.state_dict(), strict=False)


def test_deit_of_another_depth_is_refused():
    deit = VisionTransformer(dict(embed_dims=32, num_layers=12, num_heads=2,
                                  feedforward_channels=128))
    model = STViT(dict(DEIT, num_semantic_layers=5))
    with pytest.raises(ValueError, match=r'^STViT: .*: the checkpoint has 12 blocks and the model '
                                         '11 layers'):
        model.load_state_dict(deit.state_dict(), strict=False)


@pytest.mark.parametrize('make', [
    lambda: STViTSwin(SWIN),
    lambda: STViTSwin(SWIN, recovery=False, out_indices=(3, )),
    lambda: STViTSwin(SWIN, recovery=False, out_indices=(3, ), pool_size=2),
    lambda: STViTVideoSwin(SWIN),
])
@pytest.mark.parametrize('path', list(PATHS))
def test_plain_swin_initialises_any_plan(tmp_path, make, path):
    swin = MMDetSwin(embed_dims=16, depths=(2, 2, 6, 2), num_heads=(1, 2, 4, 8))
    swin.eval()
    file = str(tmp_path / 'swin.pth')
    torch.save({'state_dict': swin.state_dict()}, file)
    model = make()
    PATHS[path](model, file)
    j = len(model.stages[2].blocks)  # without recovery one plain block comes first
    torch.testing.assert_close(model.stages[2].units[0].window_block.mlp.fc1.weight,
                               swin.state_dict()[f'stages.2.blocks.{j}.ffn.layers.0.0.weight'])
    assert model.stages[2].units[0].generator.pooled_grid.tolist() == list(
        model.stages[2].units[0].pool_size)


def test_own_checkpoint_without_a_pool_size_record_still_loads(tmp_path):
    """Checkpoints saved before the record existed (or with it removed) load as before."""
    source = STViTSwin(SWIN)
    state = {k: v for k, v in source.state_dict().items() if not k.endswith('pooled_grid')}
    model = STViTSwin(SWIN)
    model.load_state_dict(state, strict=True)
    torch.testing.assert_close(model.state_dict(), source.state_dict())
