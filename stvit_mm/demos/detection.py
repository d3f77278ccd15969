"""`make demo`: the main job end to end on generated data.

Detection (the main use):
 1. generate a small COCO-format instance set (stvit_mm.datasets.make_coco_instance);
 2. train Mask R-CNN STViT-R-Swin-T on it with tools/train.py (real mmengine Runner);
 3. evaluate with tools/test.py: COCO bbox / segm mAP (pycocotools);
 4. FLOPs and CPU throughput at 800x1333 vs stock Mask R-CNN Swin-T (backbone and whole model).
Classification:
 5. train + evaluate STViT-DeiT-Tiny on a generated ImageNet-format set;
 6. FLOPs and CPU throughput of STViT-DeiT-S vs DeiT-S at 224x224.
Finally:
 7. one PNG: validation images as ground truth | prediction (score >= 0.5) | semantic tokens.
"""
import argparse
import os
import os.path as osp
import re
import sys
import time
from typing import Tuple

from .common import compare, train_and_test

DET_CONFIG = 'configs/detection/mask_rcnn_stvit_r_swin_t_synthetic.py'
DET_STOCK, DET_OURS = ('mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py',
                       'configs/detection/mask_rcnn_stvit_r_swin_t.py')
RESULT_IMAGES = 3  # validation images in the closing picture
CLS_CONFIG = 'configs/classification/stvit_deit_t_synthetic.py'
CLS_STOCK, CLS_OURS = ('mmpretrain::deit/deit-small_4xb256_in1k.py',
                       'configs/classification/stvit_deit_s_in1k.py')


def detection(args: argparse.Namespace, root: str) -> Tuple[str, str, str]:
    """Steps 1-4; the report, the final checkpoint and the data root."""
    from ..datasets import make_coco_instance
    data_root = osp.join(root, 'data/generated/coco_synthetic') + '/'
    work_dir = osp.join(root, 'work_dirs/demo_mask_rcnn_stvit_r_swin_t')
    os.makedirs(work_dir, exist_ok=True)
    print('[1/7] generating the COCO-format demo set in data/generated/coco_synthetic',
          flush=True)
    made = make_coco_instance(data_root)
    print(f'      {made["train"]["images"]} train / {made["val"]["images"]} val images, '
          f'{made["train"]["annotations"]} / {made["val"]["annotations"]} objects, '
          f'classes {", ".join(made["classes"])}')
    opts = [f'{s}_dataloader.dataset.data_root={data_root}' for s in ('train', 'val', 'test')]
    opts += [f'{s}_evaluator.ann_file={data_root}annotations/instances_val.json'
             for s in ('val', 'test')]
    if args.det_iters:
        iters = args.det_iters
        opts += [f'train_cfg.max_iters={iters}', f'train_cfg.val_interval={iters}',
                 f'default_hooks.checkpoint.interval={iters}',
                 f'param_scheduler.1.T_max={iters}', f'param_scheduler.1.end={iters}']
    print('[2/7] training Mask R-CNN STViT-R-Swin-T from scratch (a few minutes)', flush=True)
    checkpoint, out = train_and_test(DET_CONFIG, work_dir, opts, root,
                                     '[3/7] evaluating the final checkpoint with CocoMetric')
    metrics = dict(re.findall(r'coco/(bbox_mAP|bbox_mAP_50|segm_mAP|segm_mAP_50): ([\d.]+)', out))
    if 'bbox_mAP' not in metrics:
        sys.exit('demo: tools/test.py printed no coco/bbox_mAP')
    print('[4/7] FLOPs and CPU throughput at 800x1333, batch 1: Mask R-CNN Swin-T vs '
          'STViT-R-Swin-T (a few minutes)', flush=True)
    comparison = compare(DET_STOCK, DET_OURS, ('Mask R-CNN Swin-T (mmdet)',
                                               'Mask R-CNN STViT-R-Swin-T'),
                         (800, 1333), 1, backbone_rows=True)
    report = (f'Mask R-CNN STViT-R-Swin-T on the generated COCO set ({made["val"]["images"]} '
              f'val images): bbox mAP {metrics["bbox_mAP"]} (AP50 {metrics.get("bbox_mAP_50")}), '
              f'segm mAP {metrics["segm_mAP"]} (AP50 {metrics.get("segm_mAP_50")})\n'
              f'checkpoint {osp.relpath(checkpoint, root)}\n{comparison}')
    return report, checkpoint, data_root


