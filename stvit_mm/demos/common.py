"""What the demos share: running a tool with its progress shown, tables, the FLOPs and
throughput comparison of a stock config with ours."""
import os.path as osp
import re
import subprocess
import sys
from typing import List, Sequence, Tuple

# Lines of a tool's output the demos echo. (not a bare 'error': torch's build settings line
# holds -Werror flags)
PROGRESS = re.compile(r'(Iter|Epoch)\((train|val|test)\)|Saving checkpoint|Traceback|'
                      r'[A-Za-z]*Error\b|error:')


def run_tool(cmd: List[str], log_path: str, root: str) -> str:
    """Run a tool (``[python, tool, args...]``) in ``root``, echo its progress lines, keep the
    full log in ``log_path``; its output. Stops the demo when it fails."""
    shown = ['python'] + [osp.relpath(c, root) if osp.isabs(c) else c for c in cmd[1:]]
    print('$ ' + ' '.join(shown), flush=True)
    lines = []
    with subprocess.Popen(cmd, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True) as proc, open(log_path, 'w') as log:
        for line in proc.stdout:
            log.write(line)
            lines.append(line)
            if PROGRESS.search(line):
                print('   ' + line.rstrip()[:170], flush=True)
    if proc.returncode:
        sys.exit(f'demo: {cmd[1]} failed (exit {proc.returncode}); see {log_path}')
    return ''.join(lines)


def last_checkpoint(work_dir: str) -> str:
    """The checkpoint mmengine's Runner names in ``work_dir/last_checkpoint``."""
    return open(osp.join(work_dir, 'last_checkpoint')).read().strip()


def train_and_test(config: str, work_dir: str, opts: List[str], root: str,
                   evaluating: str = '', test_args: Sequence[str] = ()) -> Tuple[str, str]:
    """tools/train.py then tools/test.py on its last checkpoint, both with ``--cfg-options
    opts`` (logs in ``work_dir``), printing ``evaluating`` between; (checkpoint, test output)."""
    run_tool([sys.executable, 'tools/train.py', config, '--work-dir', work_dir,
              '--cfg-options', *opts], osp.join(work_dir, 'train.log'), root)
    checkpoint = last_checkpoint(work_dir)
    if evaluating:
        print(evaluating, flush=True)
    out = run_tool([sys.executable, 'tools/test.py', config, checkpoint, '--work-dir', work_dir,
                    *test_args, '--cfg-options', *opts], osp.join(work_dir, 'test.log'), root)
    return checkpoint, out


def table(rows: list) -> str:
    """Rows of cells as left-aligned columns."""
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    return '\n'.join('  '.join(str(c).ljust(w) for c, w in zip(r, widths)) for r in rows)


def compare(stock: str, ours: str, names: Tuple[str, str], shape: Tuple[int, int],
            batch_size: int, backbone_rows: bool) -> str:
    """FLOPs (tools/get_flops.py's counter) and CPU throughput (tools/benchmark.py's
    harness) of two configs, as a table with ratios."""
    import torch

    from ..analysis import benchmark_configs, complexity_from_config
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
        ratio = flops[1][key + 'flops'] / flops[0][key + 'flops']
        lines.append(f'{part} FLOPs ratio: {ratio:.3f}x')
    lines.append(f'input {shape[0]}x{shape[1]}, batch {batch_size}, CPU, '
                 f'{torch.get_num_threads()} threads')
    return '\n'.join(lines)
