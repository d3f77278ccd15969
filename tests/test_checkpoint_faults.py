"""Half-written and damaged checkpoints. A save cut short (the process killed mid-write, the
disk full) leaves no file under the checkpoint's name, and ``--resume`` continues from the
last whole one; a truncated or corrupted checkpoint is named in one line on every loading
path. Real tools/train.py runs; the kernel's file size limit (RLIMIT_FSIZE) cuts the save
at a chosen byte: with SIGXFSZ at its default the process is killed there, ignored (as
Python does) the write fails like on a full disk."""
import os
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from mmengine.runner import load_checkpoint

import convert_checkpoint as convert_tool
import test as test_tool
import train as train_tool
from stvit_mm.checkpoints.checkpoint_check import CheckpointReadError
from stvit_mm.checkpoints.safe_loading import (
    TRUST_ENV,
    load_checkpoint_file,
    use_safe_checkpoint_loading,
)
from stvit_mm.models import STViT
from stvit_mm.utils import ConfigError, build_model, load_config
from stvit_mm.utils.model_builder import load_weights

CONFIG = 'configs/classification/stvit_deit_t_synthetic.py'


def _damaged(source: Path, folder: Path, how: str) -> str:
    """A copy of ``source`` cut at half its size or with 64 bytes flipped mid-file."""
    data = bytearray(source.read_bytes())
    if how == 'truncated':
        data = data[:len(data) // 2]
    else:
        middle = len(data) // 2
        data[middle:middle + 64] = bytes(b ^ 0xFF for b in data[middle:middle + 64])
    path = folder / f'{how}.pth'
    path.write_bytes(bytes(data))
    return str(path)


def _one_line_naming(message: str, path: str, how: str) -> None:
    assert '\n' not in message and path in message and how in message, message


@pytest.mark.parametrize('trust', [False, True], ids=['weights-only', 'trusted'])
@pytest.mark.parametrize('how', ['truncated', 'corrupted'])
def test_loader_names_the_damaged_file(one_epoch_classifier, tmp_path, monkeypatch, how, trust):
    """Corrupted tensor bytes load silently with torch.load (no CRC check): the archive's
    CRCs are checked first."""
    work, _ = one_epoch_classifier
    path = _damaged(work / 'epoch_1.pth', tmp_path, how)
    if trust:
        monkeypatch.setenv(TRUST_ENV, '1')
    with pytest.raises(CheckpointReadError) as error:
        load_checkpoint_file(path, map_location='cpu')
    _one_line_naming(str(error.value), path, how)


def test_empty_file(tmp_path):
    path = tmp_path / 'empty.pth'
    path.touch()
    with pytest.raises(CheckpointReadError, match=f'{path} is empty'):
        load_checkpoint_file(str(path))


def test_mmengine_load_checkpoint_and_init_cfg(one_epoch_classifier, tmp_path):
    """mmengine's load_checkpoint and init_cfg=Pretrained (inferencers, fine-tuning)."""
    work, _ = one_epoch_classifier
    path = _damaged(work / 'epoch_1.pth', tmp_path, 'truncated')
    use_safe_checkpoint_loading()
    model = STViT(dict(embed_dims=32, num_heads=2), img_size=64, patch_size=8,
                  init_cfg=dict(type='Pretrained', checkpoint=path))
    with pytest.raises(CheckpointReadError) as error:
        model.init_weights()
    _one_line_naming(str(error.value), path, 'truncated')
    with pytest.raises(CheckpointReadError) as error:
        load_checkpoint(model, path, map_location='cpu')
    _one_line_naming(str(error.value), path, 'truncated')


def _exit_line(tool_main, argv) -> str:
    with pytest.raises(SystemExit) as exit_info:
        tool_main(argv)
    return str(exit_info.value.code)


@pytest.mark.parametrize('how', ['truncated', 'corrupted'])
def test_train_and_test_tools(one_epoch_classifier, tmp_path, repo_root, monkeypatch, how):
    work, options = one_epoch_classifier
    path = _damaged(work / 'epoch_1.pth', tmp_path, how)
    monkeypatch.chdir(repo_root)
    runs = [(train_tool.main, [CONFIG, '--work-dir', str(tmp_path / 'w'), '--resume', path,
                               '--cfg-options', *options]),
            (train_tool.main, [CONFIG, '--work-dir', str(tmp_path / 'w'), '--cfg-options',
                               *options, f'load_from={path}']),
            (test_tool.main, [CONFIG, path, '--work-dir', str(tmp_path / 't'),
                              '--cfg-options', *options])]
    for tool_main, argv in runs:
        message = _exit_line(tool_main, argv)
        assert message.startswith('error: ')
        _one_line_naming(message, path, how)


def test_resume_names_a_damaged_latest_checkpoint(one_epoch_classifier, tmp_path, repo_root,
                                                  monkeypatch):
    """``--resume`` without a path: last_checkpoint's file is checked before start-up."""
    work, options = one_epoch_classifier
    copy = tmp_path / 'work'
    shutil.copytree(work, copy)
    path = _damaged(work / 'epoch_1.pth', copy, 'corrupted')
    (copy / 'last_checkpoint').write_text(path)
    monkeypatch.chdir(repo_root)
    argv = [CONFIG, '--work-dir', str(copy), '--resume', '--cfg-options', *options]
    _one_line_naming(_exit_line(train_tool.main, argv), path, 'corrupted')
    (copy / 'last_checkpoint').write_text('')
    assert 'last_checkpoint is empty' in _exit_line(train_tool.main, argv)


def test_convert_tool_and_analysis_loader(one_epoch_classifier, tmp_path, capsys, repo_root):
    work, _ = one_epoch_classifier
    path = _damaged(work / 'epoch_1.pth', tmp_path, 'truncated')
    code = convert_tool.main([path, str(tmp_path / 'out.pth'), '--from', 'mmpretrain',
                              '--arch', 'stvit-deit-t'])
    assert code == 1
    _one_line_naming(capsys.readouterr().err.strip(), path, 'truncated')
    model = build_model(load_config(os.path.join(repo_root, CONFIG)))
    with pytest.raises(ConfigError) as error:  # tools/get_flops.py, benchmark.py, visualize
        load_weights(model, path)
    _one_line_naming(str(error.value), path, 'truncated')


# ---------------------------------------------------------------- saves cut short

def _train_with_file_size_limit(argv, limit: int, killed: bool, cwd: str):
    """tools/train.py under RLIMIT_FSIZE=limit; ``killed``: SIGXFSZ at its default action
    (the kernel kills the process at the limit) instead of Python's ignore (EFBIG)."""
    code = ('import runpy, signal, sys\n'
            f'if {killed}:\n'
            '    signal.signal(signal.SIGXFSZ, signal.SIG_DFL)\n'
            "sys.argv = ['tools/train.py', *sys.argv[1:]]\n"
            "runpy.run_path('tools/train.py', run_name='__main__')\n")

    def limit_file_size():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run([sys.executable, '-c', code, *argv], cwd=cwd, capture_output=True,
                          text=True, timeout=600, preexec_fn=limit_file_size)


def _checkpoints_load(work: Path) -> None:
    for path in work.glob('*.pth'):
        load_checkpoint_file(str(path), map_location='cpu')


def test_save_cut_short_leaves_no_checkpoint_and_resume_continues(one_epoch_classifier,
                                                                   tmp_path, repo_root):
    work, options = one_epoch_classifier
    copy = tmp_path / 'work'
    shutil.copytree(work, copy)
    (copy / 'last_checkpoint').write_text(str(copy / 'epoch_1.pth'))  # it held work's path
    epoch_2 = copy / 'epoch_2.pth'
    argv = [CONFIG, '--work-dir', str(copy), '--resume', '--cfg-options', *options,
            'train_cfg.max_epochs=2']
    limit = (work / 'epoch_1.pth').stat().st_size // 2  # the save of epoch 2 hits it

    killed = _train_with_file_size_limit(argv, limit, True, repo_root)
    assert killed.returncode == -signal.SIGXFSZ, killed.stderr[-3000:]
    assert 'resumed epoch: 1' in killed.stdout + killed.stderr
    assert not epoch_2.exists(), 'a half-written checkpoint under its final name'
    assert (copy / 'last_checkpoint').read_text().strip() == str(copy / 'epoch_1.pth')
    _checkpoints_load(copy)

    full = _train_with_file_size_limit(argv, limit, False, repo_root)
    assert full.returncode == 1, full.stderr[-3000:]
    last = full.stderr.strip().splitlines()[-1]
    assert last.startswith(f'error: cannot save {epoch_2} (File too large)'), last
    assert not epoch_2.exists() and not list(copy.glob('*.part'))
    _checkpoints_load(copy)

    proc = subprocess.run([sys.executable, 'tools/train.py', *argv], cwd=repo_root,
                          capture_output=True, text=True, timeout=600)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    assert 'resumed epoch: 1' in log
    checkpoint = load_checkpoint_file(str(epoch_2), map_location='cpu')
    assert checkpoint['meta']['epoch'] == 2 and checkpoint['state_dict']
    assert (copy / 'last_checkpoint').read_text().strip() == str(epoch_2)
