#!/usr/bin/env python
"""`make demo`: the main job end to end on generated data.

The steps (listed there) run in stvit_mm/demos/detection.py.
"""
import argparse
import os
import os.path as osp

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
# Idle OpenMP threads sleep instead of spinning: with more processes than cores (a second
# job, gloo workers) spinning threads made training several times slower.
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--batch-size', type=int, default=32,
                        help='classification benchmark batch size')
    parser.add_argument('--det-iters', type=int, default=None,
                        help='detection training iterations (default: the config, 100)')
    parser.add_argument('--skip', choices=['detection', 'classification'], action='append',
                        default=[], help='leave out a part')
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    from stvit_mm.demos.detection import run_demo
    run_demo(args, ROOT)


if __name__ == '__main__':
    main()
