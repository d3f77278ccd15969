"""The authors' COCO detectors (changsn/STViT-R-Object-Detection), exactly: our STViT-R-Swin with
preset='official-det' gives the fork's feature maps on any input size (checked against
tests/fork_reference.py, an independent step-by-step account of the fork), the whole official
file converts strictly into our Cascade configs with no option, and no other plan takes it
silently. The official files' keys and shapes: tests/data/official_cascade_*_det_keys.json."""
import json
import os

import pytest
import torch

import convert_checkpoint as tool
import fork_reference
from stvit_mm.checkpoints import ConversionError
from stvit_mm.checkpoints.whole_model import convert_loaded_checkpoint
from stvit_mm.models import STViTSwin
from stvit_mm.models.backbones.presets import SWIN_PRESETS
from stvit_mm.utils import build_model, load_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEADS = {'s': [3, 6, 12, 24], 'b': [4, 8, 16, 32]}
ARCH = {'s': 'small', 'b': 'base'}


def config_path(size):
    return f'configs/detection/cascade_mask_rcnn_stvit_r_swin_{size}_3x.py'


def official_detector(size, seed=0):
    """A synthetic official file: every tensor of the listed keys and shapes, random enough
    (layer scales, norm biases, BN statistics) that a different computation shows."""
    with open(os.path.join(ROOT, f'tests/data/official_cascade_stvit_r_swin_{size}_det_keys.json'),
              encoding='utf-8') as f:
        listed = json.load(f)
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in listed['parameters'].items():
        value = torch.randn(shape, generator=gen)
        if key.endswith('.weight') and len(shape) == 1:  # norms: around 1
            value = 1 + 0.2 * value
        elif len(shape) >= 2:
            value = value / shape[1] ** 0.5 if len(shape) == 2 else 0.2 * value
        else:  # biases, layer scales
            value = 0.2 * value
        state[key] = value
    for key, shape in listed['buffers'].items():
        if key.endswith('running_var'):
            state[key] = 1 + torch.rand(shape, generator=gen)
        elif key.endswith('running_mean'):
            state[key] = 0.1 * torch.randn(shape, generator=gen)
        else:  # num_batches_tracked, relative_position_index
            state[key] = torch.zeros(shape, dtype=torch.long)
    return {'meta': {'mmdet_version': '2.11.0', 'epoch': 36}, 'state_dict': state}


def backbone_part(state):
    return {k[len('backbone.'):]: v for k, v in state.items() if k.startswith('backbone.')}


def relative_errors(reference, ours):
    return [float((r - o).norm() / r.norm()) for r, o in zip(reference, ours)]


@pytest.fixture(scope='module')
def official_s():
    return official_detector('s')


@pytest.mark.parametrize('size', [(224, 224), (200, 260), (224, 260), (250, 224), (123, 97)],
                         ids=['no-padding', 'padding-both', 'padding-right', 'padding-bottom',
                              'odd'])
def test_official_det_preset_gives_the_forks_feature_maps(official_s, size):
    weights = backbone_part(official_s['state_dict'])
    model = STViTSwin('small', preset='official-det').eval()
    model.load_state_dict(weights, strict=True)  # converted by the backbone's load pre-hook
    images = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        reference = fork_reference.backbone(weights, images, HEADS['s'])
        ours = model(images)
    assert [o.shape for o in ours] == [r.shape for r in reference]
    assert max(relative_errors(reference, ours)) < 1e-5, relative_errors(reference, ours)


