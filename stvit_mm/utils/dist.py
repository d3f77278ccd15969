"""Distributed launch on machines without GPUs (gloo on CPU processes; torchrun or srun)."""
import os
import subprocess
from contextlib import contextmanager
from datetime import timedelta
from typing import Iterator, List

import torch
import torch.distributed as dist
from mmengine.config import Config

from .config import typed_dicts

# Norm layers that synchronise statistics across processes through CUDA only (torch's
# SyncBatchNorm raises for CPU tensors while training; mmcv's MMSyncBN is a CUDA op).
GPU_ONLY_NORMS = ('SyncBN', 'MMSyncBN')


def sync_bn_to_bn(cfg: Config) -> List[str]:
    """Turn every ``SyncBN`` / ``MMSyncBN`` layer config in ``cfg.model`` into ``BN``, in place.

    Walks the whole model dict (mmseg heads keep theirs in ``decode_head.norm_cfg`` and
    ``auxiliary_head.norm_cfg``; a top-level ``norm_cfg`` variable does not reach them after
    inheritance, so that one cannot be the switch). Other keys (``requires_grad``...) stay.

    Returns:
        Where a layer config was switched, e.g. ``['model.decode_head.norm_cfg']``.
    """
    switched = []
    for where, node in typed_dicts(cfg.get('model'), 'model'):
        if node['type'] in GPU_ONLY_NORMS:
            node['type'] = 'BN'
            switched.append(where)
    return switched


def use_bn_without_gpus(cfg: Config) -> List[str]:
    """On a machine without CUDA, :func:`sync_bn_to_bn` and say so in one line (rank 0).

    mmengine reverts SyncBN itself for one process, but two CPU processes (gloo) keep it
    and fail in the first training step; with GPUs nothing changes.
    """
    if torch.cuda.is_available():
        return []
    switched = sync_bn_to_bn(cfg)
    if switched and int(os.environ.get('RANK', '0')) == 0:
        print(f'SyncBN -> BN (no GPU; SyncBatchNorm needs CUDA): {", ".join(switched)}',
              flush=True)
    return switched


class LaunchError(RuntimeError):
    """The process was not started the way its launcher needs."""


# Seconds a collective operation waits for the other processes before failing (a rank that
# stopped responding: frozen, its node cut off). A rank that dies is seen sooner, by the
# launcher (torchrun's agent, srun --kill-on-bad-exit). Not shorter by default: rank 0 alone
# computes metrics (COCO evaluation: minutes on a large set) while the others wait.
TIMEOUT_ENV = 'STVIT_DIST_TIMEOUT'
DEFAULT_TIMEOUT_S = 600


def collective_timeout(cfg: Config) -> int:
    """Seconds for collective operations: ``$STVIT_DIST_TIMEOUT``, else the config's
    ``env_cfg.dist_cfg.timeout`` (mmengine's key), else :data:`DEFAULT_TIMEOUT_S`."""
    value = os.environ.get(TIMEOUT_ENV) or cfg.get('env_cfg', {}).get('dist_cfg', {}).get(
        'timeout') or DEFAULT_TIMEOUT_S
    try:
        seconds = int(value)
    except (TypeError, ValueError):
        seconds = 0
    if seconds <= 0:
        raise LaunchError(f'{TIMEOUT_ENV} / env_cfg.dist_cfg.timeout must be a positive '
                          f'number of seconds, got {value!r}')
    return seconds


def prepare_launcher(cfg: Config, launcher: str) -> bool:
    """Make ``cfg`` run under ``launcher``; on a CPU-only machine set up gloo.

    mmengine's launcher assumes CUDA (``torch.cuda.set_device``). Without a GPU
    we initialise the gloo process group ourselves, which mmengine then
    reuses, wrap the model in DDP without device ids, and switch SyncBN
    layers to BN (:func:`use_bn_without_gpus`). Collective operations time out after
    :func:`collective_timeout` seconds, with GPUs too.

    Returns:
        True when this function created the process group (the caller
        destroys it at the end).
    """
    cfg.launcher = launcher
    use_bn_without_gpus(cfg)
    if launcher == 'none':
        return False
    timeout = collective_timeout(cfg)
    # mmengine's own launch (GPUs) reads it from here too, in seconds.
    cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})['timeout'] = timeout
    if torch.cuda.is_available():
        return False
    if launcher == 'slurm':
        set_env_from_slurm()
    elif launcher != 'pytorch':
        raise LaunchError(f'launcher {launcher!r} without GPUs is not supported; use '
                         "tools/dist_train.sh (torchrun, launcher 'pytorch') or "
                         "tools/slurm_train.sh (launcher 'slurm')")
    for var in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'):
        if var not in os.environ:
            raise LaunchError(f"launcher {launcher!r} needs ${var}; start with torchrun or "
                              'tools/dist_train.sh')
    cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})['backend'] = 'gloo'
    if cfg.get('model_wrapper_cfg') is None:
        cfg.model_wrapper_cfg = dict(type='MMDistributedDataParallel', device_ids=None)
    if not dist.is_initialized():
        dist.init_process_group(backend='gloo', timeout=timedelta(seconds=timeout))
        return True
    return False


def set_env_from_slurm() -> None:
    """torch.distributed's ``env://`` variables from the ones srun sets, as mmengine does
    for GPUs: rank, world size and local rank of this task; the first node of the job
    as master (``scontrol show hostnames``) unless MASTER_ADDR is set; MASTER_PORT
    29500 unless set."""
    missing = [v for v in ('SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_NODELIST')
               if v not in os.environ]
    if missing:
        raise LaunchError(f"launcher 'slurm' needs ${missing[0]}; start with srun or "
                          'tools/slurm_train.sh')
    os.environ['RANK'] = os.environ['SLURM_PROCID']
    os.environ['WORLD_SIZE'] = os.environ['SLURM_NTASKS']
    os.environ['LOCAL_RANK'] = os.environ.get('SLURM_LOCALID', '0')
    if 'MASTER_ADDR' not in os.environ:
        try:
            nodes = subprocess.run(['scontrol', 'show', 'hostnames',
                                    os.environ['SLURM_NODELIST']], check=True,
                                   capture_output=True, text=True).stdout.split()
        except (OSError, subprocess.CalledProcessError) as error:
            raise LaunchError(f"launcher 'slurm': cannot resolve the job's nodes with "
                               f'scontrol ({error}); set MASTER_ADDR') from None
        os.environ['MASTER_ADDR'] = nodes[0]
    os.environ.setdefault('MASTER_PORT', '29500')


@contextmanager
def launched(cfg: Config, launcher: str) -> Iterator[None]:
    """Run the body under ``launcher`` (see :func:`prepare_launcher`); clean up after."""
    own_group = prepare_launcher(cfg, launcher)
    try:
        yield
    except BaseException:
        if own_group and dist.is_initialized():
            dist.destroy_process_group()  # local for gloo: never waits for the others
        raise
    if own_group and dist.is_initialized():
        # All ranks done before any closes its connections: a rank that tears down while
        # another still talks to it can abort at exit (seen once, rank 0, under heavy load).
        dist.barrier()
        dist.destroy_process_group()
