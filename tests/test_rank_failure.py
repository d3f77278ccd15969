"""A rank lost mid-epoch in a 2-process CPU run (gloo), under torchrun and under Slurm: the
job ends within a bounded time with a non-zero exit and the lost rank named, and
``--resume`` reaches the weights of an uninterrupted run.

A rank killed (SIGKILL: OOM killer, preemption) is seen by the launcher at once; a rank
that stops answering (SIGSTOP here: a frozen process, a node cut off) is seen when a
collective operation times out, after ``STVIT_DIST_TIMEOUT`` seconds (stvit_mm/utils/dist.py).
The job tests are slow: about five 2-process runs of the synthetic classifier.
"""
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from mmengine.config import Config

import slurm_cluster
from slurm_cluster import HAVE_SLURM, WHY_NOT, free_port
from stvit_mm.datasets import make_imagenet_style
from stvit_mm.utils.dist import DEFAULT_TIMEOUT_S, LaunchError, collective_timeout

CONFIG = 'configs/classification/stvit_deit_t_synthetic.py'
EPOCHS, ITERS_PER_EPOCH = 3, 8  # 32 images, 2 processes, 2 per batch
BOUND_S = 120  # the job must end this long after the fault at most
MID_EPOCH_2 = f'Epoch(train) [2][3/{ITERS_PER_EPOCH}]'  # rank 0 logged a step of epoch 2


def _options(data: Path) -> list:
    return [f'{s}_dataloader.dataset.data_root={data}' for s in ('train', 'val', 'test')] + [
        f'train_cfg.max_epochs={EPOCHS}', f'train_cfg.val_interval={EPOCHS}',
        'default_hooks.checkpoint.interval=1', 'default_hooks.logger.interval=1',
        'train_dataloader.batch_size=2', f'param_scheduler.0.T_max={EPOCHS}',
        'randomness.seed=0', 'randomness.deterministic=True']


def _torchrun(data: Path, work: Path, *extra: str) -> list:
    return ['bash', 'tools/dist_train.sh', CONFIG, '2', '--work-dir', str(work), *extra,
            '--cfg-options', *_options(data)]


def _srun(data: Path, work: Path, *extra: str) -> list:
    return ['bash', 'tools/slurm_train.sh', 'cpu', 'stvit-fault', CONFIG, str(work), *extra,
            '--cfg-options', *_options(data)]


def _env(tag: str, base=None) -> dict:
    return dict(base or os.environ, PYTHON=sys.executable, PORT=str(free_port()),
                MASTER_PORT=str(free_port()), STVIT_FAULT_TAG=tag, GPUS='2',
                GPUS_PER_NODE='2', CPUS_PER_TASK='1', GRES='')


def _rank_pid(tag: str, rank_variable: str, rank: int) -> int:
    """The training process of ``rank`` in the job whose environment carries ``tag``."""
    wanted = {f'STVIT_FAULT_TAG={tag}'.encode(), f'{rank_variable}={rank}'.encode()}
    for pid in filter(str.isdigit, os.listdir('/proc')):
        try:
            with open(f'/proc/{pid}/environ', 'rb') as f:
                environ = set(f.read().split(b'\0'))
            with open(f'/proc/{pid}/cmdline', 'rb') as f:
                argv = f.read().split(b'\0')
        except OSError:
            continue
        if wanted <= environ and any(arg.endswith(b'train.py') for arg in argv) \
                and not argv[0].endswith(b'srun'):
            return int(pid)
    raise AssertionError(f'no process of rank {rank} with tag {tag}')


def _fault_mid_epoch(command, env, work: Path, rank_variable: str, sig: int):
    """Start the job, send ``sig`` to rank 1 once rank 0 is in epoch 2; (exit status,
    seconds from the fault to the end, console output)."""
    work.mkdir(parents=True)
    console = work / 'console.log'
    with open(console, 'w') as out:
        job = subprocess.Popen(command, cwd=env['REPO'], env=env, stdout=out,
                               stderr=subprocess.STDOUT, start_new_session=True)
    victim = None
    try:
        deadline = time.monotonic() + 600
        while MID_EPOCH_2 not in console.read_text():
            assert job.poll() is None and time.monotonic() < deadline, console.read_text()[-3000:]
            time.sleep(0.05)
        victim = _rank_pid(env['STVIT_FAULT_TAG'], rank_variable, 1)
        os.kill(victim, sig)
        start = time.monotonic()
        try:
            job.wait(timeout=BOUND_S + 60)
        except subprocess.TimeoutExpired:
            pass
        return job.returncode, time.monotonic() - start, console.read_text()
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)
            job.wait()
        if victim is not None:
            try:
                os.kill(victim, signal.SIGKILL)  # a stopped rank the launcher left behind
            except ProcessLookupError:
                pass


