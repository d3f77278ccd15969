#!/usr/bin/env python
"""Generate docs/model_zoo.md from configs/, so the page cannot drift from the code.

    python tools/make_model_zoo.py                 # write docs/model_zoo.md
    python tools/make_model_zoo.py --check         # exit 1 if the page differs from a fresh one
    python tools/make_model_zoo.py --benchmark [CONFIG ...] [--batch-size N] [...]
                                                   # measure CPU/GPU speed vs stock, record it
                                                   # in docs/benchmarks.json, rewrite the page
    python tools/make_model_zoo.py --benchmark [CONFIG ...] --backbone-only [...]
                                                   # the same for the backbones alone

For every config in configs/ (except *_synthetic.py) the page lists: the
stock OpenMMLab config it inherits and the stock model it is compared with
(the inherited one, or -- where the inherited config has other heads -- this
config with the stock backbone), parameters and multiply-adds of both
(stvit_mm.analysis.complexity_from_config, as tools/get_flops.py: 224x224
images, 800x1333 detection images, 512x512 segmentation images, 32x224x224
clips), the throughput ratio
recorded in docs/benchmarks.json for the whole model and for the backbone
alone (tools/benchmark.py's harness; "not measured" where absent), the paper's accuracy of the matching model, the stock
accuracy and weights (from the installed packages' metafiles), and where to
get weights with the tools/convert_checkpoint.py command.

What cannot be read from the code (paper numbers, release links) lives in the
ZOO table below, keyed by config file name; the script stops when a config has
no entry, an entry has no config, or a config no longer inherits the stock
config its entry names.
"""
import argparse
import ast
import datetime
import difflib
import json
import os
import os.path as osp
import platform
import shlex
import sys
import tempfile
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

# mmengine imports pkg_resources; its deprecation warning is noise in a tool's output.
warnings.filterwarnings('ignore', message='pkg_resources is deprecated')
ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)

import stvit_mm  # noqa: E402,F401  (compat shims before any mm* import)

from stvit_mm.analysis.complexity import (DEFAULT_CLIP_LEN, DEFAULT_SHAPES,  # noqa: E402
                                          ConfigError, benchmark_configs,
                                          complexity_from_config, load_config)

CONFIG_DIR = osp.join(ROOT, 'configs')
DOC = osp.join(ROOT, 'docs', 'model_zoo.md')
BENCHMARKS = osp.join(ROOT, 'docs', 'benchmarks.json')
CONVERT = 'python tools/convert_checkpoint.py {src} {dst} --from {layout} --config {config}'
TASKS = (('classification', 'Image classification (ImageNet-1k)'),
         ('detection', 'Object detection and instance segmentation (COCO)'),
         ('segmentation', 'Semantic segmentation (ADE20K)'),
         ('video', 'Video recognition (Kinetics-400)'))

# Official STViT-R switches (configs/classification/stvit_r_swin_s_in1k.py) for configs that default to the
# paper's variant, when loading an official STViT-R-Swin file.
OFFICIAL_SWITCHES = ('--cfg-options model.backbone.stem=conv model.backbone.gen_shortcut=False '
                     'model.backbone.global_centres=False model.backbone.neighbourhood_inside=True')
HF = 'https://huggingface.co/csncsn/STViT-R/blob/main/'
SWIN_RELEASE = 'https://github.com/SwinTransformer/storage/releases/download/'
DEIT_RELEASE = 'https://dl.fbaipublicfiles.com/deit/'


@dataclass(frozen=True)
class Weights:
    """A checkpoint a config can start from, and how to convert it.

    Attributes:
        what: e.g. 'official STViT-R-Swin-S (ImageNet-1k)'.
        url: where to download it.
        source: where the link was read ('official README', ...); links not
            checked against a release page say so.
        layout: ``--from`` of tools/convert_checkpoint.py, or None when the
            config's own loading handles it (see ``note``).
        note: extra conversion options or caveats.
    """
    what: str
    url: str
    source: str
    layout: Optional[str] = None
    note: str = ''


@dataclass(frozen=True)
class ZooEntry:
    """What the page says about one config beyond what the code computes.

    Attributes:
        name: model name on the page.
        task: 'classification', 'detection', 'segmentation' or 'video'.
        inherits: the stock config the file inherits (checked).
        stock_name: the stock model compared with.
        stock_backbone: None: compare with ``inherits``. Otherwise
            ``(config, overrides)``: compare with this config whose backbone
            is replaced by ``config``'s backbone updated with ``overrides``
            (when the inherited config has other heads than ours).
        stock_custom_imports: extra modules the derived stock config imports.
        stock_accuracy: accuracy of the derived stock model with its source;
            None reads it (and its weights) from the metafile of ``inherits``.
        paper: the paper's accuracy of our model (with its source), or ''.
        weights: released weights of our model or of what it initialises from.
        shape: input (H, W) of MACs and speed where the task's default does not
            suit the model (RTMDet's neck needs sides divisible by 32: its 640x640).
    """
    name: str
    task: str
    inherits: str
    stock_name: str
    paper: str
    weights: Tuple[Weights, ...]
    stock_backbone: Optional[Tuple[str, dict]] = None
    stock_custom_imports: Tuple[str, ...] = ()
    stock_accuracy: Optional[Tuple[str, str, str]] = None  # (accuracy, weights url, source)
    shape: Optional[Tuple[int, int]] = None


