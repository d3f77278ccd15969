#!/usr/bin/env python
"""Parameters and multiply-adds (MACs) of a config's model and of its backbone.

    python tools/get_flops.py CONFIG [--shape H W] [--clip-len T] [--json]
                              [--cfg-options k=v ...]

FLOPs are multiply-adds, the convention of the STViT paper and OpenMMLab
(DeiT-S at 224x224 = 4.6 G), counted with torch's FlopCounterMode including
fused attention (SDPA). Works for mmpretrain classifiers, mmdet detectors, mmseg
segmentors (EncoderDecoder) and mmaction 3D recognizers; see
stvit_mm/analysis/forward.py for what forward is measured. With --json, stdout holds exactly one
JSON object.
"""
import argparse
import sys
import warnings
from typing import List, Optional

# mmengine imports pkg_resources; its deprecation warning is noise in a tool's output.
warnings.filterwarnings('ignore', message='pkg_resources is deprecated')

import stvit_mm  # noqa: F401  (compat shims before any mm* import)

# isort: split
from mmengine.config import DictAction

from stvit_mm.analysis import (
    DEFAULT_CLIP_LEN,
    complexity_from_config,
    format_complexity,
    report_to_stdout,
)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Parameters and multiply-adds (MACs) of a model and its backbone, '
        'attention (also fused SDPA) included.')
    parser.add_argument('config', help='config file, or pkg::rel such as '
                        'mmpretrain::deit/deit-small_4xb256_in1k.py')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'),
                        help='input height and width (default: 224 224; detectors 800 1333, '
                        'padded to the data preprocessor\'s pad_size_divisor; segmentors 512 '
                        '512)')
    parser.add_argument('--clip-len', type=int, default=DEFAULT_CLIP_LEN, metavar='T',
                        help=f'frames per clip for video recognizers (default {DEFAULT_CLIP_LEN})')
    parser.add_argument('--json', action='store_true',
                        help='print one JSON object on stdout instead of a table')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries, e.g. model.backbone.arch=tiny')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    return report_to_stdout(
        'get_flops.py', lambda: complexity_from_config(args.config, args.shape, args.clip_len,
                                                       args.cfg_options),
        args.json, format_complexity)


if __name__ == '__main__':
    sys.exit(main())
