"""Distributed launch on machines without GPUs (gloo on CPU processes)."""
import os
from contextlib import contextmanager
from typing import Iterator

import torch
import torch.distributed as dist
from mmengine.config import Config


def prepare_launcher(cfg: Config, launcher: str) -> bool:
    """Make ``cfg`` run under ``launcher``; on a CPU-only machine set up gloo.

    mmengine's launcher assumes CUDA (``torch.cuda.set_device``). Without a GPU
    we initialise the gloo process group ourselves, which mmengine then
    reuses, and wrap the model in DDP without device ids.

    Returns:
        True when this function created the process group (the caller
        destroys it at the end).
    """
    cfg.launcher = launcher
    if launcher == 'none' or torch.cuda.is_available():
        return False
    if launcher != 'pytorch':
        raise ValueError(f'launcher {launcher!r} without GPUs is not supported; use '
                         "tools/dist_train.sh (torchrun, launcher 'pytorch')")
    for var in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'):
        if var not in os.environ:
            raise RuntimeError(f"launcher 'pytorch' needs ${var}; start with torchrun or "
                               'tools/dist_train.sh')
    cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})['backend'] = 'gloo'
    if cfg.get('model_wrapper_cfg') is None:
        cfg.model_wrapper_cfg = dict(type='MMDistributedDataParallel', device_ids=None)
    if not dist.is_initialized():
        dist.init_process_group(backend='gloo')
        return True
    return False


@contextmanager
def launched(cfg: Config, launcher: str) -> Iterator[None]:
    """Run the body under ``launcher`` (see :func:`prepare_launcher`); clean up after."""
    own_group = prepare_launcher(cfg, launcher)
    try:
        yield
    finally:
        if own_group and dist.is_initialized():
            dist.destroy_process_group()
