#!/usr/bin/env python
"""Generate docs/model_zoo.md from the metafiles, so the page cannot drift from the code.

    python tools/make_model_zoo.py                 # count params/MACs into the metafiles,
                                                   # write docs/model_zoo.md
    python tools/make_model_zoo.py --check         # exit 1 if a metafile or the page differs
                                                   # from a fresh one
    python tools/make_model_zoo.py --benchmark [CONFIG ...] [--batch-size N] [...]
                                                   # measure CPU/GPU speed vs stock, record it
                                                   # in docs/benchmarks.json, rewrite the page
    python tools/make_model_zoo.py --benchmark [CONFIG ...] --backbone-only [...]
                                                   # the same for the backbones alone
    python tools/make_model_zoo.py --benchmark [CONFIG ...] --train [--backbone-only] [...]
                                                   # training steps: speed and peak memory
    python tools/make_model_zoo.py --benchmark [CONFIG ...] --mode predict [...]
                                                   # inference as tools/test.py runs it

The data lives in the OpenMMLab metafiles: model-index.yml imports one
configs/<folder>/metafile.yml per config folder, whose entries give each config's
name, the stock config it inherits and the stock model it is compared with, the
paper's results, release links and conversion commands; its parameters and
multiply-adds (stvit_mm.analysis.complexity_from_config, as tools/get_flops.py)
are counted here and written into the metafiles. The page adds the speed records
of docs/benchmarks.json and the stock accuracy and weights from the installed
packages' metafiles. The script stops when a config has no entry, an entry has
no config, or a config no longer inherits the stock config its entry names.
The logic is in stvit_mm.zoo.
"""
import argparse
import difflib
import os
import os.path as osp
import shlex
import sys
import warnings
from typing import List, Optional, Sequence

# mmengine imports pkg_resources; its deprecation warning is noise in a tool's output.
warnings.filterwarnings('ignore', message='pkg_resources is deprecated')
ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

import stvit_mm  # noqa: F401  (compat shims before any mm* import)

# isort: split

from stvit_mm.utils import ConfigError
from stvit_mm.zoo.benchmarks import load_benchmarks, run_benchmarks, save_benchmarks
from stvit_mm.zoo.figures import measure, stale_figures, write_figures
from stvit_mm.zoo.metafiles import check_inheritance, load_sections, zoo_configs
from stvit_mm.zoo.page import render

DOC = osp.join(ROOT, 'docs', 'model_zoo.md')
BENCHMARKS = osp.join(ROOT, 'docs', 'benchmarks.json')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Generate docs/model_zoo.md from the metafiles (and docs/benchmarks.json).')
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument('--check', action='store_true',
                      help='do not write; exit 1 if a metafile or the page differs from a '
                      'fresh one')
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
    parser.add_argument('--train', action='store_true',
                        help='--benchmark: time training steps (forward + backward) and '
                        'measure their peak memory (recorded beside inference)')
    parser.add_argument('--mode', default='tensor', choices=['tensor', 'predict'],
                        help="--benchmark: 'predict' times detectors and segmentors as "
                        "tools/test.py runs them, post-processing included (default tensor)")
    return parser.parse_args(argv)


def _benchmark_names(names: Sequence[str], configs: List[str]) -> List[str]:
    out = []
    for name in names or configs:
        base = osp.basename(name)
        if base not in configs:
            raise ConfigError(f'{name} is not a model zoo config (one of {", ".join(configs)})')
        out.append(base)
    return out


def _diff(current: str, fresh: str) -> str:
    return '\n'.join(list(difflib.unified_diff(current.splitlines(), fresh.splitlines(),
                                               'committed', 'generated', lineterm='', n=0))[:60])


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    command = shlex.join(['python', 'tools/make_model_zoo.py',
                          *(sys.argv[1:] if argv is None else argv)])

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    try:
        sections = load_sections()
        zoo = {e.file: e for s in sections for e in s.entries}
        configs = zoo_configs(zoo)
        check_inheritance(zoo, configs)
        if args.benchmark is not None:
            if args.threads is not None:
                import torch
                if args.threads < 1:
                    raise ConfigError(f'bad --threads {args.threads}: expected >= 1')
                torch.set_num_threads(args.threads)
            entries = run_benchmarks(
                zoo, _benchmark_names(args.benchmark, configs), command,
                batch_size=args.batch_size, device=args.device, warmup=args.warmup,
                repeats=args.repeats, iters=args.iters, min_time=args.min_time,
                backbone_only=args.backbone_only, train=args.train, mode=args.mode, log=log)
            save_benchmarks(entries, BENCHMARKS, order=configs)
        measured = measure(zoo, configs, log)
        if args.check:
            stale = stale_figures(zoo, measured)
            if stale:
                print('\n'.join(stale))
                print('the metafiles\' figures are out of date: run python '
                      'tools/make_model_zoo.py', file=sys.stderr)
                return 1
        else:
            for path in write_figures(sections, measured):
                log(f'updated {osp.relpath(osp.realpath(path), ROOT)}')
            sections = load_sections()
        page = render(sections, load_benchmarks(BENCHMARKS))
    except ConfigError as error:
        print(f'make_model_zoo.py: error: {error}', file=sys.stderr)
        return 2
    if args.check:
        current = open(args.out, encoding='utf-8').read() if osp.isfile(args.out) else ''
        if current == page:
            print(f'{osp.relpath(args.out, ROOT)} and the metafiles are up to date')
            return 0
        print(_diff(current, page))
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
