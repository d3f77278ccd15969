"""``load_from`` an official classifier release: ForeignCheckpointHook converts it in the Runner.

An official STViT-R-Swin file (``{'model': {'patch_embed...', 'layers...', 'head.weight'}}``)
has no ``backbone.`` keys, so without the hook mmengine loads none of it. The files here are
made in the official layout from a model with random weights (tests/test_convert_checkpoint.py
renames our keys to the official code's names); the Runner is built from
configs/classification/stvit_r_swin_t_in1k.py with a 32-dim Swin.
"""
import os

import pytest
import torch
from mmengine.runner import Runner
from mmpretrain.models import VisionTransformer

from stvit_mm.checkpoints import ConversionError
from stvit_mm.checkpoints.whole_model import load_foreign_checkpoint
from stvit_mm.utils import build_model, load_config
from test_convert_checkpoint import (
    TINY_SWIN,
    official_stvit_r_swin,
    official_stvit_r_swin_state_dict,
    timm_deit_state_dict,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(ROOT, 'configs/classification/stvit_r_swin_t_in1k.py')
TINY = {'model.backbone.arch': dict(TINY_SWIN, _delete_=True), 'model.head.in_channels': 256,
        'model.backbone.drop_path_rate': 0.0}


@pytest.fixture(scope='module')
def official_release(tmp_path_factory):
    """(file, the backbone whose weights it holds, its tensors) in the official layout."""
    torch.manual_seed(0)
    source = official_stvit_r_swin(out_indices=(3, ))
    with torch.no_grad():  # far from any initialisation, so equality means loaded
        for tensor in source.state_dict().values():
            if tensor.is_floating_point():
                tensor.normal_()
    official = official_stvit_r_swin_state_dict(source)
    path = str(tmp_path_factory.mktemp('release') / 'stvit_r_swin_t_official.pth')
    torch.save({'model': official, 'epoch': 299}, path)
    return path, source, official


def make_runner(tmp_path, load_from, options=(), hooks=(), ignore=None):
    cfg = load_config(CONFIG, dict(TINY, **dict(options)))
    assert cfg.custom_hooks[-1].type == 'ForeignCheckpointHook'  # the config adds it
    if ignore is not None:
        cfg.custom_hooks[-1].ignore = ignore
    cfg.custom_hooks = list(hooks) + cfg.custom_hooks
    cfg.work_dir, cfg.load_from = str(tmp_path / 'work'), load_from
    cfg.experiment_name = f'{tmp_path.name}'  # one log folder per test
    return Runner.from_cfg(cfg)


def assert_holds(model, source, official):
    ours = model.state_dict()
    for key, value in source.state_dict().items():
        torch.testing.assert_close(ours[f'backbone.{key}'], value, rtol=0, atol=0, msg=key)
    torch.testing.assert_close(ours['head.fc.weight'], official['head.weight'], rtol=0, atol=0)
    torch.testing.assert_close(ours['head.fc.bias'], official['head.bias'], rtol=0, atol=0)


def test_load_from_official_release_fills_backbone_and_head(tmp_path, official_release, capsys):
    path, source, official = official_release
    # EMAHook copies checkpoint['state_dict'] into the averaged model: it must see ours
    runner = make_runner(tmp_path, path, hooks=[dict(type='EMAHook', priority='ABOVE_NORMAL')])
    key = 'backbone.stages.2.units.0.recovery.attn.kv.weight'
    assert not torch.equal(runner.model.state_dict()[key], source.state_dict()[key[9:]])
    runner.call_hook('before_run')  # as Runner.train does before load_or_resume
    runner.load_or_resume()  # what train() and test() call: load_from -> hooks -> model

    assert_holds(runner.model, source, official)
    ema = [h for h in runner.hooks if type(h).__name__ == 'EMAHook'][0]
    assert_holds(ema.ema_model.module, source, official)
    report = [line for line in capsys.readouterr().out.splitlines()
              if 'ForeignCheckpointHook: Converted' in line]
    assert len(report) == 1 and 'official-stvit-r layout) for ImageClassifier' in report[0]
    assert '2 non-backbone tensors kept' in report[0] and 'no key left at init' in report[0]


def test_own_checkpoint_passes_untouched(tmp_path, official_release):
    path, source, official = official_release
    model = build_model(load_config(CONFIG, TINY))
    load_foreign_checkpoint(model, path)  # the function for models built outside a Runner
    assert_holds(model, source, official)
    ours = str(tmp_path / 'ours.pth')
    saved = {'state_dict': model.state_dict(), 'meta': {'epoch': 3}}
    torch.save(saved, ours)

    runner = make_runner(tmp_path, ours)
    loaded = runner.load_checkpoint(ours)  # the checkpoint after the hooks
    assert loaded.keys() == saved.keys() and loaded['meta'] == saved['meta']
    assert loaded['state_dict'].keys() == saved['state_dict'].keys()
    for key, value in saved['state_dict'].items():
        assert torch.equal(loaded['state_dict'][key], value), key
    assert_holds(runner.model, source, official)


def test_release_of_another_plan_is_refused_in_one_line(tmp_path, official_release):
    path = official_release[0]
    runner = make_runner(tmp_path, path, options={'model.backbone.recovery': False})
    with pytest.raises(ConversionError) as error:
        runner.load_or_resume()
    message = str(error.value)
    assert '\n' not in message
    assert message.startswith(f'{path}: cannot convert for ImageClassifier: the checkpoint has '
                              'another sparsification plan than the target: stage 2 block 1 is '
                              'a STViT-R layer')


def test_unmapped_trained_key_is_refused_unless_ignored(tmp_path, official_release):
    path, source, official = official_release
    stray = str(tmp_path / 'stray.pth')
    torch.save({'model': dict(official, **{'layers.1.adapter.weight': torch.ones(3)})}, stray)
    with pytest.raises(ConversionError, match=r'1 source key with no place in the target:\n'
                       r'    layers\.1\.adapter\.weight: '):
        make_runner(tmp_path, stray).load_or_resume()

    runner = make_runner(tmp_path, stray, ignore=['adapter'])  # the tool's --ignore adapter
    runner.load_or_resume()
    assert_holds(runner.model, source, official)


def test_timm_deit_file_into_a_built_classifier_fills_backbone_and_head(tmp_path):
    """The non-Runner path (an inferencer's model): the DeiT head is ``head.layers.head``."""
    torch.manual_seed(0)
    config = os.path.join(ROOT, 'configs/classification/stvit_deit_t_synthetic.py')
    model = build_model(load_config(config))  # DeiT-T, 64x64 input, patch 8, 4 classes
    vit = VisionTransformer(arch='deit-tiny', img_size=64, patch_size=8)
    timm = timm_deit_state_dict(vit.state_dict(), num_classes=4)
    path = str(tmp_path / 'deit_tiny_timm.pth')
    torch.save({'model': timm}, path)

    result = load_foreign_checkpoint(model, path)
    assert (result.layout, result.source) == ('timm', 'deit-official')
    assert set(result.dropped) == {'cls_token'}
    # new: only what STViT adds to DeiT (the generator's layer scales and centres)
    assert result.new and all(k.startswith('backbone.generator.') for k in result.new)
    ours = model.state_dict()
    for source_key, our_key in (('head.weight', 'head.layers.head.weight'),
                                ('head.bias', 'head.layers.head.bias'),
                                ('blocks.0.attn.qkv.weight', 'backbone.blocks.0.attn.qkv.weight'),
                                ('norm.weight', 'backbone.norm.weight')):
        assert torch.equal(ours[our_key], timm[source_key]), our_key
