"""Kill and resume: a run SIGKILLed after a checkpoint and resumed with ``--resume``
continues from the saved iteration and repeats the uninterrupted run exactly.

Real ``tools/train.py`` processes train Mask R-CNN with a narrow STViT-R-Swin on the
generated COCO set. mmengine alone re-seeds the generators on resume, so the resumed
run draws other RPN/RoI samples and flips and its losses drift (seen: 2.9872 instead of
2.9789 at the first resumed iteration); ``RandomStateHook`` (added by tools/train.py)
saves the generator states in checkpoints and puts them back.
"""
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from stvit_mm.datasets.synthetic_coco import make_coco_instance
from stvit_mm.engine.random_state import (
    RandomStateHook,
    _RestoreBeforeItem,
    get_random_state,
    set_random_state,
)

MAX_ITERS, INTERVAL = 6, 3
# Mask R-CNN as in the synthetic config with 32-d backbone stages and 64-d neck/heads:
# an iteration takes about half a second on a CPU, so the runs are dominated by start-up.
TINY_CONFIG = """
_base_ = {base!r}
model = dict(
    backbone=dict(arch=dict(_delete_=True, embed_dims=32, depths=(2, 2, 6, 2),
                            num_heads=(1, 2, 4, 8))),
    neck=dict(in_channels=[32, 64, 128, 256], out_channels=64),
    rpn_head=dict(in_channels=64, feat_channels=64),
    roi_head=dict(bbox_roi_extractor=dict(out_channels=64),
                  bbox_head=dict(in_channels=64, fc_out_channels=128),
                  mask_roi_extractor=dict(out_channels=64),
                  mask_head=dict(in_channels=64, conv_out_channels=64)),
    train_cfg=dict(rpn_proposal=dict(nms_pre=200, max_per_img=64),
                   rcnn=dict(sampler=dict(num=32))),
    test_cfg=dict(rcnn=dict(score_thr=0.0)))
"""


def _options(data: str) -> list:
    options = [f'{s}_dataloader.dataset.data_root={data}' for s in ('train', 'val', 'test')]
    options += [f'{s}_evaluator.ann_file={data}annotations/instances_val.json'
                for s in ('val', 'test')]
    return options + [
        f'train_cfg.max_iters={MAX_ITERS}', f'train_cfg.val_interval={INTERVAL}',
        f'default_hooks.checkpoint.interval={INTERVAL}', 'default_hooks.logger.interval=1',
        'log_processor.window_size=1',  # log each iteration's own loss, not a window mean
        'param_scheduler.0.end=2', f'param_scheduler.1.T_max={MAX_ITERS}',
        f'param_scheduler.1.end={MAX_ITERS}', 'train_dataloader.dataset.pipeline.2.scale=(96,64)',
        'randomness.seed=0', 'randomness.deterministic=True']


def _command(config: Path, work: Path, data: str, *extra: str) -> list:
    return [sys.executable, 'tools/train.py', str(config), '--work-dir', str(work), *extra,
            '--cfg-options', *_options(data)]


def _train_scalars(work: Path) -> dict:
    """iteration -> logged training scalars, over every run (timestamp folder) in ``work``."""
    rows = {}
    for path in sorted(work.glob('*/vis_data/scalars.json')):
        for line in path.read_text().splitlines():
            row = json.loads(line)
            if 'loss' in row:
                rows[row['iter']] = row
    return rows


def _saved(work: Path) -> str:
    """The checkpoint ``last_checkpoint`` names (CheckpointHook writes it after the file)."""
    marker = work / 'last_checkpoint'
    text = marker.read_text().strip() if marker.is_file() else ''
    return text if text.endswith('.pth') else ''


def _load(path: Path) -> dict:
    return torch.load(path, map_location='cpu', weights_only=False)


@pytest.fixture(scope='module')
def setup(tmp_path_factory, repo_root):
    root = tmp_path_factory.mktemp('resume')
    data = str(root / 'coco') + '/'
    make_coco_instance(data, num_train=8, num_val=2, image_size=(96, 64), seed=0)
    config = root / 'tiny.py'
    config.write_text(TINY_CONFIG.format(
        base=os.path.join(repo_root, 'configs', 'detection',
                          'mask_rcnn_stvit_r_swin_t_synthetic.py')))
    return root, data, config


