#!/usr/bin/env python
"""Draw where STViT's semantic tokens look and what each image region recovers from.

    python tools/visualize_semantic_tokens.py CONFIG CHECKPOINT IMAGE [IMAGE ...]
        [--out DIR] [--device cpu|cuda] [--short-side N] [--max-panels N]
        [--max-side PX] [--cfg-options k=v ...]

CONFIG is an image classification (mmpretrain) or detection (mmdet) config
with an STViT or STViTSwin backbone; CHECKPOINT a model or backbone checkpoint
(foreign layouts are converted on load), or `none` for random weights. IMAGE
may be a folder. Per image and generator (`generator` for plain ViTs,
`stage2_unit0`, ... for Swin units), DIR/<image name>/ gets:

  G_layer1.png, G_layer2.png   attention of each semantic token to the image
                               (generator layers 1 and 2), one panel per token
  G_recovery.png               each region coloured by the semantic token it
                               recovers most from (STViT-R), token borders white
  G_recovery_tokens.png        recovery weight each region gives each token
  G_assignment.png             without recovery: the token attending most in layer 2
  maps.npz                     every map on its token grid (mean over heads)

Panels are labelled with the token's row,col on the semantic grid and the
map's peak value (colours: weight / that peak); every figure keeps
the input's aspect ratio. The model sees the image at its own size (or
rescaled with --short-side), normalised and padded as its data preprocessor
does.
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

from stvit_mm.analysis import json_stdout
from stvit_mm.analysis.visualize import build_visualization_model, image_paths, visualize_images
from stvit_mm.checkpoints.safe_loading import add_trust_checkpoint_argument
from stvit_mm.utils import ConfigError


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='PNG maps of the attention of STViT semantic tokens and of STViT-R '
        'recovery, overlaid on images.')
    parser.add_argument('config', help='config file or pkg::rel (classification or detection, '
                        'STViT / STViTSwin backbone)')
    parser.add_argument('checkpoint', help="checkpoint file or URL, or 'none' (random weights)")
    parser.add_argument('images', nargs='+', metavar='IMAGE', help='image files or folders')
    parser.add_argument('--out', default='work_dirs/semantic_tokens',
                        help='output folder; one subfolder per image '
                        '(default work_dirs/semantic_tokens)')
    parser.add_argument('--device', default='cpu', help='torch device (default cpu)')
    parser.add_argument('--short-side', type=int, metavar='N',
                        help='rescale each image so its short side is N pixels before the '
                        'forward (default: as is)')
    parser.add_argument('--max-panels', type=int, default=64, metavar='N',
                        help='at most N token panels per figure; with more semantic tokens, '
                        'whole windows spread over the image are drawn (default 64)')
    parser.add_argument('--max-side', type=int, default=1600, metavar='PX',
                        help='long side of each figure in pixels, at most (default 1600)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries, e.g. model.backbone.recovery_scope=global')
    add_trust_checkpoint_argument(parser)
    return parser.parse_args(argv)


def _check(args: argparse.Namespace) -> None:
    for name in ('short_side', 'max_panels', 'max_side'):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ConfigError(f'bad --{name.replace("_", "-")} {value}: expected >= 1')
    if args.device.startswith('cuda'):
        import torch
        if not torch.cuda.is_available():
            raise ConfigError('--device cuda: CUDA is not available on this machine')


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    # stdout lists the written files only; mmengine's log lines go to stderr
    with json_stdout() as out:
        try:
            _check(args)
            images = image_paths(args.images)
            log(f'building {args.config}')
            model = build_visualization_model(args.config, args.checkpoint, args.device,
                                              args.cfg_options, log)
            for written in visualize_images(model, images, args.out, args.short_side,
                                            args.max_panels, args.max_side, log):
                out.write(written + '\n')
        except ConfigError as error:
            print(f'visualize_semantic_tokens.py: error: {error}', file=sys.stderr)
            return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