def _deit_entry(letter: str, stock: str, top1: str, file: str,
                mmpretrain_weights: str) -> ZooEntry:
    return ZooEntry(
        name=f'STViT-DeiT-{letter}', task='classification',
        inherits=f'mmpretrain::deit/{stock}', stock_name=f'DeiT-{letter}',
        paper=f'{top1} (paper: 16 semantic tokens keep DeiT-{letter}\'s accuracy)',
        weights=(
            Weights(f'no STViT-DeiT release (the official code is Swin only); DeiT-{letter} '
                    'initialisation, official', DEIT_RELEASE + file,
                    "facebookresearch/deit (the URL in timm's DeiT configs)", 'deit-official'),
            Weights(f'DeiT-{letter} initialisation, mmpretrain', mmpretrain_weights,
                    'mmpretrain metafile', 'mmpretrain'),
        ))


def _swin_cls_entry(letter: str, size: str, paper: str,
                    weights: Tuple[Weights, ...]) -> ZooEntry:
    return ZooEntry(
        name=f'STViT-R-Swin-{letter}', task='classification',
        inherits=f'mmpretrain::swin_transformer/swin-{size}_16xb64_in1k.py',
        stock_name=f'Swin-{letter}', paper=paper, weights=weights)


def _stvit_swin_entry(letter: str, size: str, relative_top1: str, file: str) -> ZooEntry:
    return ZooEntry(
        name=f'STViT-Swin-{letter}', task='classification',
        inherits=f'mmpretrain::swin_transformer/swin-{size}_16xb64_in1k.py',
        stock_name=f'Swin-{letter}',
        paper=f'{relative_top1} top-1 vs Swin-{letter} (paper, 16 semantic tokens per window)',
        weights=(Weights(f'no STViT-Swin release; Swin-{letter} initialisation, mmpretrain '
                         '(the config\'s init_cfg, converted on load)',
                         'https://download.openmmlab.com/mmclassification/v0/swin-transformer/'
                         + file, 'mmpretrain metafile', 'mmpretrain'), ))


def _swin_init(letter: str, size: str) -> Weights:
    return Weights(f'Swin-{letter} ImageNet-1k initialisation (the config\'s `pretrained`, '
                   'converted on load)', f'{SWIN_RELEASE}v1.0.0/swin_{size}_patch4_window7_224.pth',
                   'the stock config', 'swin-official')


MMSEG_SWIN_PRETRAIN = 'https://download.openmmlab.com/mmsegmentation/v0.5/pretrain/swin/'
_MMSEG_SWIN_FILES = dict(tiny='swin_tiny_patch4_window7_224_20220317-1cdeb081.pth',
                         small='swin_small_patch4_window7_224_20220317-7ba6d6dd.pth',
                         base='swin_base_patch4_window7_224_20220317-e9b98025.pth')


def _upernet_entry(letter: str, size: str, paper: str) -> ZooEntry:
    return ZooEntry(
        name=f'UperNet STViT-R-Swin-{letter} 160k', task='segmentation',
        inherits=f'mmseg::swin/swin-{size}-patch4-window7-in1k-pre_upernet_8xb2-160k_'
                 'ade20k-512x512.py',
        stock_name=f'UperNet Swin-{letter} 160k', paper=paper,
        weights=(Weights(f'Swin-{letter} ImageNet-1k initialisation, mmseg layout (the '
                         "config's `checkpoint_file`, converted on load)",
                         MMSEG_SWIN_PRETRAIN + _MMSEG_SWIN_FILES[size], 'the stock config',
                         'mmseg'), ))


_CASCADE_STOCK_NOTE = ('Swin paper / Swin-Transformer-Object-Detection README, Cascade Mask '
                       'R-CNN 3x')

