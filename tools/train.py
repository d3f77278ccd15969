#!/usr/bin/env python
"""Train a model from a config (mmdet / mmseg / mmpretrain / mmaction2 alike).

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
                          [--auto-scale-lr] [--cfg-options k=v ...] [--launcher pytorch]

Multi-process: tools/dist_train.sh CONFIG GPUS (gloo on CPU when there is no GPU). Without
GPUs, SyncBN layers (mmseg heads) become BN, with one log line.
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
# Idle OpenMP threads sleep instead of spinning: with more processes than cores (a second
# job, gloo workers) spinning threads made training several times slower.
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')

import stvit_mm  # noqa: E402,F401  (compat shims before any mm* import)
from mmengine.config import DictAction  # noqa: E402

from stvit_mm.utils.safe_checkpoint import add_trust_checkpoint_argument  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a detector/segmentor/classifier/recognizer')
    parser.add_argument('config', help='config file (path or pkg::rel, e.g. mmdet::...)')
    parser.add_argument('--work-dir', help='where logs and checkpoints go '
                        '(default: ./work_dirs/<config name>)')
    parser.add_argument('--resume', nargs='?', type=str, const='auto',
                        help='resume from CKPT, or from the latest checkpoint in the work '
                        'dir when no CKPT is given')
    parser.add_argument('--amp', action='store_true', help='mixed precision (CUDA)')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the learning rate by the actual batch size')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries, e.g. train_cfg.max_iters=10')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    add_trust_checkpoint_argument(parser)
    parser.add_argument('--local-rank', '--local_rank', type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def build_cfg(args: argparse.Namespace):
    import torch
    import stvit_mm.engine  # noqa: F401  (registers RandomStateHook)
    from stvit_mm.datasets.image_errors import name_unreadable_images
    from stvit_mm.utils.config import check_data_paths, load_config
    from stvit_mm.utils.safe_checkpoint import use_safe_checkpoint_loading

    name_unreadable_images()  # a corrupt image names the file and the fix
    use_safe_checkpoint_loading()  # load_from / resume never run pickled code

    cfg = load_config(args.config, args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    if args.amp:
        if not torch.cuda.is_available():
            raise SystemExit('error: --amp needs a CUDA device (mmengine AmpOptimWrapper); '
                             'on CPU train in fp32')
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if args.auto_scale_lr:
        if 'auto_scale_lr' not in cfg or 'base_batch_size' not in cfg.auto_scale_lr:
            raise SystemExit('error: --auto-scale-lr needs auto_scale_lr.base_batch_size in '
                             'the config')
        cfg.auto_scale_lr.enable = True
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        if not osp.isfile(args.resume):
            raise SystemExit(f'error: --resume checkpoint not found: {args.resume}')
        cfg.resume, cfg.load_from = True, args.resume
    # Exact resume: checkpoints carry the generator states (stvit_mm/engine/random_state.py).
    hooks = list(cfg.get('custom_hooks') or [])
    if not any(isinstance(hook, dict) and hook.get('type') == 'RandomStateHook'
               for hook in hooks):
        cfg.custom_hooks = hooks + [dict(type='RandomStateHook')]
        # ... and the dumped config imports it, so it also runs without this script.
        custom = cfg.setdefault('custom_imports', dict(imports=[], allow_failed_imports=False))
        imports = custom.get('imports') or []
        imports = [imports] if isinstance(imports, str) else list(imports)
        if 'stvit_mm.engine' not in imports:
            custom['imports'] = imports + ['stvit_mm.engine']
    check_data_paths(cfg, ('train', 'val'))
    return cfg


def main(argv=None) -> None:
    from mmengine.runner import Runner
    from stvit_mm.utils.dist import LaunchError, launched
    from stvit_mm.utils.safe_checkpoint import UnsafeCheckpointError

    args = parse_args(argv)
    try:
        cfg = build_cfg(args)
    except (FileNotFoundError, ValueError) as err:
        raise SystemExit(f'error: {err}')
    try:
        with launched(cfg, args.launcher):
            Runner.from_cfg(cfg).train()
    except (LaunchError, UnsafeCheckpointError) as err:
        raise SystemExit(f'error: {err}')


if __name__ == '__main__':
    main()
