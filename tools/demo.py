#!/usr/bin/env python
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
 7. mmdet's DetInferencer draws the trained detector's boxes and masks on a validation image.
"""
import argparse
import os
import os.path as osp
import re
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)
# Idle OpenMP threads sleep instead of spinning: with more processes than cores (a second
# job, gloo workers) spinning threads made training several times slower.
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')

DET_CONFIG = 'configs/detection/mask_rcnn_stvit_r_swin_t_synthetic.py'
DET_STOCK, DET_OURS = ('mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py',
                       'configs/detection/mask_rcnn_stvit_r_swin_t.py')
CLS_CONFIG = 'configs/classification/stvit_deit_t_synthetic.py'
CLS_STOCK, CLS_OURS = 'mmpretrain::deit/deit-small_4xb256_in1k.py', 'configs/classification/stvit_deit_s_in1k.py'


def run(cmd: list, log_path: str) -> str:
    """Run a tool, echo its progress lines, keep the full log; stop the demo if it fails."""
    shown = ['python'] + [osp.relpath(c, ROOT) if osp.isabs(c) else c for c in cmd[1:]]
    print('$ ' + ' '.join(shown), flush=True)
    lines = []
    with subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True) as proc, open(log_path, 'w') as log:
        for line in proc.stdout:
            log.write(line)
            lines.append(line)
            # (not a bare 'error': torch's build settings line holds -Werror flags)
            if re.search(r'(Iter|Epoch)\((train|val|test)\)|Saving checkpoint|Traceback|'
                         r'[A-Za-z]*Error\b|error:', line):
                print('   ' + line.rstrip()[:170], flush=True)
    if proc.returncode:
        sys.exit(f'demo: {cmd[1]} failed (exit {proc.returncode}); see {log_path}')
    return ''.join(lines)


def table(rows: list) -> str:
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    return '\n'.join('  '.join(str(c).ljust(w) for c, w in zip(r, widths)) for r in rows)


def compare(stock: str, ours: str, names: tuple, shape: tuple, batch_size: int,
            backbone_rows: bool) -> str:
    """FLOPs (tools/get_flops.py's counter) and CPU throughput (tools/benchmark.py's harness)."""
    from stvit_mm.analysis import benchmark_configs, complexity_from_config
    flops = [complexity_from_config(c, shape) for c in (stock, ours)]
    log = lambda m: print('      ' + m, flush=True)  # noqa: E731
    runs = [('whole model', benchmark_configs([stock, ours], shape=shape, batch_size=batch_size,
                                              warmup=1, repeats=3, iters=1, log=log))]
    if backbone_rows:
        runs.insert(0, ('backbone', benchmark_configs([stock, ours], shape=shape,
                                                      batch_size=batch_size, warmup=1,
                                                      repeats=3, iters=1, backbone_only=True,
                                                      log=log)))
    unit = runs[0][1]['results'][0]['unit']
    rows = [('model', 'part', 'params (M)', 'GMACs', f'{unit}/s', 'ratio')]
    for part, bench in runs:
        key = 'backbone_' if part == 'backbone' else ''
        for name, f, b in zip(names, flops, bench['results']):
            rows.append((name, part, f'{f[key + "params"] / 1e6:.2f}',
                         f'{f[key + "flops"] / 1e9:.2f}', f'{b["throughput"]:.3f}',
                         f'{b["throughput"] / bench["results"][0]["throughput"]:.2f}x'))
    lines = [table(rows)]
    for part in ('backbone', 'whole model') if backbone_rows else ('whole model', ):
        key = 'backbone_' if part == 'backbone' else ''
        lines.append(f'{part} FLOPs ratio: {flops[1][key + "flops"] / flops[0][key + "flops"]:.3f}x')
    lines.append(f'input {shape[0]}x{shape[1]}, batch {batch_size}, CPU, '
                 f'{__import__("torch").get_num_threads()} threads')
    return '\n'.join(lines)


def detection(args) -> str:
    from stvit_mm.datasets import make_coco_instance
    data_root = osp.join(ROOT, 'data/generated/coco_synthetic') + '/'
    work_dir = osp.join(ROOT, 'work_dirs/demo_mask_rcnn_stvit_r_swin_t')
    os.makedirs(work_dir, exist_ok=True)
    print('[1/7] generating the COCO-format demo set in data/generated/coco_synthetic', flush=True)
    made = make_coco_instance(data_root)
    print(f'      {made["train"]["images"]} train / {made["val"]["images"]} val images, '
          f'{made["train"]["annotations"]} / {made["val"]["annotations"]} objects, '
          f'classes {", ".join(made["classes"])}')
    opts = [f'{s}_dataloader.dataset.data_root={data_root}' for s in ('train', 'val', 'test')]
    opts += [f'{s}_evaluator.ann_file={data_root}annotations/instances_val.json'
             for s in ('val', 'test')]
    if args.det_iters:
        opts += [f'train_cfg.max_iters={args.det_iters}', f'train_cfg.val_interval={args.det_iters}',
                 f'default_hooks.checkpoint.interval={args.det_iters}',
                 f'param_scheduler.1.T_max={args.det_iters}', f'param_scheduler.1.end={args.det_iters}']
    print('[2/7] training Mask R-CNN STViT-R-Swin-T from scratch (a few minutes)', flush=True)
    run([sys.executable, 'tools/train.py', DET_CONFIG, '--work-dir', work_dir,
         '--cfg-options', *opts], osp.join(work_dir, 'train.log'))
    checkpoint = open(osp.join(work_dir, 'last_checkpoint')).read().strip()
    print('[3/7] evaluating the final checkpoint with CocoMetric', flush=True)
    out = run([sys.executable, 'tools/test.py', DET_CONFIG, checkpoint, '--work-dir', work_dir,
               '--cfg-options', *opts], osp.join(work_dir, 'test.log'))
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
              f'checkpoint {osp.relpath(checkpoint, ROOT)}\n{comparison}')
    return report, checkpoint, data_root


def draw_detections(checkpoint: str, data_root: str) -> str:
    """mmdet's DetInferencer with our config and checkpoint on the first validation image;
    returns the path of the picture it wrote."""
    from mmdet.apis import DetInferencer
    image = sorted(os.listdir(osp.join(data_root, 'val')))[0]
    out_dir = osp.join(osp.dirname(checkpoint), 'predictions')
    print(f'[7/7] drawing the trained detector\'s boxes and masks on val/{image} '
          '(mmdet DetInferencer)', flush=True)
    inferencer = DetInferencer(model=osp.join(ROOT, DET_CONFIG), weights=checkpoint,
                               device='cpu')
    inferencer(osp.join(data_root, 'val', image), out_dir=out_dir, no_save_pred=True)
    picture = osp.join(out_dir, 'vis', image)
    if not osp.isfile(picture):
        sys.exit(f'demo: DetInferencer wrote no picture at {picture}')
    return picture


def classification(args) -> str:
    from stvit_mm.datasets import make_imagenet_style
    data_root = osp.join(ROOT, 'data/generated/imagenet_synthetic')
    work_dir = osp.join(ROOT, 'work_dirs/demo_stvit_deit_t')
    os.makedirs(work_dir, exist_ok=True)
    print('[5/7] STViT-DeiT-Tiny on a generated 4-class ImageNet-format set', flush=True)
    counts = make_imagenet_style(data_root)
    opts = [f'{s}_dataloader.dataset.data_root={data_root}' for s in ('train', 'val', 'test')]
    run([sys.executable, 'tools/train.py', CLS_CONFIG, '--work-dir', work_dir,
         '--cfg-options', *opts], osp.join(work_dir, 'train.log'))
    checkpoint = open(osp.join(work_dir, 'last_checkpoint')).read().strip()
    out = run([sys.executable, 'tools/test.py', CLS_CONFIG, checkpoint, '--work-dir', work_dir,
               '--cfg-options', *opts], osp.join(work_dir, 'test.log'))
    top1 = re.search(r'accuracy/top1: ([\d.]+)', out)
    if top1 is None:
        sys.exit('demo: tools/test.py printed no accuracy/top1')
    print(f'[6/7] FLOPs and CPU throughput at 224x224, batch {args.batch_size}: DeiT-S vs '
          'STViT-DeiT-S', flush=True)
    comparison = compare(CLS_STOCK, CLS_OURS, ('DeiT-S (mmpretrain)', 'STViT-DeiT-S'),
                         (224, 224), args.batch_size, backbone_rows=False)
    return (f'STViT-DeiT-Tiny on the generated set: top-1 {float(top1.group(1)):.2f}% on '
            f'{counts["val"]} val images (chance 25%)\n{comparison}')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--batch-size', type=int, default=32,
                        help='classification benchmark batch size')
    parser.add_argument('--det-iters', type=int, default=None,
                        help='detection training iterations (default: the config, 100)')
    parser.add_argument('--skip', choices=['detection', 'classification'], action='append',
                        default=[], help='leave out a part')
    args = parser.parse_args()
    import stvit_mm  # noqa: F401

    start = time.time()
    reports, picture = [], None
    if 'detection' not in args.skip:
        report, checkpoint, data_root = detection(args)
        reports.append(report)
    if 'classification' not in args.skip:
        reports.append(classification(args))
    if 'detection' not in args.skip:
        picture = draw_detections(checkpoint, data_root)
    print('\n=== stvit-mm demo ===')
    print('\n\n'.join(reports))
    print(f'\ndemo finished in {time.time() - start:.0f} s')
    if picture:
        print(f'predicted boxes and masks on a validation image: {osp.relpath(picture, ROOT)}')


if __name__ == '__main__':
    main()
