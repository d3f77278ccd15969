#!/usr/bin/env python
"""Throughput, batch-1 latency and peak forward memory of one or more configs, side by side.

    python tools/benchmark.py CONFIG [CONFIG ...] [--shape H W] [--batch-size N]
                              [--device cpu|cuda] [--warmup N] [--repeats N] [--iters N]
                              [--min-time S] [--threads N] [--backbone-only] [--train]
                              [--mode tensor|predict] [--json]

All models run in one process, in eval mode under torch.inference_mode(), with
their repeats interleaved so that load from other processes affects all alike.
With --train, training steps are timed instead: train mode, forward with autograd,
backward of a proxy loss (the mean of every output tensor), no optimizer update.
Each result has a ratio to the first config. Throughput is images/s (clips/s
for video recognizers); memory is measured with torch.cuda.max_memory_allocated
on CUDA and with torch.profiler(profile_memory=True) on CPU. With --json, stdout
holds exactly one JSON object; progress goes to stderr.
"""
import argparse
import shlex
import sys
import warnings
from typing import List, Optional

# mmengine imports pkg_resources; its deprecation warning is noise in a tool's output.
warnings.filterwarnings('ignore', message='pkg_resources is deprecated')

import stvit_mm  # noqa: F401  (compat shims before any mm* import)

# isort: split
import torch
from mmengine.config import DictAction

from stvit_mm.analysis import (
    DEFAULT_CLIP_LEN,
    benchmark_configs,
    format_benchmark,
    report_to_stdout,
)
from stvit_mm.utils import ConfigError


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Forward throughput, batch-1 latency and peak memory of configs, with '
        'ratios to the first one.')
    parser.add_argument('configs', nargs='+', metavar='CONFIG',
                        help='config files or pkg::rel; the first is the reference')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'),
                        help='input height and width (default: 224 224; detectors 800 1333; '
                        'segmentors 512 512)')
    parser.add_argument('--batch-size', type=int, default=32,
                        help='images (clips) per forward for throughput and memory '
                        '(default 32)')
    parser.add_argument('--device', default='cpu', choices=['cpu', 'cuda'],
                        help='where to run (default cpu)')
    parser.add_argument('--warmup', type=int, default=2,
                        help='untimed forwards per model and batch size (default 2)')
    parser.add_argument('--repeats', type=int, default=3,
                        help='timed repeats per model; medians are reported (default 3)')
    parser.add_argument('--iters', type=int, default=3,
                        help='forwards per repeat, also batch-1 forwards per repeat '
                        '(default 3)')
    parser.add_argument('--min-time', type=float, default=0.0, metavar='S',
                        help='minimum seconds per throughput repeat (default 0: --iters only)')
    parser.add_argument('--threads', type=int,
                        help='CPU threads for torch (default: torch\'s choice)')
    parser.add_argument('--clip-len', type=int, default=DEFAULT_CLIP_LEN, metavar='T',
                        help=f'frames per clip for video recognizers (default {DEFAULT_CLIP_LEN})')
    parser.add_argument('--backbone-only', action='store_true',
                        help='time model.backbone on the input it gets inside the model '
                        '(padded for detectors) instead of the whole model')
    parser.add_argument('--train', action='store_true',
                        help='time training steps instead of inference forwards: train mode, '
                        'forward with autograd and backward of a proxy loss (the mean of every '
                        'output), peak memory of one step')
    parser.add_argument('--mode', choices=['tensor', 'predict'], default='tensor',
                        help="whole model: 'tensor' (the network's outputs, default) or "
                        "'predict' (detectors, segmentors: as tools/test.py runs it, "
                        'post-processing included)')
    parser.add_argument('--json', action='store_true',
                        help='print one JSON object on stdout instead of a table')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override entries of every config')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    command = shlex.join(['python', *sys.argv] if argv is None else ['python', __file__, *argv])

    def run() -> dict:
        if args.threads is not None:
            if args.threads < 1:
                raise ConfigError(f'bad --threads {args.threads}: expected >= 1')
            torch.set_num_threads(args.threads)
        result = benchmark_configs(
            args.configs, args.shape, args.batch_size, args.device, args.warmup, args.repeats,
            args.iters, args.min_time, args.backbone_only, args.clip_len, args.cfg_options,
            train=args.train, mode=args.mode,
            log=lambda message: print(message, file=sys.stderr, flush=True))
        return dict(result, command=command)

    return report_to_stdout('benchmark.py', run, args.json, format_benchmark)


if __name__ == '__main__':
    sys.exit(main())