ZOO: Dict[str, ZooEntry] = {
    # ---- ImageNet-1k classification
    'stvit_deit_t_in1k.py': _deit_entry(
        'T', 'deit-tiny_4xb256_in1k.py', '72.2', 'deit_tiny_patch16_224-a1311bcf.pth',
        'https://download.openmmlab.com/mmclassification/v0/deit/'
        'deit-tiny_pt-4xb256_in1k_20220218-13b382a0.pth'),
    'stvit_deit_s_in1k.py': _deit_entry(
        'S', 'deit-small_4xb256_in1k.py', '79.8', 'deit_small_patch16_224-cd65a155.pth',
        'https://download.openmmlab.com/mmclassification/v0/deit/'
        'deit-small_pt-4xb256_in1k_20220218-9425b9bb.pth'),
    'stvit_deit_b_in1k.py': _deit_entry(
        'B', 'deit-base_16xb64_in1k.py', '81.8', 'deit_base_patch16_224-b5f2ef4d.pth',
        'https://download.openmmlab.com/mmclassification/v0/deit/'
        'deit-base_pt-16xb64_in1k_20220216-db63c16c.pth'),
    'stvit_r_swin_t_in1k.py': _swin_cls_entry(
        'T', 'tiny', '', (Weights('none released (the official STViT-R release has Swin-S and '
                                  'Swin-B only)', '', ''), )),
    'stvit_r_swin_s_in1k.py': _swin_cls_entry(
        'S', 'small', '82.7 (paper; official README)',
        (Weights('official STViT-R-Swin-S (ImageNet-1k)', HF + 'STViT-R-Swin-S.pth',
                 'official README (changsn/STViT-R)', 'official-stvit-r-swin'), )),
    'stvit_r_swin_b_in1k.py': _swin_cls_entry(
        'B', 'base', '83.2 (paper; official README)',
        (Weights('official STViT-R-Swin-B (ImageNet-1k)', HF + 'STViT-R-Swin-B.pth',
                 'official README (changsn/STViT-R)', 'official-stvit-r-swin'), )),
    'stvit_swin_t_in1k.py': _stvit_swin_entry(
        'T', 'tiny', '+0.2', 'swin_tiny_224_b16x64_300e_imagenet_20210616_090925-66df6be6.pth'),
    'stvit_swin_s_in1k.py': _stvit_swin_entry(
        'S', 'small', '+0.0', 'swin_small_224_b16x64_300e_imagenet_20210615_110219-7f9d988b.pth'),
    'stvit_swin_b_in1k.py': _stvit_swin_entry(
        'B', 'base', '-0.1', 'swin_base_224_b16x64_300e_imagenet_20210616_190742-93230b0d.pth'),
    # ---- COCO detection
    'mask_rcnn_stvit_r_swin_t.py': ZooEntry(
        name='Mask R-CNN STViT-R-Swin-T 1x', task='detection',
        inherits='mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py',
        stock_name='Mask R-CNN Swin-T 1x', paper='',
        weights=(_swin_init('T', 'tiny'), )),
    'mask_rcnn_stvit_r_swin_t_3x.py': ZooEntry(
        name='Mask R-CNN STViT-R-Swin-T 3x', task='detection',
        inherits='mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_ms-crop-3x_coco.py',
        stock_name='Mask R-CNN Swin-T 3x', paper='',
        weights=(_swin_init('T', 'tiny'), )),
    'mask_rcnn_stvit_r_swin_s_3x.py': ZooEntry(
        name='Mask R-CNN STViT-R-Swin-S 3x', task='detection',
        inherits='mmdet::swin/mask-rcnn_swin-s-p4-w7_fpn_amp-ms-crop-3x_coco.py',
        stock_name='Mask R-CNN Swin-S 3x', paper='',
        weights=(_swin_init('S', 'small'), )),
    'cascade_mask_rcnn_stvit_r_swin_s_3x.py': ZooEntry(
        name='Cascade Mask R-CNN STViT-R-Swin-S 3x', task='detection',
        inherits='mmdet::cascade_rcnn/cascade-mask-rcnn_r50_fpn_1x_coco.py',
        stock_name='Cascade Mask R-CNN Swin-S 3x',
        stock_backbone=('mmdet::swin/mask-rcnn_swin-s-p4-w7_fpn_amp-ms-crop-3x_coco.py', {}),
        stock_accuracy=('51.9 box / 45.0 mask',
                        f'{SWIN_RELEASE}v1.0.2/cascade_mask_rcnn_swin_small_patch4_window7.pth',
                        _CASCADE_STOCK_NOTE),
        paper='51.8 box / 44.7 mask (paper; official detection README)',
        weights=(
            Weights('official Cascade Mask R-CNN STViT-R-Swin-S 3x (mmdet 2.11 fork)',
                    HF + 'cascade_mask_rcnn_swin_small_patch4_window7_mstrain_480-800_giou_'
                    '4conv1f_adamw_3x_coco.pth',
                    'official README (changsn/STViT-R-Object-Detection)',
                    'official-stvit-r-swin',
                    f'add `{OFFICIAL_SWITCHES}` (switches assumed as in the official '
                    'classification runs; conversion of this file not tried here)'),
            _swin_init('S', 'small'))),
    'cascade_mask_rcnn_stvit_r_swin_b_3x.py': ZooEntry(
        name='Cascade Mask R-CNN STViT-R-Swin-B 3x', task='detection',
        inherits='mmdet::cascade_rcnn/cascade-mask-rcnn_r50_fpn_1x_coco.py',
        stock_name='Cascade Mask R-CNN Swin-B 3x',
        stock_backbone=('mmdet::swin/mask-rcnn_swin-s-p4-w7_fpn_amp-ms-crop-3x_coco.py',
                        dict(embed_dims=128, num_heads=[4, 8, 16, 32], drop_path_rate=0.3)),
        stock_accuracy=('51.9 box / 45.0 mask',
                        f'{SWIN_RELEASE}v1.0.2/cascade_mask_rcnn_swin_base_patch4_window7.pth',
                        _CASCADE_STOCK_NOTE),
        paper='52.2 box / 45.2 mask (paper; official detection README)',
        weights=(
            Weights('official Cascade Mask R-CNN STViT-R-Swin-B 3x (mmdet 2.11 fork)',
                    HF + 'cascade_mask_rcnn_swin_base_patch4_window7_mstrain_480-800_giou_'
                    '4conv1f_adamw_3x_coco.pth',
                    'official README (changsn/STViT-R-Object-Detection)',
                    'official-stvit-r-swin',
                    f'add `{OFFICIAL_SWITCHES}` (switches assumed as in the official '
                    'classification runs; conversion of this file not tried here)'),
            _swin_init('B', 'base'))),
    'mask_rcnn_stvit_r_deit_s_simple_pyramid.py': ZooEntry(
        name='Mask R-CNN STViT-R-DeiT-S simple pyramid 1x', task='detection',
        inherits='mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py',
        stock_name='Mask R-CNN DeiT-S simple pyramid 1x',
        # the stock plain ViT: mmpretrain's DeiT-S as one stride-16 map, same neck and heads
        # (position embedding stored for 1024 px as ours; FLOPs do not depend on it)
        stock_backbone=('', dict(type='mmpretrain.VisionTransformer', arch='deit-small',
                                 img_size=1024, patch_size=16, out_type='featmap',
                                 drop_path_rate=0.1)),
        stock_custom_imports=('mmpretrain.models', ),
        stock_accuracy=('', '', 'no stock model'),
        paper='',
        weights=(Weights('DeiT-S initialisation, mmpretrain (the config\'s `pretrained`, '
                         'converted on load)',
                         'https://download.openmmlab.com/mmclassification/v0/deit/'
                         'deit-small_pt-4xb256_in1k_20220218-9425b9bb.pth',
                         'the config', 'mmpretrain'), )),
    # ---- ADE20K semantic segmentation
    'upernet_stvit_r_swin_t_ade20k.py': _upernet_entry('T', 'tiny', ''),
    'upernet_stvit_r_swin_s_ade20k.py': _upernet_entry('S', 'small', '48.3 mIoU (paper)'),
    'upernet_stvit_r_swin_b_ade20k.py': _upernet_entry('B', 'base', '48.9 mIoU (paper)'),
    'rtmdet_l_stvit_r_swin_b_w12.py': ZooEntry(
        name='RTMDet-L STViT-R-Swin-B (window 12, one-word swap)', task='detection',
        inherits='mmdet::rtmdet/rtmdet_l_swin_b_4xb32-100e_coco.py',
        stock_name='RTMDet-L Swin-B (window 12)', paper='', shape=(640, 640),
        weights=(Weights('Swin-B ImageNet-22k 384x384 window-12 initialisation (the stock '
                         'config\'s init_cfg, converted on load)',
                         f'{SWIN_RELEASE}v1.0.0/swin_base_patch4_window12_384_22k.pth',
                         'the stock config', 'swin-official'), )),
    # ---- Kinetics-400 video
    'video_stvit_r_swin_t_k400.py': ZooEntry(
        name='Video STViT-R-Swin-T', task='video',
        inherits='mmaction::recognition/swin/swin-tiny-p244-w877_in1k-pre_8xb8-amp-32x2x1-30e_'
                 'kinetics400-rgb.py',
        stock_name='Video Swin-T', paper='',
        weights=(Weights('Swin-T ImageNet-1k initialisation (the config\'s `pretrained`, '
                         'inflated to 3-D on load; tools/convert_checkpoint.py has no video '
                         'target)', f'{SWIN_RELEASE}v1.0.0/swin_tiny_patch4_window7_224.pth',
                         'the stock config'), )),
    'video_stvit_r_swin_s_k400.py': ZooEntry(
        name='Video STViT-R-Swin-S', task='video',
        inherits='mmaction::recognition/swin/swin-small-p244-w877_in1k-pre_8xb8-amp-32x2x1-30e_'
                 'kinetics400-rgb.py',
        stock_name='Video Swin-S', paper='',
        weights=(Weights('Swin-S ImageNet-1k initialisation (the config\'s `pretrained`, '
                         'inflated to 3-D on load; tools/convert_checkpoint.py has no video '
                         'target)', f'{SWIN_RELEASE}v1.0.0/swin_small_patch4_window7_224.pth',
                         'the stock config'), )),
}

