#!/usr/bin/env python
"""`make demo`: the main job end to end on generated data.

1. generate a 4-class ImageNet-format set (stvit_mm.datasets);
2. train STViT-DeiT-Tiny on it with tools/train.py (real mmengine Runner);
3. evaluate the final checkpoint with tools/test.py (top-1 accuracy);
4. FLOPs (tools/get_flops.py's counter) and CPU throughput (tools/benchmark.py's
   harness) of STViT-DeiT-S vs DeiT-S at 224x224, measured side by side.
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

DEMO_CONFIG = 'configs/stvit_deit_t_synthetic.py'
STOCK, OURS = 'mmpretrain::deit/deit-small_4xb256_in1k.py', 'configs/stvit_deit_s_in1k.py'


def run(cmd: list, log_path: str) -> str:
    """Run a tool, stream its progress lines, keep the full log; fail loudly."""
    print('$ ' + ' '.join(cmd), flush=True)
    lines = []
    with subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True) as proc, open(log_path, 'w') as log:
        for line in proc.stdout:
            log.write(line)
            lines.append(line)
            if re.search(r'Epoch\((train|val|test)\)|Saving checkpoint', line):
                print('   ' + line.rstrip()[:160], flush=True)
    if proc.returncode:
        sys.exit(f'demo: {cmd[1]} failed (exit {proc.returncode}); see {log_path}')
    return ''.join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--work-dir', default='work_dirs/demo_stvit_deit_t')
    parser.add_argument('--data-root', default='data/generated/imagenet_synthetic')
    parser.add_argument('--batch-size', type=int, default=32, help='benchmark batch size')
    args = parser.parse_args()

    import stvit_mm  # noqa: F401
    from stvit_mm.analysis import benchmark_configs, complexity_from_config
    from stvit_mm.datasets import make_imagenet_style

    start = time.time()
    data_root = osp.join(ROOT, args.data_root)
    work_dir = osp.join(ROOT, args.work_dir)
    os.makedirs(work_dir, exist_ok=True)
    print(f'[1/4] generating the ImageNet-format demo set in {args.data_root}', flush=True)
    counts = make_imagenet_style(data_root)
    print(f'      {counts["train"]} train / {counts["val"]} val images, 4 classes, 64x64')

    data_opts = [f'{s}_dataloader.dataset.data_root={data_root}' for s in ('train', 'val', 'test')]
    print('[2/4] training STViT-DeiT-Tiny with the mmengine Runner', flush=True)
    run([sys.executable, 'tools/train.py', DEMO_CONFIG, '--work-dir', work_dir,
         '--cfg-options', *data_opts], osp.join(work_dir, 'train.log'))
    checkpoint = osp.join(work_dir, open(osp.join(work_dir, 'last_checkpoint')).read().strip())

    print('[3/4] evaluating the final checkpoint', flush=True)
    out = run([sys.executable, 'tools/test.py', DEMO_CONFIG, checkpoint, '--work-dir', work_dir,
               '--cfg-options', *data_opts], osp.join(work_dir, 'test.log'))
    match = re.search(r'accuracy/top1: ([\d.]+)', out)
    if match is None:
        sys.exit('demo: tools/test.py printed no accuracy/top1')
    top1 = float(match.group(1))

    print(f'[4/4] FLOPs and CPU throughput at 224x224, batch {args.batch_size}: '
          'DeiT-S vs STViT-DeiT-S (a minute or two)', flush=True)
    flops = [complexity_from_config(c, (224, 224)) for c in (STOCK, OURS)]
    bench = benchmark_configs([STOCK, OURS], shape=(224, 224), batch_size=args.batch_size,
                              warmup=1, repeats=3, iters=2,
                              log=lambda m: print('      ' + m, flush=True))

    print('\n=== stvit-mm demo ===')
    print(f'STViT-DeiT-Tiny on the generated set: top-1 {top1:.2f}% on {counts["val"]} '
          f'val images (chance 25%), checkpoint {osp.relpath(checkpoint, ROOT)}')
    rows = [('model', 'params (M)', 'GMACs', 'img/s', 'latency b1 (ms)')]
    for name, f, b in zip(('DeiT-S (mmpretrain)', 'STViT-DeiT-S (ours)'), flops,
                          bench['results']):
        rows.append((name, f'{f["params"] / 1e6:.2f}', f'{f["flops"] / 1e9:.3f}',
                     f'{b["images_per_s"]:.2f}', f'{b["latency_ms"]:.1f}'))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print('  '.join(cell.ljust(w) for cell, w in zip(row, widths)))
    print(f'FLOPs ratio {flops[1]["flops"] / flops[0]["flops"]:.3f}x, throughput ratio '
          f'{bench["results"][1]["images_per_s"] / bench["results"][0]["images_per_s"]:.2f}x '
          f'({bench.get("device", "cpu")}, batch {args.batch_size}, torch threads '
          f'{__import__("torch").get_num_threads()})')
    print(f'demo finished in {time.time() - start:.0f} s')


if __name__ == '__main__':
    main()
