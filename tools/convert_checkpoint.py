#!/usr/bin/env python
"""Convert Swin / DeiT / official STViT-R-Swin checkpoints for stvit-mm models, offline.

    python tools/convert_checkpoint.py SRC DST --from SOURCE (--arch NAME | --config CONFIG)
                                       [--ignore REGEX ...] [--cfg-options k=v ...]

SOURCE is the layout of SRC: official-stvit-r-swin (changsn/STViT-R release
files), swin-official (Microsoft Swin), deit-official (facebookresearch/deit),
timm (timm ViT/DeiT), mmpretrain (Swin or DeiT classifier, or a bare backbone),
mmdet (a whole detector with a Swin backbone, or a bare backbone) or mmseg (a
whole segmentor such as UperNet Swin, or a bare backbone: mmseg's Swin
ImageNet files under pretrain/swin/). The target is an ``--arch`` preset (a
bare backbone; official-stvit-r-swin sources get ``preset='official'``) or the
model of a ``--config`` (checked against its whole state dict).

Every source key is mapped, or dropped for a stated reason; every target key
is filled, or reported new when the source cannot have it; anything else stops
the conversion with the list unless ``--ignore REGEX`` matches a key named
there. Non-backbone keys (necks, heads; an official classifier's ``head`` ->
the target's head) keep their names, checked with ``--config``. The rules and
the code are the package's: :mod:`stvit_mm.checkpoints.whole_checkpoint`.

DST holds ``{'state_dict': ..., 'meta': {...}}``, which mmengine's
``load_checkpoint``, ``load_from`` and ``init_cfg=dict(type='Pretrained')``
read; the conversion is verified by loading DST's tensors into the target.
"""
import argparse
import os.path as osp
import sys
import warnings
from typing import List, Optional

# mmengine imports pkg_resources; its deprecation warning is noise in a tool's output.
warnings.filterwarnings('ignore', message='pkg_resources is deprecated')

import stvit_mm  # noqa: F401  (compat shims before any mm* import)

# isort: split
from mmengine.config import DictAction

import stvit_mm.models  # noqa: F401  (registers the backbones --arch builds)
from stvit_mm.checkpoints import ConversionError, format_report
from stvit_mm.checkpoints.checkpoint_check import CheckpointReadError
from stvit_mm.checkpoints.safe_loading import UnsafeCheckpointError, add_trust_checkpoint_argument
from stvit_mm.checkpoints.whole_checkpoint import (
    SOURCES,
    TARGET_ARCHS,
    Target,
    convert_checkpoint,
    load_source,
    save_result,
    target_from_arch,
    target_from_model,
)
from stvit_mm.utils import ConfigError, build_model, load_config


def target_from_config(config: str, cfg_options: Optional[dict] = None) -> Target:
    """The model of a config (built without pretrained weights), e.g. a detector."""
    return target_from_model(build_model(load_config(config, cfg_options)), config)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert a Swin / DeiT / official STViT-R-Swin checkpoint for an stvit-mm '
        'model, reporting every key that is dropped or left at initialisation.')
    parser.add_argument('src', help='source checkpoint (.pth/.pt/.ckpt or .safetensors)')
    parser.add_argument('dst', help='converted checkpoint to write')
    parser.add_argument('--from', dest='source', required=True, choices=sorted(SOURCES),
                        help='layout of SRC')
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument('--arch', choices=sorted(TARGET_ARCHS),
                        help='bare backbone preset (official-stvit-r-swin sources get the '
                        'official switches: conv stem, ...)')
    target.add_argument('--config', help='config whose model DST is for (checked against its '
                        'whole state dict), or pkg::rel')
    parser.add_argument('--ignore', nargs='+', default=[], metavar='REGEX',
                        help='leave out keys matching any REGEX instead of failing on them')
    parser.add_argument('--allow-other-plan', action='store_true',
                        help="convert an official detector (changsn/STViT-R-Object-Detection) "
                        "into a backbone of another plan than the fork's (preset='official-det'): "
                        'the result then computes another network')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries, e.g. model.backbone.arch=small')
    add_trust_checkpoint_argument(parser)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    try:
        if args.cfg_options and not args.config:
            raise ConversionError('--cfg-options changes a config: give --config')
        if osp.abspath(args.src) == osp.abspath(args.dst):
            raise ConversionError('DST must differ from SRC (SRC is never overwritten)')
        checkpoint = load_source(args.src)
        target = (target_from_config(args.config, args.cfg_options) if args.config else
                  target_from_arch(args.arch, args.source))
        result = convert_checkpoint(checkpoint, args.source, target, args.ignore,
                                    allow_other_plan=args.allow_other_plan)
    except (ConversionError, ConfigError, FileNotFoundError, UnsafeCheckpointError,
            CheckpointReadError) as error:
        print(f'convert_checkpoint.py: error: {error}', file=sys.stderr)
        return 1
    save_result(result, args.dst)
    print(format_report(result, args.src, args.dst))
    return 0


if __name__ == '__main__':
    sys.exit(main())