TASK_NOTES = {
    'classification': 'STViT-Swin (no recovery; the paper gives only "16 semantic tokens in each '
                      'window", so the plan is ours): the units sit where STViT-R-Swin\'s do '
                      '(stage 3: one for Swin-T, three for Swin-S/B, 6 layers each); every 7x7 '
                      'window is pooled to 4x4 = 16 semantic tokens; the last unit has no '
                      'recovery and hands its semantic grid (8x8 at 224x224) to patch merging, '
                      'so stage 4 runs on 4x4 = 16 tokens instead of 49. The earlier Swin-S/B '
                      'units keep their recovery (as the official STViT-R), so each starts from '
                      'full-resolution tokens, and every Swin block initialises the layer at its '
                      'depth. Paper: about -25% FLOPs and +20% speed for Swin-T/S/B.',
    'detection': 'Model MACs of detectors are mmdet\'s tensor-mode forward: the RoI heads run '
                 'on all RPN proposals (1000 per image at test time), and Cascade Mask R-CNN '
                 'runs its mask head in each of its 3 stages, unlike inference on the final '
                 'detections. The backbone MACs are what the paper compares (-31% / -32% for '
                 'Swin-S / B). The same holds for speed: the RoI heads, identical in both '
                 'models, take most of a detector\'s CPU time in this forward, so the '
                 'whole-model ratio stays near 1 and within the run-to-run noise of a shared '
                 'CPU (compare the two Swin-T rows: same backbones, measured in separate runs); '
                 'the backbone column is the comparison the paper makes.',
    'segmentation': 'Model MACs of segmentors are mmseg\'s tensor-mode forward at 512x512: '
                    'backbone and UPerHead (logits at 1/4 resolution; the auxiliary FCN head '
                    'trains only). UPerHead, identical in both models, is about 211 G of the '
                    'stock Swin-T model\'s 237 G (its 512-channel 3x3 convolutions at 1/4 '
                    'resolution), so the whole-model ratio stays near 0.96x for Swin-T while '
                    'the backbone, the part STViT-R changes, is 0.67x (Swin-T) to 0.60x '
                    '(Swin-S / B). The paper reports the mIoU of STViT-R-Swin-S / B (48.3 / '
                    '48.9); Swin-T is not in the paper. The speed ratios were measured on a 2-core '
                    'CPU shared with other jobs (load 3-5) and vary between runs by tens of '
                    'percent (Swin-T backbone: 1.24x here, 1.35x and 1.37x in other runs); '
                    'they compare our implementation with mmseg\'s SwinTransformer, not only '
                    'the token counts.',
    'video': 'Paper: Video Swin with semantic tokens on Kinetics-400 at -0.3 top-1, -27% FLOPs '
             'and +25% FPS; which sizes and the absolute numbers are not verified here, so no '
             'per-config paper accuracy is listed.',
}

