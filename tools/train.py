#!/usr/bin/env python
"""Train a model from a config (mmdet / mmseg / mmpretrain / mmaction2 alike).

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
                          [--auto-scale-lr] [--cfg-options k=v ...] [--launcher pytorch]

Multi-process: tools/dist_train.sh CONFIG GPUS (gloo on CPU when there is no GPU). Without
GPUs, SyncBN layers (mmseg heads) become BN, with one log line.
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
    add_run_arguments(parser)
    return parse_run_args(parser, argv)


def main(argv=None) -> None:
    from stvit_mm.apis import train_from_args
    train_from_args(parse_args(argv))


if __name__ == '__main__':
    main()
