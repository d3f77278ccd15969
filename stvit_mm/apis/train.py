"""Training from a config as tools/train.py runs it (any task package: mmdet, mmseg,
mmpretrain, mmaction2)."""
import argparse
import os.path as osp
from typing import Optional

from mmengine.config import Config

from ..checkpoints.atomic_save import use_atomic_saving
from ..checkpoints.checkpoint_check import latest_checkpoint
from ..checkpoints.safe_loading import use_safe_checkpoint_loading
from ..datasets.annotation_errors import check_annotation_files
from ..datasets.image_errors import name_unreadable_images
from ..utils.config import add_custom_import, check_data_paths, load_config
from .run_errors import exit_on_run_errors


def default_work_dir(config: str) -> str:
    """``./work_dirs/<config name>``, where OpenMMLab tools put a run without --work-dir."""
    return osp.join('./work_dirs', osp.splitext(osp.basename(config))[0])


def train_config(config: str, cfg_options: Optional[dict] = None, work_dir: Optional[str] = None,
                 resume: Optional[str] = None, amp: bool = False,
                 auto_scale_lr: bool = False) -> Config:
    """The config a training run uses: loaded and checked (:func:`load_config`), the work
    dir set, ``--amp`` / ``--auto-scale-lr`` / ``--resume`` applied, ``RandomStateHook``
    added (exact resume), unreadable images named; ValueError or FileNotFoundError in one
    line for what is wrong (CheckpointReadError, a ValueError, for a damaged checkpoint).

    ``resume``: None (no resume), ``'auto'`` (the checkpoint the work dir's
    ``last_checkpoint`` names, checked whole; from scratch when there is none) or a
    checkpoint path.
    """
    import torch

    from .. import engine  # noqa: F401  (registers RandomStateHook)

    cfg = load_config(config, cfg_options)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = default_work_dir(config)
    if amp:
        if not torch.cuda.is_available():
            raise ValueError('--amp needs a CUDA device (mmengine AmpOptimWrapper); on CPU '
                             'train in fp32')
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if auto_scale_lr:
        if 'auto_scale_lr' not in cfg or 'base_batch_size' not in cfg.auto_scale_lr:
            raise ValueError('--auto-scale-lr needs auto_scale_lr.base_batch_size in the config')
        cfg.auto_scale_lr.enable = True
    if resume == 'auto':
        # The file mmengine would pick, checked before anything is built: a marker or file
        # left damaged by a crash is named in one line instead of failing after start-up.
        cfg.resume, cfg.load_from = True, latest_checkpoint(cfg.work_dir)
    elif resume is not None:
        if not osp.isfile(resume):
            raise FileNotFoundError(f'--resume checkpoint not found: {resume}')
        cfg.resume, cfg.load_from = True, resume
    # Exact resume: checkpoints carry the generator states (stvit_mm/engine/random_state.py).
    hooks = list(cfg.get('custom_hooks') or [])
    if not any(isinstance(hook, dict) and hook.get('type') == 'RandomStateHook'
               for hook in hooks):
        cfg.custom_hooks = hooks + [dict(type='RandomStateHook')]
        add_custom_import(cfg, 'stvit_mm.engine')  # ... so the dumped config runs it too
    # A corrupt image names the file and the fix. Not test_dataloader: inferencers look for
    # LoadImageFromFile there, in the config dumped into the work dir too.
    name_unreadable_images(cfg, ('train', 'val'))
    check_data_paths(cfg, ('train', 'val'))
    check_annotation_files(cfg, ('train', 'val'))
    return cfg


def train(cfg: Config, launcher: str = 'none') -> None:
    """Train with mmengine's Runner under ``launcher`` ('none', 'pytorch', 'slurm', 'mpi');
    checkpoints (load_from, resume) are read without running pickled code, checked whole,
    and saved atomically (a save cut short leaves no half-written checkpoint)."""
    from mmengine.runner import Runner

    from ..utils.dist import launched

    use_safe_checkpoint_loading()
    use_atomic_saving()
    with launched(cfg, launcher):
        Runner.from_cfg(cfg).train()


def train_from_args(args: argparse.Namespace) -> None:
    """tools/train.py after parsing: a bad config, path or checkpoint, an unreadable image
    or annotation file, a failed save exits with one line ``error: ...``."""
    try:
        cfg = train_config(args.config, args.cfg_options, args.work_dir, args.resume, args.amp,
                           args.auto_scale_lr)
    except (FileNotFoundError, ValueError) as err:
        raise SystemExit(f'error: {err}') from err
    with exit_on_run_errors(cfg, ('train', 'val')):
        train(cfg, args.launcher)