# --------------------------------------------------------------------------- configs


def config_files(config_dir: str = CONFIG_DIR) -> Dict[str, str]:
    """File name -> path of every config under ``config_dir`` (one folder per task)."""
    return {f: osp.join(folder, f) for folder, _, files in os.walk(config_dir)
            for f in files if f.endswith('.py')}


def config_path(config: str) -> str:
    return config_files()[config]


def zoo_configs(config_dir: str = CONFIG_DIR) -> List[str]:
    """Config file names the page covers, in ZOO order; ConfigError if ZOO and disk disagree."""
    on_disk = sorted(f for f in config_files(config_dir) if not f.endswith('_synthetic.py'))
    missing = [f for f in on_disk if f not in ZOO]
    stale = [f for f in ZOO if f not in on_disk]
    if missing or stale:
        raise ConfigError('tools/make_model_zoo.py ZOO is out of date: '
                          + '; '.join(filter(None, [
                              missing and f'no entry for {", ".join(missing)}',
                              stale and f'no config for {", ".join(stale)}'])))
    return list(ZOO)


def inherited_stock(config: str, config_dir: str = CONFIG_DIR) -> str:
    """The first ``pkg::`` config on the ``_base_`` chain of ``config`` (read, not executed)."""
    path, seen = config_files(config_dir)[config], []
    while True:
        seen.append(path)
        with open(path, encoding='utf-8') as f:
            tree = ast.parse(f.read(), path)
        bases = [node.value for node in tree.body if isinstance(node, ast.Assign)
                 and any(getattr(t, 'id', None) == '_base_' for t in node.targets)]
        if not bases:
            raise ConfigError(f'{config}: no _base_ on the way to a stock config ({seen})')
        value = ast.literal_eval(bases[-1])
        value = value if isinstance(value, str) else value[0]
        if '::' in value:
            return value
        path = osp.normpath(osp.join(osp.dirname(path), value))


def check_inheritance(configs: Sequence[str]) -> None:
    wrong = [f'{c} inherits {inherited_stock(c)}, ZOO says {ZOO[c].inherits}'
             for c in configs if inherited_stock(c) != ZOO[c].inherits]
    if wrong:
        raise ConfigError('tools/make_model_zoo.py ZOO is out of date: ' + '; '.join(wrong))


def stock_config(config: str) -> Any:
    """The stock model compared with ``config``: a ``pkg::`` path or a derived Config."""
    entry = ZOO[config]
    if entry.stock_backbone is None:
        return entry.inherits
    source, overrides = entry.stock_backbone
    cfg = load_config(config_path(config))
    backbone = load_config(source).model.backbone.to_dict() if source else {}
    backbone.update(overrides)
    backbone.pop('init_cfg', None)
    backbone.pop('_delete_', None)
    cfg.model.backbone = backbone
    if entry.stock_custom_imports:
        imports = list(cfg.custom_imports.imports) + list(entry.stock_custom_imports)
        cfg.custom_imports = dict(imports=imports, allow_failed_imports=False)
    return cfg


def stock_description(config: str) -> str:
    entry = ZOO[config]
    if entry.stock_backbone is None:
        return 'the inherited config'
    source, overrides = entry.stock_backbone
    if source:
        what = f'the backbone of `{source}`'
        if overrides:
            what += ' with ' + ', '.join(f'{k}={v}' for k, v in overrides.items())
    else:
        what = ', '.join(f'{k}={v!r}' for k, v in overrides.items())
    return f'this config with the stock backbone ({what})'


# --------------------------------------------------------------------------- metafiles


def _metafile_model(stock: str) -> Optional[dict]:
    """The metafile entry (name, results, weights) of a ``pkg::`` stock config, or None."""
    import importlib

    import yaml
    package, rel = stock.split('::')
    module = importlib.import_module({'mmaction': 'mmaction'}.get(package, package))
    directory = osp.join(osp.dirname(module.__file__), '.mim', 'configs', osp.dirname(rel))
    # mmseg names its metafiles metafile.yaml, the others metafile.yml
    metafile = next((osp.join(directory, name) for name in ('metafile.yml', 'metafile.yaml')
                     if osp.isfile(osp.join(directory, name))), None)
    if metafile is None:
        return None
    with open(metafile, encoding='utf-8') as f:
        models = yaml.safe_load(f).get('Models', [])
    stem = osp.splitext(osp.basename(rel))[0]
    matches = [m for m in models if osp.basename(str(m.get('Config', ''))) == osp.basename(rel)]
    exact = [m for m in matches if m.get('Name') == stem]
    return (exact or matches or [None])[0]


def _metrics(model: dict) -> Dict[str, float]:
    results = model.get('Results') or []
    results = results if isinstance(results, list) else [results]
    out = {}
    for result in results:
        out.update(result.get('Metrics') or {})
    return out