def _same_final_state(reference: Path, resumed: Path) -> None:
    load = lambda p: torch.load(p / f'epoch_{EPOCHS}.pth', map_location='cpu',  # noqa: E731
                                weights_only=False)
    a, b = load(reference), load(resumed)
    assert a['meta']['iter'] == b['meta']['iter'] == EPOCHS * ITERS_PER_EPOCH
    assert a['state_dict'].keys() == b['state_dict'].keys()
    for key in a['state_dict']:
        torch.testing.assert_close(b['state_dict'][key], a['state_dict'][key], rtol=1e-6,
                                   atol=1e-7, msg=lambda m, key=key: f'{key}: {m}')
    for index, state in a['optimizer']['state'].items():
        for name, value in state.items():
            torch.testing.assert_close(b['optimizer']['state'][index][name], value, rtol=1e-6,
                                       atol=1e-9)
    assert len(b['random_state']) == 2  # both ranks' generators, saved and restored


@pytest.fixture(scope='module')
def setup(tmp_path_factory, repo_root):
    """Data and the uninterrupted 2-process run (torchrun) the resumed runs must repeat."""
    root = tmp_path_factory.mktemp('rank_failure')
    data = root / 'data'
    make_imagenet_style(str(data), train_per_class=ITERS_PER_EPOCH, val_per_class=2)
    reference = root / 'reference'
    proc = subprocess.run(_torchrun(data, reference), cwd=repo_root, env=_env('reference'),
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return root, data, reference


def _resume(command, env) -> str:
    proc = subprocess.run(command, cwd=env['REPO'], env=env, capture_output=True, text=True,
                          timeout=900)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    return log


@pytest.mark.slow
def test_torchrun_rank_killed_mid_epoch(setup, repo_root):
    root, data, reference = setup
    work = root / 'torchrun'
    env = dict(_env('torchrun'), REPO=repo_root)
    code, took, log = _fault_mid_epoch(_torchrun(data, work), env, work, 'RANK',
                                       signal.SIGKILL)
    assert code not in (0, None) and took < BOUND_S, (code, took, log[-3000:])
    # torchrun's report: the root cause is rank 1, killed
    assert re.search(r'Root Cause.*\n.*\n.*\n.*\n\s*rank\s*: 1 \(local_rank: 1\)\n'
                     r'\s*exitcode\s*: -9', log), log[-3000:]
    assert (work / 'epoch_1.pth').is_file() and not (work / 'epoch_2.pth').exists()

    log = _resume(_torchrun(data, work, '--resume'), dict(env, PORT=str(free_port())))
    assert f'resumed epoch: 1, iter: {ITERS_PER_EPOCH}' in log
    _same_final_state(reference, work)


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_SLURM, reason=WHY_NOT)
def test_slurm_task_killed_mid_epoch(setup, repo_root):
    root, data, reference = setup
    work = root / 'slurm'
    with slurm_cluster.one_node_cluster(root / 'cluster') as cluster_env:
        env = dict(_env('slurm', cluster_env), REPO=repo_root)
        code, took, log = _fault_mid_epoch(_srun(data, work), env, work, 'SLURM_PROCID',
                                           signal.SIGKILL)
        assert code not in (0, None) and took < BOUND_S, (code, took, log[-3000:])
        assert re.search(r'srun: error: \S+: task 1: Killed', log), log[-3000:]
        assert (work / 'epoch_1.pth').is_file() and not (work / 'epoch_2.pth').exists()

        log = _resume(_srun(data, work, '--resume'), dict(env, MASTER_PORT=str(free_port())))
    assert f'resumed epoch: 1, iter: {ITERS_PER_EPOCH}' in log
    _same_final_state(reference, work)


@pytest.mark.slow
def test_frozen_rank_ends_the_job_after_the_timeout(setup, repo_root):
    """SIGSTOP: the process lives but never answers; nothing tells the launcher. Without a
    timeout of our own, gloo's default (30 minutes) would keep the job hanging."""
    root, data, _ = setup
    work = root / 'frozen'
    env = dict(_env('frozen'), REPO=repo_root, STVIT_DIST_TIMEOUT='30')
    code, took, log = _fault_mid_epoch(_torchrun(data, work), env, work, 'RANK',
                                       signal.SIGSTOP)
    assert code not in (0, None) and took < BOUND_S, (code, took, log[-3000:])
    assert 'error: rank 0: no answer from another rank for 30 s' in log, log[-3000:]


def test_collective_timeout_comes_from_the_environment_or_the_config(monkeypatch):
    monkeypatch.delenv('STVIT_DIST_TIMEOUT', raising=False)
    assert collective_timeout(Config(dict())) == DEFAULT_TIMEOUT_S
    assert collective_timeout(Config(dict(env_cfg=dict(dist_cfg=dict(timeout=90))))) == 90
    monkeypatch.setenv('STVIT_DIST_TIMEOUT', '45')
    assert collective_timeout(Config(dict(env_cfg=dict(dist_cfg=dict(timeout=90))))) == 45
    monkeypatch.setenv('STVIT_DIST_TIMEOUT', 'soon')
    with pytest.raises(LaunchError, match="STVIT_DIST_TIMEOUT.*positive.*'soon'"):
        collective_timeout(Config(dict()))