def test_other_plans_compute_another_network(official_s):
    """The same weights fit the classification plan and ours: only 'official-det' gives the
    fork's maps (so the agreement above is not a property of the weights)."""
    weights = backbone_part(official_s['state_dict'])
    images = torch.randn(1, 3, 200, 260, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        reference = fork_reference.backbone(weights, images, HEADS['s'])
    for kwargs in (dict(preset='official'), dict(preset='official', layer2_scope='local',
                                                 recovery_scope='local', fit_window=False)):
        model = STViTSwin('small', **kwargs).eval()
        model.load_state_dict(weights, strict=False)
        with torch.no_grad():
            errors = relative_errors(reference, model(images))
        assert errors[2] > 1e-2 and errors[3] > 1e-2, (kwargs, errors)


def test_official_det_preset_is_the_switches_spelt_out():
    preset = STViTSwin('small', preset='official-det').eval()
    spelt_out = STViTSwin('small', **SWIN_PRESETS['official-det']).eval()
    spelt_out.load_state_dict(preset.state_dict(), strict=True)
    images = torch.randn(1, 3, 96, 128)
    with torch.no_grad():
        for a, b in zip(preset(images), spelt_out(images)):
            assert torch.equal(a, b)


@pytest.mark.parametrize('kwargs, named', [
    (dict(layer2_scope='global'), 'layer2_scope'),
    (dict(neighbourhood=10), 'neighbourhood'),
    (dict(gen_shortcut=False), 'gen_shortcut=False'),
])
def test_windowed_plan_options_are_refused_with_the_fork_plan(kwargs, named):
    with pytest.raises(ValueError, match=rf"^STViTSwin: unit_plan='detection-fork' fixes its "
                       rf"units \(preset='official-det'\); remove {named}$"):
        STViTSwin('small', preset='official-det', **kwargs)


@pytest.mark.parametrize('size', ['s', 'b'])
def test_whole_official_file_converts_strictly_with_no_option(tmp_path, size, capsys):
    official = official_detector(size, seed=3)
    src, dst = tmp_path / 'official.pth', tmp_path / 'ours.pth'
    torch.save(official, src)
    assert tool.main([str(src), str(dst), '--from', 'official-stvit-r-swin',
                      '--config', config_path(size)]) == 0
    report = capsys.readouterr().out
    converted = torch.load(dst, map_location='cpu', weights_only=False)
    meta = converted['meta']
    assert meta['new'] == {} and meta['ignored'] == {}, report
    assert all(k.endswith('relative_position_index') for k in meta['dropped']), meta['dropped']
    # the neck, RPN and every cascade head keep mmdet 2.11's names, which are mmdet 3.3's
    source = official['state_dict']
    tasks = [k for k in source if not k.startswith('backbone.')]
    assert {k.split('.')[0] for k in tasks} == {'neck', 'rpn_head', 'roi_head'}
    for key in tasks:
        assert torch.equal(converted['state_dict'][key], source[key]), key
    model = build_model(load_config(config_path(size)))
    assert model.backbone.unit_plan == 'detection-fork'
    model.load_state_dict(converted['state_dict'], strict=True)
    model.eval()
    images = torch.randn(1, 3, 96, 136, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        reference = fork_reference.backbone(backbone_part(source), images, HEADS[size])
        ours = model.backbone(images)
    assert max(relative_errors(reference, ours)) < 1e-5


@pytest.mark.parametrize('config, options, plan', [
    (config_path('s'), ['--cfg-options', 'model.backbone.preset=official'], "'windowed'"),
    ('configs/detection/mask_rcnn_stvit_r_swin_s_3x.py', [], "'windowed'"),
])
def test_official_file_into_another_plan_is_refused_unless_asked(tmp_path, capsys, config,
                                                                 options, plan):
    src, dst = tmp_path / 'official.pth', tmp_path / 'ours.pth'
    torch.save(official_detector('s'), src)
    argv = [str(src), str(dst), '--from', 'official-stvit-r-swin', '--config', config, *options]
    assert tool.main(argv) == 1
    error = capsys.readouterr().err.strip()
    assert '\n' not in error and not dst.exists()
    assert ("trained with the detection fork's plan (unit_plan='detection-fork')" in error
            and f'has unit_plan={plan}' in error and '--allow-other-plan' in error), error
    if 'mask_rcnn' in config:
        return  # Mask R-CNN has no cascade heads: asked explicitly, the heads would not fit
    assert tool.main(argv + ['--allow-other-plan']) == 0
    assert dst.exists()


def test_load_from_an_official_file_converts_it_whole_for_the_forks_plan_only():
    """What the configs' ForeignCheckpointHook does with `load_from` / tools/test.py CKPT."""
    official = official_detector('s', seed=5)
    model = build_model(load_config(config_path('s')))
    checkpoint = {k: (dict(v) if isinstance(v, dict) else v) for k, v in official.items()}
    result = convert_loaded_checkpoint(checkpoint, model, name='official.pth')
    assert result is not None and result.new == {}
    assert torch.equal(checkpoint['state_dict']['roi_head.bbox_head.2.fc_cls.weight'],
                       official['state_dict']['roi_head.bbox_head.2.fc_cls.weight'])
    other = build_model(load_config(config_path('s'), {'model.backbone.preset': 'official'}))
    with pytest.raises(ConversionError, match="^official.pth: the checkpoint is an official "
                       "STViT-R detector"):
        convert_loaded_checkpoint(dict(official), other, name='official.pth')


def test_our_checkpoints_carry_the_plan():
    """A state dict cannot tell the plans apart, so the fork's units record theirs: a
    checkpoint of one plan is refused by a model of the other, in one line naming both."""
    fork = STViTSwin('small', preset='official-det', out_indices=(3, ))
    windowed = STViTSwin('small', preset='official', out_indices=(3, ))
    for source, target, theirs, ours in ((fork, windowed, 'detection-fork', 'windowed'),
                                         (windowed, fork, 'windowed', 'detection-fork')):
        with pytest.raises(ValueError) as info:
            target.load_state_dict(source.state_dict(), strict=False)
        message = str(info.value)
        assert '\n' not in message
        assert message.startswith('STViTSwin: the checkpoint has another sparsification plan '
                                  f"than this model: its units compute with unit_plan='{theirs}'")
        assert f"the model's with unit_plan='{ours}'" in message
    again = STViTSwin('small', preset='official-det', out_indices=(3, ))
    assert again.load_state_dict(fork.state_dict(), strict=True)


def test_semantic_maps_of_the_fork_plan_are_refused_in_one_line():
    from stvit_mm.analysis.semantic_maps import semantic_maps
    from stvit_mm.utils import ConfigError
    model = STViTSwin('tiny', preset='official-det').eval()
    with pytest.raises(ConfigError, match=r"^semantic maps: the detection fork's units "):
        semantic_maps(model, torch.randn(1, 3, 64, 64))