def stock_reference(config: str) -> Tuple[str, str, str]:
    """(accuracy, weights url, source) of the stock model."""
    entry = ZOO[config]
    if entry.stock_accuracy is not None:
        return entry.stock_accuracy
    model = _metafile_model(entry.inherits)
    if model is None:
        raise ConfigError(f'{config}: no metafile entry for {entry.inherits}; give '
                          'stock_accuracy in ZOO')
    metrics = _metrics(model)
    if 'box AP' in metrics:  # detectors without a mask head (RTMDet) have box AP only
        accuracy = f"{metrics['box AP']} box" + (
            f" / {metrics['mask AP']} mask" if 'mask AP' in metrics else '')
    elif 'mIoU' in metrics:  # mmseg: single-scale mIoU (the paper's setting)
        accuracy = f"{metrics['mIoU']} mIoU"
    else:
        accuracy = f"{metrics['Top 1 Accuracy']} top-1"
    package = entry.inherits.split('::')[0]
    return accuracy, model.get('Weights', ''), f'{package} metafile ({model["Name"]})'


# --------------------------------------------------------------------------- complexity


@dataclass
class Row:
    """Everything the page shows for one config."""
    config: str
    entry: ZooEntry
    ours: dict
    stock: dict
    benchmark: Optional[dict]
    stock_ref: Tuple[str, str, str]


def measure(configs: Sequence[str], log: Callable[[str], None]) -> Dict[str, Tuple[dict, dict]]:
    """complexity_from_config of every config and its stock model (stock ones shared)."""
    cache: Dict[str, dict] = {}

    def complexity(key: str, config: Any, shape: Optional[Tuple[int, int]]) -> dict:
        key = key if shape is None else f'{key}@{shape[0]}x{shape[1]}'
        if key not in cache:
            log(f'counting MACs: {key}')
            cache[key] = complexity_from_config(config, shape)
        return cache[key]

    out = {}
    for config in configs:
        shape = ZOO[config].shape
        ours = complexity(config, config_path(config), shape)
        key = ZOO[config].inherits if ZOO[config].stock_backbone is None else f'stock:{config}'
        out[config] = (ours, complexity(key, stock_config(config), shape))
    return out


# --------------------------------------------------------------------------- page


def _g(value: float) -> str:
    return f'{value / 1e9:.2f}' if value < 1e11 else f'{value / 1e9:.1f}'


def _m(value: float) -> str:
    return f'{value / 1e6:.1f}'


def _ratio(ours: float, stock: float) -> str:
    return f'{ours / stock:.2f}x'


def _shape(result: dict) -> str:
    shape = result['backbone_input_shape'][1:]  # without the batch
    return 'x'.join(str(s) for s in shape[1:])  # without channels


def _throughput(record: Optional[dict]) -> str:
    return f"{record['ratio']:.2f}x (b={record['batch_size']})" if record else 'not measured'


def _speed(bench: Optional[dict]) -> Tuple[str, str, str]:
    """Whole-model throughput ratio, batch-1 latency speed-up, backbone throughput ratio."""
    bench = bench or {}
    model = bench if 'ratio' in bench else None
    return (_throughput(model),
            f"{model['latency_speedup']:.2f}x" if model else 'not measured',
            _throughput(bench.get('backbone')))


def measurements(bench: dict) -> List[Tuple[str, dict]]:
    """(part, record) of each speed measurement of one config: whole model and/or backbone."""
    out = [('model', bench)] if 'ratio' in bench else []
    return out + ([('backbone', bench['backbone'])] if 'backbone' in bench else [])


def _link(url: str, text: str = 'link') -> str:
    return f'[{text}]({url})' if url else ''


