#!/usr/bin/env python
"""Evaluate a checkpoint with the config's test dataloader and evaluator.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out results.pkl]
                         [--show-dir DIR] [--cfg-options k=v ...] [--launcher pytorch]
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
    parser = argparse.ArgumentParser(description='Test (and evaluate) a checkpoint')
    parser.add_argument('config', help='config file (path or pkg::rel)')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='where logs and metrics go')
    parser.add_argument('--out', help='dump predictions to this .pkl file')
    parser.add_argument('--show-dir', help='save drawn predictions under this folder '
                        '(mmdet/mmaction/mmpretrain: inside the work dir; mmseg: this folder, '
                        'images in vis_data/vis_image/)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    add_trust_checkpoint_argument(parser)
    parser.add_argument('--local-rank', '--local_rank', type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def enable_visualization(cfg, show_dir: str) -> None:
    """Switch on the codebase's visualisation hook (its option names differ)."""
    hook = cfg.get('default_hooks', {}).get('visualization')
    if hook is None:
        raise SystemExit('error: --show-dir: the config has no default_hooks.visualization')
    if hook['type'] == 'VisualizationHook' and 'enable' in hook:  # mmpretrain
        hook.update(enable=True, out_dir=show_dir)
    elif hook['type'].rsplit('.', 1)[-1] == 'SegVisualizationHook':
        # mmseg's hook has no output folder (test_out_dir is a TypeError): it draws every
        # `interval`-th image into the visualizer's save_dir (vis_data/vis_image/ there).
        hook.update(draw=True, interval=1)
        # A named visualizer is one per process (mmengine's ManagerMixin): under the stock
        # name, a run after another one in the same process would draw into the first one's
        # save_dir. One name per show dir.
        cfg.visualizer.update(save_dir=show_dir, name=f'show_dir:{osp.abspath(show_dir)}')
    else:  # mmdet DetVisualizationHook, mmaction VisualizationHook
        hook.update(draw=True, test_out_dir=show_dir)


def build_cfg(args: argparse.Namespace):
    from stvit_mm.datasets.image_errors import name_unreadable_images
    from stvit_mm.utils.config import check_data_paths, load_config
    from stvit_mm.utils.safe_checkpoint import use_safe_checkpoint_loading

    name_unreadable_images()  # a corrupt image names the file and the fix
    use_safe_checkpoint_loading()  # load_from / resume never run pickled code

    cfg = load_config(args.config, args.cfg_options)
    if not osp.isfile(args.checkpoint):
        raise SystemExit(f'error: checkpoint not found: {args.checkpoint}')
    cfg.load_from = args.checkpoint
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    # Testing needs no training data. Without this, mmseg's visualisation hook (it reads
    # runner.iter) builds the training loop, whose dataset must then exist.
    cfg.train_dataloader = cfg.train_cfg = cfg.optim_wrapper = cfg.param_scheduler = None
    if args.show_dir:
        enable_visualization(cfg, args.show_dir)
    if args.out:
        if not args.out.endswith(('.pkl', '.pickle')):
            raise SystemExit('error: --out must end with .pkl or .pickle')
        evaluators = cfg.test_evaluator
        evaluators = list(evaluators) if isinstance(evaluators, (list, tuple)) else [evaluators]
        evaluators.append(dict(type='DumpResults', out_file_path=args.out))
        cfg.test_evaluator = evaluators
    check_data_paths(cfg, ('test', ))
    return cfg


def main(argv=None) -> dict:
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
            return Runner.from_cfg(cfg).test()
    except (LaunchError, UnsafeCheckpointError) as err:
        raise SystemExit(f'error: {err}')


if __name__ == '__main__':
    main()
