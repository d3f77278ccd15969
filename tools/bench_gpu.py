#!/usr/bin/env python
"""The GPU speed suite: ours vs stock, side by side in one process, one JSON and one table.

    python tools/bench_gpu.py [--device cuda|cpu] [--tiny] [--cases PATTERN ...]
                              [--rounds N] [--warmup N] [--min-time S] [--budget S]
                              [--out-dir DIR]

Cases (stvit_mm.analysis.suite.GPU_CASES): STViT-DeiT-S vs DeiT-S (batch 1, 64, 256),
STViT-R-Swin-T vs Swin-T Mask R-CNN backbone and whole detector in predict mode
(800x1333, batch 1 and 8), UperNet Swin-T (512x512), Video Swin-T (32x224x224); fp32 and
bf16 autocast (fp16 for the detector's predict mode: mmcv's RoI ops); training steps
with peak memory; torch.compile of the backbone on and off; the SDPA backend of every
attention call and why flash / memory-efficient attention were refused. Each figure is
the median of interleaved rounds with its min and max. Writes DIR/bench_gpu.json and
DIR/bench_gpu.md (default work_dirs/bench_gpu) and prints the table. --tiny runs the
same kinds of case at tiny shapes (the suite's logic on a CPU). Without CUDA,
--device cuda stops with one line.
"""
import argparse
import os.path as osp
import shlex
import sys
import warnings
from typing import List, Optional

# mmengine imports pkg_resources; its deprecation warning is noise in a tool's output.
warnings.filterwarnings('ignore', message='pkg_resources is deprecated')

import stvit_mm  # noqa: F401  (compat shims before any mm* import)

# isort: split
from stvit_mm.analysis.report import report_to_stdout
from stvit_mm.analysis.suite import (
    GPU_CASES,
    PAIRS,
    TINY_CASES,
    TINY_PAIRS,
    run_suite,
    select_cases,
)
from stvit_mm.analysis.suite_report import format_suite, write_suite


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Ours vs stock on a GPU: the speed suite.')
    parser.add_argument('--device', default='cuda', choices=['cuda', 'cpu'],
                        help='where to run (default cuda)')
    parser.add_argument('--tiny', action='store_true',
                        help='tiny shapes and batches (checks the logic on a CPU)')
    parser.add_argument('--cases', nargs='+', metavar='PATTERN',
                        help='only the cases whose name matches (shell patterns, e.g. '
                        "'deit_s/*')")
    parser.add_argument('--rounds', type=int, default=10,
                        help='interleaved timed rounds per case (default 10)')
    parser.add_argument('--warmup', type=int, default=3,
                        help='untimed calls per model before timing (default 3)')
    parser.add_argument('--min-time', type=float, default=0.05, metavar='S',
                        help='seconds per model per round, at least (default 0.05)')
    parser.add_argument('--budget', type=float, default=540.0, metavar='S',
                        help='start no case after this many seconds (default 540)')
    parser.add_argument('--out-dir', default=osp.join('work_dirs', 'bench_gpu'),
                        help='where bench_gpu.json and bench_gpu.md go')
    parser.add_argument('--json', action='store_true',
                        help='print the JSON on stdout instead of the table')
    parser.add_argument('--list', action='store_true', help='list the cases and stop')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    command = shlex.join(['python', 'tools/bench_gpu.py',
                          *(sys.argv[1:] if argv is None else argv)])
    cases, pairs = (TINY_CASES, TINY_PAIRS) if args.tiny else (GPU_CASES, PAIRS)

    def run() -> dict:
        chosen = select_cases(cases, args.cases)
        if args.list:
            return dict(cases=[dict(name=c.name) for c in chosen], listed=True)
        result = run_suite(chosen, pairs, args.device, args.rounds, args.warmup,
                           args.min_time, args.budget,
                           log=lambda message: print(message, file=sys.stderr, flush=True))
        result['command'] = command
        write_suite(result, args.out_dir)
        return result

    def text(result: dict) -> str:
        if result.get('listed'):
            return '\n'.join(c['name'] for c in result['cases'])
        return format_suite(result) + f"\nwrote {osp.join(args.out_dir, 'bench_gpu.json')}"

    return report_to_stdout('bench_gpu.py', run, args.json, text)


if __name__ == '__main__':
    sys.exit(main())