def draw_results(checkpoint: str, data_root: str, root: str) -> str:
    """Step 7: the closing picture (:mod:`.figure`) of the first validation images; its
    path."""
    from .figure import SCORE_THRESHOLD, draw_results_figure
    trained = re.search(r'iter_(\d+)\.pth$', checkpoint)  # mmengine's checkpoint name
    how_long = f'trained {trained.group(1)} iterations' if trained else 'trained'
    images = sorted(os.listdir(osp.join(data_root, 'val')))[:RESULT_IMAGES]
    path = osp.join(osp.dirname(checkpoint), 'demo_results.png')
    print(f'[7/7] drawing ground truth | prediction (score >= {SCORE_THRESHOLD:g}) | semantic '
          f'tokens of {len(images)} validation images', flush=True)
    draw_results_figure(osp.join(root, DET_CONFIG), checkpoint, data_root, images, path,
                        f'Mask R-CNN STViT-R-Swin-T {how_long} from scratch on generated '
                        'shapes: validation images')
    return path


def classification(args: argparse.Namespace, root: str) -> str:
    """Steps 5-6; the report."""
    from ..datasets import make_imagenet_style
    data_root = osp.join(root, 'data/generated/imagenet_synthetic')
    work_dir = osp.join(root, 'work_dirs/demo_stvit_deit_t')
    os.makedirs(work_dir, exist_ok=True)
    print('[5/7] STViT-DeiT-Tiny on a generated 4-class ImageNet-format set', flush=True)
    counts = make_imagenet_style(data_root)
    opts = [f'{s}_dataloader.dataset.data_root={data_root}' for s in ('train', 'val', 'test')]
    checkpoint, out = train_and_test(CLS_CONFIG, work_dir, opts, root)
    top1 = re.search(r'accuracy/top1: ([\d.]+)', out)
    if top1 is None:
        sys.exit('demo: tools/test.py printed no accuracy/top1')
    print(f'[6/7] FLOPs and CPU throughput at 224x224, batch {args.batch_size}: DeiT-S vs '
          'STViT-DeiT-S', flush=True)
    comparison = compare(CLS_STOCK, CLS_OURS, ('DeiT-S (mmpretrain)', 'STViT-DeiT-S'),
                         (224, 224), args.batch_size, backbone_rows=False)
    return (f'STViT-DeiT-Tiny on the generated set: top-1 {float(top1.group(1)):.2f}% on '
            f'{counts["val"]} val images (chance 25%)\n{comparison}')


def run_demo(args: argparse.Namespace, root: str) -> None:
    """The whole demo (``args``: tools/demo.py's ``batch_size``, ``det_iters``, ``skip``),
    run in the checkout ``root``; prints the report."""
    start = time.time()
    reports, picture = [], None
    if 'detection' not in args.skip:
        report, checkpoint, data_root = detection(args, root)
        reports.append(report)
    if 'classification' not in args.skip:
        reports.append(classification(args, root))
    if 'detection' not in args.skip:
        picture = draw_results(checkpoint, data_root, root)
    print('\n=== stvit-mm demo ===')
    print('\n\n'.join(reports))
    print(f'\ndemo finished in {time.time() - start:.0f} s')
    if picture:
        print(f'picture (ground truth | prediction | semantic tokens): '
              f'{osp.relpath(picture, root)}')
