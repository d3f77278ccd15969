#!/usr/bin/env python
"""`make demo-seg`: semantic segmentation with UperNet STViT-R-Swin-T end to end on generated data.

The steps (listed there) run in stvit_mm/demos/segmentation.py.
"""
import argparse
import os
import os.path as osp
import warnings

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
# Idle OpenMP threads sleep instead of spinning: with more processes than cores (a second
# job, gloo workers) spinning threads made training several times slower.
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')
warnings.filterwarnings('ignore', message='pkg_resources is deprecated')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--iters', type=int, help='training iterations (default: the config, '
                        '150)')
    parser.add_argument('--batch-size', type=int, default=1,
                        help='images per forward in the speed comparison (default 1)')
    parser.add_argument('--skip', choices=['train', 'benchmark'], action='append', default=[],
                        help='leave out a part')
    args = parser.parse_args(argv)
    if args.iters is not None and args.iters < 2:
        parser.error(f'--iters {args.iters}: need at least 2 (warm-up, then decay)')
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    from stvit_mm.demos.segmentation import run_demo
    run_demo(args, ROOT)


if __name__ == '__main__':
    main()
