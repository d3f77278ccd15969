#!/usr/bin/env python
"""`make demo-video`: video recognition with STViT-R Video Swin-T end to end on generated clips.

The steps (listed there) run in stvit_mm/demos/video.py.
"""
import argparse
import os
import os.path as osp
import warnings

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
# Idle OpenMP threads sleep instead of spinning: with more processes than cores (a second
# job, gloo workers) spinning threads made training several times slower.
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')
# Known noise in this stack: mmengine's pkg_resources import, mmaction's Swin meshgrid call.
warnings.filterwarnings('ignore', message='pkg_resources is deprecated')
warnings.filterwarnings('ignore', message='torch.meshgrid: in an upcoming release')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--epochs', type=int, help='training epochs (default: the config, 5)')
    parser.add_argument('--batch-size', type=int, default=1,
                        help='clips per forward in the throughput benchmark (default 1)')
    parser.add_argument('--clip-len', type=int, default=32,
                        help='frames per clip in the throughput benchmark (default 32; FLOPs '
                        'are always counted at 32)')
    parser.add_argument('--repeats', type=int, default=2,
                        help='timed repeats of the throughput benchmark (default 2)')
    parser.add_argument('--skip', choices=['train', 'benchmark'], action='append', default=[],
                        help='leave out a part')
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    from stvit_mm.demos.video import run_demo
    run_demo(args, ROOT)


if __name__ == '__main__':
    main()