def render(rows: Sequence[Row], benchmarks: Dict[str, dict]) -> str:
    shapes = DEFAULT_SHAPES
    lines = [
        '# Model zoo',
        '',
        '<!-- Generated by tools/make_model_zoo.py from configs/ and docs/benchmarks.json; do '
        'not edit. -->',
        'Generated by `python tools/make_model_zoo.py` from the configs, the installed '
        'OpenMMLab metafiles and `docs/benchmarks.json`; `tests/test_model_zoo.py` checks that '
        'it is up to date. Every config is a stock OpenMMLab config with the backbone swapped; '
        'the stock model is the one it is compared with.',
        '',
        '- **MACs**: multiply-adds of one forward, batch 1 (`tools/get_flops.py`, attention '
        f"included), inputs {shapes['classifier'][0]}x{shapes['classifier'][1]} (classification), "
        f"{shapes['detector'][0]}x{shapes['detector'][1]} padded to the data preprocessor's "
        f"divisor (detection: the whole network in tensor mode, RPN proposals included), "
        f"{shapes['segmentor'][0]}x{shapes['segmentor'][1]} (segmentation: backbone and decode "
        'head in tensor mode), '
        f"{DEFAULT_CLIP_LEN}x{shapes['recognizer3d'][0]}x{shapes['recognizer3d'][1]} clips "
        '(video). G = 1e9, M = 1e6; params of the whole model.',
        '- **speed**: throughput / the stock model\'s at the batch size shown, and batch-1 '
        'latency speed-up, of the whole model (mmdet detectors: tensor mode, the RoI heads on '
        'all RPN proposals, as the MACs) and of the backbone alone (`--backbone-only`, on the '
        'input it gets in the model), measured by `tools/make_model_zoo.py --benchmark` '
        "(`tools/benchmark.py`'s harness, both models in one process); the machine and "
        'command of each measurement are listed at the end.',
        '- **accuracy**: ours as published in the STViT paper (CVPR 2023) or the official '
        'READMEs where the paper has the same model, "-" where it has not; stock from the '
        'OpenMMLab metafiles. No weights were trained or evaluated here.',
        '- **weights**: released weights of the model, or of what it initialises from, and the '
        'offline conversion with `tools/convert_checkpoint.py` (configs also convert on load). '
        'Links are read from the named source, not downloaded here.',
    ]
    for task, title in TASKS:
        task_rows = [r for r in rows if r.entry.task == task]
        if not task_rows:
            continue
        lines += ['', f'## {title}', '',
                  '| config | model | stock model | input | params ours / stock (M) | backbone '
                  'MACs ours / stock (G) | ratio | model MACs ours / stock (G) | ratio | '
                  'throughput vs stock | b=1 latency speed-up | backbone throughput vs stock |',
                  '|---|---|---|---|---|---|---|---|---|---|---|---|']
        for r in task_rows:
            speed, latency, backbone_speed = _speed(r.benchmark)
            lines.append(
                f"| [`{r.config}`](../{osp.relpath(config_path(r.config), ROOT)}) | {r.entry.name} | "
                f'{r.entry.stock_name} | {_shape(r.ours)} | '
                f"{_m(r.ours['params'])} / {_m(r.stock['params'])} | "
                f"{_g(r.ours['backbone_flops'])} / {_g(r.stock['backbone_flops'])} | "
                f"{_ratio(r.ours['backbone_flops'], r.stock['backbone_flops'])} | "
                f"{_g(r.ours['flops'])} / {_g(r.stock['flops'])} | "
                f"{_ratio(r.ours['flops'], r.stock['flops'])} | {speed} | {latency} | "
                f'{backbone_speed} |')
        lines += ['', '| config | inherits | compared with | accuracy, paper (ours) | '
                  'accuracy, stock | stock weights |', '|---|---|---|---|---|---|']
        for r in task_rows:
            accuracy, url, source = r.stock_ref
            stock_acc = f'{accuracy} ({source})' if accuracy else '-'
            lines.append(
                f'| `{r.config}` | `{r.entry.inherits}` | {stock_description(r.config)} | '
                f'{r.entry.paper or "-"} | {stock_acc} | {_link(url) or "-"} |')
        if task in TASK_NOTES:
            lines += ['', TASK_NOTES[task]]
    lines += ['', '## Weights', '',
              'Download, then convert offline for the config (or point the config\'s '
              '`init_cfg`/`load_from` at the file: the backbones convert on load too).', '']
    for r in rows:
        lines.append(f'- `{r.config}` ({r.entry.name})')
        for w in r.entry.weights:
            if not w.url:
                lines.append(f'  - {w.what}')
                continue
            line = f'  - {w.what}: {_link(w.url, osp.basename(w.url))} (source: {w.source})'
            if w.layout:
                command = CONVERT.format(src=osp.basename(w.url),
                                         dst=osp.splitext(r.config)[0] + '.pth',
                                         layout=w.layout,
                                         config=osp.relpath(config_path(r.config), ROOT))
                line += f'; `{command}`'
            if w.note:
                line += f'; {w.note}'
            lines.append(line)
    lines += ['', '## Speed measurements', '']
    measured = [(c, benchmarks[c]) for c in ZOO if c in benchmarks]
    if not measured:
        lines.append('None yet: run `python tools/make_model_zoo.py --benchmark [CONFIG ...]`.')
    else:
        lines += ['| config | part | ours | stock | ratio | latency b=1 ours / stock | device | '
                  'date | machine | command |', '|---|---|---|---|---|---|---|---|---|---|']
        for config, part, b in [(c, part, record) for c, bench in measured
                                for part, record in measurements(bench)]:
            unit = b['unit'][:-1]
            lines.append(
                f"| `{config}` | {part} | {b['throughput']:.2f} {unit}/s | "
                f"{b['stock_throughput']:.2f} {unit}/s | {b['ratio']:.2f}x | "
                f"{b['latency_ms']:.1f} / {b['stock_latency_ms']:.1f} ms | {b['device']}, "
                f"batch {b['batch_size']}, {'x'.join(map(str, b['shape']))} | {b['date']} | "
                f"{b['machine']} | `{b['command']}` |")
    return '\n'.join(lines) + '\n'


def build_page(log: Callable[[str], None] = lambda message: None) -> str:
    configs = zoo_configs()
    check_inheritance(configs)
    benchmarks = load_benchmarks()
    results = measure(configs, log)
    rows = [Row(c, ZOO[c], *results[c], benchmarks.get(c), stock_reference(c)) for c in configs]
    return render(rows, benchmarks)


# --------------------------------------------------------------------------- benchmarks


def load_benchmarks(path: str = BENCHMARKS) -> Dict[str, dict]:
    if not osp.isfile(path):
        return {}
    with open(path, encoding='utf-8') as f:
        return json.load(f).get('entries', {})


def machine_description() -> str:
    import torch
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo', encoding='utf-8') as f:
            names = [line.split(':', 1)[1].strip() for line in f if line.startswith('model name')]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return (f'{platform.system()} {platform.machine()}, {cpu}, {os.cpu_count()} cores, '
            f'torch {torch.__version__}')


