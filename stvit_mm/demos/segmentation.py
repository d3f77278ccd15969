"""`make demo-seg`: semantic segmentation with UperNet STViT-R-Swin-T end to end on generated data.

 1. generate an ADE20K-layout set, 5 textured stuff classes, label 0 = unlabelled
    (stvit_mm.datasets.make_ade20k_style);
 2. train UperNet STViT-R-Swin-T from scratch on 128x128 crops with tools/train.py (real
    mmengine Runner, mmseg BaseSegDataset, pipeline and IoUMetric);
 3. evaluate the final checkpoint with tools/test.py (mIoU, overlays with --show-dir) beside
    the mIoU of predicting the most frequent class everywhere, scored the same way;
 4. params, MACs (tools/get_flops.py's counter) and CPU throughput (tools/benchmark.py's
    harness) at 512x512 vs stock UperNet Swin-T (mmseg), backbone and whole model.
"""
import argparse
import os
import os.path as osp
import re
import sys
import time

from .common import compare, train_and_test

CONFIG = 'configs/segmentation/upernet_stvit_r_swin_t_synthetic.py'
STOCK = 'mmseg::swin/swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512.py'
OURS = 'configs/segmentation/upernet_stvit_r_swin_t_ade20k.py'
NAMES = ('UperNet Swin-T (mmseg)', 'UperNet STViT-R-Swin-T')
SHAPE = (512, 512)


def train_segmentor(args: argparse.Namespace, root: str) -> str:
    """Steps 1-3; the report."""
    from ..datasets import majority_class_baseline, make_ade20k_style
    data_root = osp.join(root, 'data/generated/ade20k_synthetic')
    work_dir = osp.join(root, 'work_dirs/demo_upernet_stvit_r_swin_t')
    os.makedirs(work_dir, exist_ok=True)
    print('[1/4] generating the ADE20K-layout set in data/generated/ade20k_synthetic',
          flush=True)
    made = make_ade20k_style(data_root)
    classes = made['classes']
    height, width = made['image_size']
    print(f'      {made["training"]} train / {made["validation"]} val images, {height}x{width}, '
          f'{len(classes)} classes: {", ".join(classes)}', flush=True)
    opts = [f'{s}_dataloader.dataset.data_root={data_root}' for s in ('train', 'val', 'test')]
    if args.iters:
        warmup = max(1, min(15, args.iters // 10))  # the config's 15 of 150, kept inside
        opts += [f'train_cfg.max_iters={args.iters}', f'train_cfg.val_interval={args.iters}',
                 f'default_hooks.checkpoint.interval={args.iters}',
                 f'param_scheduler.0.end={warmup}', f'param_scheduler.1.begin={warmup}',
                 f'param_scheduler.1.end={args.iters}']
    print('[2/4] training UperNet STViT-R-Swin-T from scratch on 128x128 crops (a few minutes)',
          flush=True)
    show_dir = osp.join(work_dir, 'show')
    checkpoint, out = train_and_test(
        CONFIG, work_dir, opts, root,
        '[3/4] evaluating the final checkpoint with tools/test.py (IoUMetric)',
        test_args=('--show-dir', show_dir))
    metrics = {k: float(v) for k, v in re.findall(r'\b(aAcc|mIoU|mAcc): ([\d.]+)', out)}
    if 'mIoU' not in metrics:
        sys.exit('demo: tools/test.py printed no mIoU')
    baseline = majority_class_baseline(data_root, len(classes))
    return (f'UperNet STViT-R-Swin-T on the generated {len(classes)}-class set '
            f'({made["validation"]} val images, {height}x{width}): mIoU {metrics["mIoU"]:.2f}, '
            f'aAcc {metrics["aAcc"]:.2f}, mAcc {metrics["mAcc"]:.2f}\n'
            f'trivial predictor (every pixel = the most frequent class, '
            f'{classes[baseline["class"]]}, {100 * baseline["pixel_share"]:.1f}% of the val '
            f'pixels), same IoUMetric definition: mIoU {baseline["mIoU"]:.2f}\n'
            f'checkpoint {osp.relpath(checkpoint, root)}; overlays (ground truth | prediction) '
            f'in {osp.relpath(show_dir, root)}/vis_data/vis_image/')


def run_demo(args: argparse.Namespace, root: str) -> None:
    """The whole segmentation demo (``args``: tools/demo_seg.py's ``iters``, ``batch_size``,
    ``skip``), run in the checkout ``root``; prints the report."""
    start = time.time()
    reports = []
    if 'train' not in args.skip:
        reports.append(train_segmentor(args, root))
    if 'benchmark' not in args.skip:
        print(f'[4/4] params, MACs and CPU speed at {SHAPE[0]}x{SHAPE[1]}, batch '
              f'{args.batch_size}: {NAMES[0]} vs {NAMES[1]} (a few minutes)', flush=True)
        reports.append(compare(STOCK, OURS, NAMES, SHAPE, args.batch_size, backbone_rows=True)
                       + '\nUPerHead (identical in both) is most of the whole model: compare '
                       'the backbone rows.\n'
                       f'per tool: python tools/get_flops.py {OURS}; python tools/benchmark.py '
                       f'{STOCK} {OURS} --batch-size 1 [--backbone-only]')
    print('\n=== stvit-mm segmentation demo ===')
    print('\n\n'.join(reports))
    print(f'\nsegmentation demo finished in {time.time() - start:.0f} s')