def test_killed_run_resumes_and_repeats_the_uninterrupted_run(setup, repo_root):
    root, data, config = setup
    ref, crash = root / 'reference', root / 'crashed'
    proc = subprocess.run(_command(config, ref, data), cwd=repo_root, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    # Start again, SIGKILL as soon as a checkpoint is complete (CheckpointHook writes
    # last_checkpoint after the file), i.e. in the middle of the run.
    crash.mkdir()
    with open(crash / 'console.log', 'w') as console:
        victim = subprocess.Popen(_command(config, crash, data), cwd=repo_root, stdout=console,
                                  stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 300
        while not _saved(crash) and victim.poll() is None:
            assert time.monotonic() < deadline, 'no checkpoint within 300 s'
            time.sleep(0.02)
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=60)
    assert victim.returncode == -signal.SIGKILL, (crash / 'console.log').read_text()[-3000:]
    resumed_from = int(Path(_saved(crash)).stem.split('_')[1])
    assert resumed_from < MAX_ITERS and not (crash / f'iter_{MAX_ITERS}.pth').exists()

    proc = subprocess.run(_command(config, crash, data, '--resume'), cwd=repo_root,
                          capture_output=True, text=True, timeout=600)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    assert f'resumed epoch: 0, iter: {resumed_from}' in log

    # Per-iteration losses and learning rates of the resumed iterations: those of the
    # uninterrupted run. Same process count, seed and deterministic CPU ops, so the
    # tolerance only allows for float printing; in practice they are equal.
    expected, got = _train_scalars(ref), _train_scalars(crash)
    assert sorted(expected) == list(range(1, MAX_ITERS + 1))
    assert sorted(got) == list(range(1, MAX_ITERS + 1))
    for it in range(resumed_from + 1, MAX_ITERS + 1):
        keys = sorted(k for k in expected[it] if k.startswith('loss') or k in ('lr', 'acc'))
        assert len(keys) >= 6
        np.testing.assert_allclose([got[it][k] for k in keys],
                                   [expected[it][k] for k in keys], rtol=1e-6, atol=1e-7,
                                   err_msg=f'iteration {it}, keys {keys}')

    # Final weights, optimizer and scheduler states agree too.
    a, b = _load(ref / f'iter_{MAX_ITERS}.pth'), _load(crash / f'iter_{MAX_ITERS}.pth')
    assert a['meta']['iter'] == b['meta']['iter'] == MAX_ITERS
    assert a['state_dict'].keys() == b['state_dict'].keys()
    for key in a['state_dict']:
        torch.testing.assert_close(b['state_dict'][key], a['state_dict'][key], rtol=1e-6,
                                   atol=1e-7, msg=lambda m: f'{key}: {m}')  # noqa: B023
    state_a, state_b = a['optimizer']['state'], b['optimizer']['state']
    assert state_a.keys() == state_b.keys()
    for index in state_a:
        for name, value in state_a[index].items():
            torch.testing.assert_close(state_b[index][name], value, rtol=1e-6, atol=1e-9)
    assert a['param_schedulers'] == b['param_schedulers']
    assert len(a['random_state']) == 1  # one process


# ------------------------------------------------------------------ the hook itself (fast)

def _draw() -> tuple:
    return random.random(), float(np.random.rand()), float(torch.rand(()))


def test_random_state_round_trip():
    state = get_random_state()
    first = _draw()
    set_random_state(state)
    assert _draw() == first


def test_states_come_back_after_the_skipped_batches_only():
    """IterBasedTrainLoop fetches the finished iterations' batches on resume; the states
    must come back after those and before the first new batch."""
    restored = []
    proxy = _RestoreBeforeItem(iter(range(5)), 2, lambda: restored.append(True))
    assert [next(proxy), next(proxy)] == [0, 1] and not restored
    assert next(proxy) == 2 and restored == [True]
    assert list(proxy) == [3, 4] and restored == [True]


class _Runner:
    def __init__(self, iteration):
        self.iter, self.epoch = iteration, 0
        self.train_loop = None


def test_validation_draws_do_not_shift_training_draws():
    hook = RandomStateHook()
    torch.manual_seed(0)
    hook.before_val(None)
    torch.rand(10)  # e.g. a validation data loader drawing its base seed
    hook.after_val(None)
    after_val = torch.rand(3)
    torch.manual_seed(0)
    torch.testing.assert_close(after_val, torch.rand(3))


def test_load_from_does_not_restore_states():
    """Fine-tuning from a checkpoint (load_from, iteration 0) keeps the fresh seed."""
    hook = RandomStateHook()
    torch.manual_seed(0)
    checkpoint = {}
    hook.before_save_checkpoint(None, checkpoint)
    torch.manual_seed(1)
    expected = torch.rand(3)
    torch.manual_seed(1)
    hook.after_load_checkpoint(None, checkpoint)
    hook.before_train(_Runner(0))
    torch.testing.assert_close(torch.rand(3), expected)


def test_epoch_based_resume_restores_before_the_epoch():
    """EpochBasedTrainLoop resumes at an epoch start: the states come back there."""
    hook = RandomStateHook()
    torch.manual_seed(0)
    checkpoint = {}
    hook.before_save_checkpoint(None, checkpoint)
    expected = torch.rand(3)
    torch.manual_seed(1)
    hook.after_load_checkpoint(None, checkpoint)
    runner = _Runner(4)
    runner.epoch = 1
    hook.before_train(runner)
    hook.before_train_epoch(runner)
    torch.testing.assert_close(torch.rand(3), expected)
    hook.before_train_epoch(runner)  # later epochs: nothing left to restore
    assert not torch.equal(torch.rand(3), expected)