def run_benchmarks(configs: Sequence[str], args: argparse.Namespace, command: str,
                   log: Callable[[str], None]) -> Dict[str, dict]:
    """Benchmark each config against its stock model; returns the new JSON entries."""
    entries = {}
    with tempfile.TemporaryDirectory() as tmp:
        for config in configs:
            stock = stock_config(config)
            if not isinstance(stock, str):  # derived stock config: benchmark reads files
                stock_path = osp.join(tmp, f'stock_{config}')
                stock.dump(stock_path)
                stock = stock_path
            result = benchmark_configs(
                [stock, config_path(config)], shape=ZOO[config].shape,
                batch_size=args.batch_size,
                device=args.device, warmup=args.warmup, repeats=args.repeats, iters=args.iters,
                min_time=args.min_time, backbone_only=args.backbone_only, log=log)
            base, ours = result['results']
            record = dict(
                stock=ZOO[config].inherits if ZOO[config].stock_backbone is None
                else stock_description(config),
                throughput=ours['throughput'], stock_throughput=base['throughput'],
                unit=ours['unit'], ratio=ours['ratio'],
                latency_ms=ours['latency_ms'], stock_latency_ms=base['latency_ms'],
                latency_speedup=ours['latency_speedup'],
                batch_size=result['batch_size'], shape=result['shape'],
                clip_len=result['clip_len'], device=result['device'],
                measure=result['measure'], timing_method=result['timing_method'],
                date=datetime.date.today().isoformat(), machine=machine_description(),
                command=command)
            entries[config] = dict(backbone=record) if args.backbone_only else record
            log(f"{config}: {ours['throughput']:.2f} vs {base['throughput']:.2f} "
                f"{ours['unit']}/s ({ours['ratio']:.2f}x)")
    return entries


def save_benchmarks(entries: Dict[str, dict], path: str = BENCHMARKS) -> None:
    """Record new measurements; a whole-model one keeps the config's backbone one and back."""
    merged = load_benchmarks(path)
    for config, entry in entries.items():
        merged[config] = {**merged.get(config, {}), **entry}
    ordered = {c: merged[c] for c in ZOO if c in merged}
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(dict(note='written by tools/make_model_zoo.py --benchmark; read by the page',
                       entries=ordered), f, indent=1)
        f.write('\n')


# --------------------------------------------------------------------------- command line


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Generate docs/model_zoo.md from configs/ (and docs/benchmarks.json).')
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument('--check', action='store_true',
                      help='do not write; exit 1 if the page differs from a fresh one')
    mode.add_argument('--benchmark', nargs='*', metavar='CONFIG',
                      help='measure speed vs stock of these configs (file names or paths; '
                      'none: all), record it in docs/benchmarks.json, rewrite the page')
    parser.add_argument('--out', default=DOC, help='page to write or check (default %(default)s)')
    parser.add_argument('--batch-size', type=int, default=8,
                        help='--benchmark: images (clips) per forward (default 8)')
    parser.add_argument('--device', default='cpu', choices=['cpu', 'cuda'],
                        help='--benchmark: device (default cpu)')
    parser.add_argument('--warmup', type=int, default=2, help='--benchmark: warm-up forwards')
    parser.add_argument('--repeats', type=int, default=3, help='--benchmark: timed repeats')
    parser.add_argument('--iters', type=int, default=3, help='--benchmark: forwards per repeat')
    parser.add_argument('--min-time', type=float, default=0.0, metavar='S',
                        help='--benchmark: minimum seconds per repeat')
    parser.add_argument('--threads', type=int, help='--benchmark: torch CPU threads')
    parser.add_argument('--backbone-only', action='store_true',
                        help='--benchmark: time the backbones alone (recorded beside the '
                        'whole-model measurement)')
    return parser.parse_args(argv)


def _benchmark_names(names: Sequence[str]) -> List[str]:
    configs = zoo_configs()
    if not names:
        return configs
    out = []
    for name in names:
        base = osp.basename(name)
        if base not in ZOO:
            raise ConfigError(f'{name} is not a model zoo config (one of {", ".join(configs)})')
        out.append(base)
    return out


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    command = shlex.join(['python', 'tools/make_model_zoo.py',
                          *(sys.argv[1:] if argv is None else argv)])

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    try:
        if args.benchmark is not None:
            if args.threads is not None:
                import torch
                if args.threads < 1:
                    raise ConfigError(f'bad --threads {args.threads}: expected >= 1')
                torch.set_num_threads(args.threads)
            save_benchmarks(run_benchmarks(_benchmark_names(args.benchmark), args, command,
                                           log))
        page = build_page(log)
    except ConfigError as error:
        print(f'make_model_zoo.py: error: {error}', file=sys.stderr)
        return 2
    if args.check:
        current = open(args.out, encoding='utf-8').read() if osp.isfile(args.out) else ''
        if current == page:
            print(f'{osp.relpath(args.out, ROOT)} is up to date')
            return 0
        diff = difflib.unified_diff(current.splitlines(), page.splitlines(), 'committed',
                                    'generated', lineterm='', n=0)
        print('\n'.join(list(diff)[:60]))
        print(f'{osp.relpath(args.out, ROOT)} is out of date: run python tools/make_model_zoo.py',
              file=sys.stderr)
        return 1
    os.makedirs(osp.dirname(args.out), exist_ok=True)
    with open(args.out, 'w', encoding='utf-8') as f:
        f.write(page)
    print(f'wrote {osp.relpath(args.out, ROOT)}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
