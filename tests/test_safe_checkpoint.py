"""Loading a checkpoint never runs pickled code, through every loading path; real
checkpoints (mmengine training state, official release files) still load."""
import os
import subprocess
import sys
import types
from collections import OrderedDict

import numpy as np
import pytest
import torch
from mmengine.runner.checkpoint import CheckpointLoader

import convert_checkpoint as convert_tool
import test as test_tool
import train as train_tool
from stvit_mm.checkpoints.safe_loading import TRUST_ENV, UnsafeCheckpointError, load_checkpoint_file
from stvit_mm.models import STViT, STViTSwin

CONFIG = 'configs/classification/stvit_deit_t_synthetic.py'


class RunsCode:
    """Unpickling this runs ``touch MARKER`` (what a malicious .pth does)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f'touch {self.marker}', )


@pytest.fixture
def malicious(tmp_path):
    marker = tmp_path / 'payload_ran'
    path = tmp_path / 'malicious.pth'
    torch.save({'state_dict': {'w': torch.zeros(1)}, 'meta': RunsCode(marker)}, path)
    yield str(path), marker
    assert not marker.exists(), 'the pickled payload ran'


@pytest.fixture(scope='module')
def trained(one_epoch_classifier):
    """A real mmengine checkpoint (message hub, optimizer, RandomStateHook states)."""
    work, options = one_epoch_classifier
    return str(work / 'epoch_1.pth'), options


def test_refused_with_one_line_naming_the_type_and_the_opt_in(malicious):
    path, _ = malicious
    with pytest.raises(UnsafeCheckpointError) as error:
        load_checkpoint_file(path)
    message = str(error.value)
    assert 'posix.system' in message and TRUST_ENV in message and '\n' not in message


def test_trusted_opt_in_unpickles_fully(tmp_path, monkeypatch):
    marker = tmp_path / 'ran'
    path = tmp_path / 'trusted.pth'
    torch.save({'meta': RunsCode(marker)}, path)
    monkeypatch.setenv(TRUST_ENV, '1')
    load_checkpoint_file(str(path))
    assert marker.exists()  # the user's explicit choice for a file they trust


def test_importing_stvit_mm_leaves_mmengine_loading_alone(malicious):
    path, _ = malicious
    code = ('import stvit_mm.models\n'
            'from mmengine.runner.checkpoint import CheckpointLoader\n'
            "assert CheckpointLoader._schemes[''].__module__.startswith('mmengine')\n"
            'try:\n'
            f'    CheckpointLoader.load_checkpoint({path!r}, map_location="cpu")\n'
            'except Exception as error:\n'
            "    print('refused', type(error).__name__)\n")
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         timeout=300, cwd=os.path.dirname(os.path.dirname(__file__)))
    assert out.returncode == 0, out.stderr
    assert 'refused UnpicklingError' in out.stdout


@pytest.mark.parametrize('backbone', [
    lambda ckpt: STViT(arch='deit-tiny', init_cfg=dict(type='Pretrained', checkpoint=ckpt)),
    lambda ckpt: STViTSwin(arch=dict(embed_dims=32, depths=(2, 2, 6, 2),
                                     num_heads=(1, 2, 4, 8)),
                           init_cfg=dict(type='Pretrained', checkpoint=ckpt)),
], ids=['STViT', 'STViTSwin'])
def test_init_cfg_pretrained_refuses(malicious, backbone):
    path, _ = malicious
    model = backbone(path)
    with pytest.raises(UnsafeCheckpointError, match='posix.system'):
        model.init_weights()
    assert CheckpointLoader._schemes[''].__module__ == 'stvit_mm.checkpoints.safe_loading'


def _tool_error(tool_main, argv):
    with pytest.raises(SystemExit) as exit_info:
        tool_main(argv)
    return str(exit_info.value.code)


def test_train_load_from_and_resume_refuse(malicious, trained, repo_root, tmp_path,
                                           monkeypatch):
    path, _ = malicious
    _, options = trained
    monkeypatch.chdir(repo_root)
    for extra in (['--cfg-options', *options, f'load_from={path}'],
                  ['--resume', path, '--cfg-options', *options]):
        message = _tool_error(train_tool.main,
                              [CONFIG, '--work-dir', str(tmp_path / 'w'), *extra])
        assert message.startswith('error: ') and 'posix.system' in message


def test_test_tool_refuses(malicious, trained, repo_root, tmp_path, monkeypatch):
    path, _ = malicious
    _, options = trained
    monkeypatch.chdir(repo_root)
    message = _tool_error(test_tool.main, [CONFIG, path, '--work-dir', str(tmp_path / 'w'),
                                           '--cfg-options', *options])
    assert message.startswith('error: ') and 'posix.system' in message


def test_convert_tool_refuses(malicious, tmp_path, capsys):
    path, _ = malicious
    code = convert_tool.main([path, str(tmp_path / 'out.pth'), '--from', 'mmpretrain',
                              '--arch', 'stvit-deit-t'])
    assert code == 1 and 'posix.system' in capsys.readouterr().err


def test_mmengine_training_checkpoint_loads_and_resumes(trained, repo_root, tmp_path,
                                                        monkeypatch):
    path, options = trained
    checkpoint = load_checkpoint_file(path, map_location='cpu')  # no opt-in needed
    assert {'message_hub', 'optimizer', 'random_state'} <= set(checkpoint)
    assert np.isfinite(checkpoint['message_hub']['log_scalars']['train/loss'].mean())
    monkeypatch.chdir(repo_root)
    metrics = test_tool.main([CONFIG, path, '--work-dir', str(tmp_path / 'test'),
                              '--cfg-options', *options])
    assert 'accuracy/top1' in metrics


def test_official_release_file_loads_without_yacs(tmp_path, monkeypatch):
    # Official STViT-R / Swin releases pickle their yacs CfgNode training config beside the
    # weights; it loads as an OrderedDict, without importing yacs.
    yacs = types.ModuleType('yacs')
    yacs_config = types.ModuleType('yacs.config')

    class CfgNode(dict):
        pass

    CfgNode.__module__, CfgNode.__qualname__ = 'yacs.config', 'CfgNode'
    yacs_config.CfgNode = CfgNode
    monkeypatch.setitem(sys.modules, 'yacs', yacs)
    monkeypatch.setitem(sys.modules, 'yacs.config', yacs_config)
    node = CfgNode(MODEL=CfgNode(TYPE='swin'), AMP_OPT_LEVEL='O1')
    node.__dict__['__immutable__'] = True
    path = tmp_path / 'release.pth'
    torch.save({'model': {'w': torch.ones(2)}, 'config': node, 'epoch': 299}, path)
    monkeypatch.delitem(sys.modules, 'yacs.config')
    monkeypatch.delitem(sys.modules, 'yacs')

    loaded = load_checkpoint_file(str(path))
    assert isinstance(loaded['config'], OrderedDict)
    assert loaded['config']['MODEL']['TYPE'] == 'swin' and loaded['epoch'] == 299
    assert torch.equal(loaded['model']['w'], torch.ones(2))


class ReachesPastHistoryBuffer:
    """``getattr(HistoryBuffer, '__init__')``: the first step of walking from an allowed
    class to its module's globals (and from there to ``os``)."""

    def __reduce__(self):
        from mmengine.logging.history_buffer import HistoryBuffer
        return getattr, (HistoryBuffer, '__init__')


def test_getattr_is_allowed_only_for_history_buffer_statistics(tmp_path):
    path = tmp_path / 'getattr.pth'
    torch.save({'meta': ReachesPastHistoryBuffer()}, path)
    with pytest.raises(UnsafeCheckpointError, match=r"getattr\(.*HistoryBuffer.*'__init__'\)"):
        load_checkpoint_file(str(path))
