#!/usr/bin/env python
"""Evaluate a checkpoint with the config's test dataloader and evaluator.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out results.pkl]
                         [--show-dir DIR] [--cfg-options k=v ...] [--launcher pytorch]
"""
import argparse
import os

# Idle OpenMP threads sleep instead of spinning: with more processes than cores (a second
# job, gloo workers) spinning threads made training several times slower.
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')

import stvit_mm  # noqa: F401  (compat shims before any mm* import)

# isort: split
from stvit_mm.apis.arguments import add_run_arguments, parse_run_args


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test (and evaluate) a checkpoint')
    parser.add_argument('config', help='config file (path or pkg::rel)')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='where logs and metrics go')
    parser.add_argument('--out', help='dump predictions to this .pkl file')
    parser.add_argument('--show-dir', help='save drawn predictions under this folder '
                        '(mmdet/mmaction/mmpretrain: inside the work dir; mmseg: this folder, '
                        'images in vis_data/vis_image/)')
    add_run_arguments(parser)
    return parse_run_args(parser, argv)


def main(argv=None) -> dict:
    from stvit_mm.apis import evaluate_from_args
    return evaluate_from_args(parse_args(argv))


if __name__ == '__main__':
    main()
