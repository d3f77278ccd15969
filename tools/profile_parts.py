#!/usr/bin/env python
"""Where a backbone forward's time goes: time and op / kernel count per part (torch.profiler).

    python tools/profile_parts.py CONFIG [CONFIG ...] [--shape H W] [--batch-sizes N ...]
                                  [--device cpu|cuda] [--rounds N] [--warmup N]
                                  [--clip-len T] [--threads N] [--json]

Parts: attention (window / image tokens), padding and partition copies, generator
neighbourhood gather, generator layers, semantic blocks, recovery, everything else.
They are marked from outside the models (stvit_mm.analysis.parts) and add up to the
forward's total. Prints a markdown table (one column per config and batch size), or
with --json one JSON object. Example (the table in docs/speed.md):

    python tools/profile_parts.py mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py \\
        stvit_mm::detection/mask_rcnn_stvit_r_swin_t.py --batch-sizes 1 2
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

from stvit_mm.analysis import DEFAULT_CLIP_LEN, report_to_stdout
from stvit_mm.analysis.forward import check_positive, check_shape
from stvit_mm.analysis.part_report import format_parts, profile_configs
from stvit_mm.utils import ConfigError


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Per-part profile of backbone forwards.')
    parser.add_argument('configs', nargs='+', metavar='CONFIG', help='config files or pkg::rel')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'),
                        help='input height and width (default per model kind)')
    parser.add_argument('--batch-sizes', type=int, nargs='+', default=[1], metavar='N',
                        help='batch sizes to profile (default 1)')
    parser.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    parser.add_argument('--rounds', type=int, default=3,
                        help='profiled forwards per config and batch size (default 3)')
    parser.add_argument('--warmup', type=int, default=2, help='untimed forwards first')
    parser.add_argument('--clip-len', type=int, default=DEFAULT_CLIP_LEN, metavar='T')
    parser.add_argument('--threads', type=int, help='CPU threads for torch')
    parser.add_argument('--json', action='store_true', help='print one JSON object')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    command = shlex.join(['python', 'tools/profile_parts.py',
                          *(sys.argv[1:] if argv is None else argv)])

    def run() -> dict:
        if args.device == 'cuda' and not torch.cuda.is_available():
            raise ConfigError('--device cuda: CUDA is not available on this machine')
        for size in args.batch_sizes:
            check_positive('--batch-sizes', size)
        if args.threads is not None:
            torch.set_num_threads(check_positive('--threads', args.threads))
        shape = None if args.shape is None else check_shape(args.shape)
        result = profile_configs(
            args.configs, shape, args.batch_sizes, args.device, args.rounds, args.warmup,
            args.clip_len, log=lambda message: print(message, file=sys.stderr, flush=True))
        return dict(result, command=command)

    return report_to_stdout('profile_parts.py', run, args.json,
                            lambda r: format_parts(r) + f"\ncommand: `{r['command']}`")


if __name__ == '__main__':
    sys.exit(main())
