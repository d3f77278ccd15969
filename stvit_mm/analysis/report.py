"""Text reports of analysis results, and stdout kept for one JSON document.

Formats what :func:`~stvit_mm.analysis.complexity_from_config` and
:func:`~stvit_mm.analysis.benchmark_configs` return; computes nothing.
"""
import contextlib
import json
import os
import sys
from typing import Any, Callable, Dict, Iterator, List, Sequence, TextIO

from ..utils.config import ConfigError


def _table(rows: Sequence[Sequence[str]], left_columns: int = 2) -> List[str]:
    """Rows of cells as aligned lines: the first ``left_columns`` left-aligned, the rest right."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ['  '.join(cell.ljust(w) if i < left_columns else cell.rjust(w)
                      for i, (cell, w) in enumerate(zip(row, widths))) for row in rows]


def _giga(value: float) -> str:
    return f'{value / 1e9:.3f} G'


def _mega(value: float) -> str:
    return f'{value / 1e6:.3f} M'


def _short(value: float) -> str:
    """G above 0.1 G, M below, so small heads do not read as 0."""
    return _giga(value) if value >= 1e8 else _mega(value)


def format_complexity(result: Dict[str, Any]) -> str:
    """Human-readable table of a :func:`complexity_from_config` result."""
    table = _table([('', 'input shape', 'params', 'MACs'),
                    ('model', str(tuple(result['input_shape'])), _mega(result['params']),
                     _giga(result['flops'])),
                    ('backbone', str(tuple(result['backbone_input_shape'])),
                     _mega(result['backbone_params']), _giga(result['backbone_flops']))])
    total = max(result['flops'], 1)
    parts = ', '.join(f'{name} {_short(flops)} ({100 * flops / total:.1f}%)'
                      for name, flops in result['flops_by_module'].items())
    return '\n'.join([
        f"config:   {result['config']}",
        f"model:    {result['model_type']} ({result['kind']}), "
        f"backbone {result['backbone_type']}",
        *table,
        f'modules:  {parts}',
        f"note:     {result['note']}; G = 1e9, M = 1e6",
    ])


def format_benchmark(result: Dict[str, Any]) -> str:
    """Side-by-side table of a :func:`benchmark_configs` result."""
    header = ('config', 'model', 'throughput', 'ratio', 'paired ratio [min, max]',
              'latency b=1', 'speed-up b=1', 'peak mem')
    table = _table([header] + [(
        r['config'], r['backbone_type'], f"{r['throughput']:.2f} {r['unit'][:-1]}/s",
        f"{r['ratio']:.2f}x",
        f"{r['paired_ratio']:.2f}x [{r['paired_ratio_min']:.2f}, {r['paired_ratio_max']:.2f}]",
        f"{r['latency_ms']:.1f} ms", f"{r['latency_speedup']:.2f}x",
        f"{r['peak_mem_mb']:.1f} MiB") for r in result['results']])
    measure = 'backbone only' if result['measure'] == 'backbone' else 'whole model'
    if result.get('step', '').startswith('training'):
        measure += ', training step (forward + backward)'
    if result.get('mode') == 'predict':
        measure += ", mode='predict' (post-processing included)"
    lines = [
        f"device {result['device']}, batch {result['batch_size']}, input "
        f"{'x'.join(map(str, result['shape']))}"
        + (f", {result['clip_len']} frames" if result.get('clip_len') else '')
        + f", {measure}, torch {result['torch']}",
        *table,
        "ratio: throughput / first config's; paired ratio: median, min and max over the "
        "repeats of that ratio within one repeat (the models timed back to back: the steadier "
        "figure on a busy machine); speed-up b=1: first config's latency / latency",
        f"timing: {result['timing_method']}",
        f"memory: {result['memory_method']}; MiB = 2**20 bytes",
    ]
    if result.get('command'):
        lines.append(f"command: {result['command']}")
    return '\n'.join(lines)


@contextlib.contextmanager
def json_stdout() -> Iterator[TextIO]:
    """Reserve stdout for one JSON document; anything else printed goes to stderr.

    mmengine's logger and native libraries write to file descriptor 1, so
    swapping ``sys.stdout`` is not enough: fd 1 points at stderr inside the
    block, and the yielded stream writes to the real stdout.
    """
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    stream = os.fdopen(os.dup(saved), 'w')
    try:
        yield stream
    finally:
        stream.close()
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def report_to_stdout(tool: str, compute: Callable[[], Dict[str, Any]], as_json: bool,
                     format_text: Callable[[Dict[str, Any]], str]) -> int:
    """What a report tool's ``main`` does: run ``compute`` and print its result.

    With ``as_json`` stdout holds exactly one JSON object (everything else
    printed goes to stderr, see :func:`json_stdout`); otherwise
    ``format_text(result)``. A :class:`ConfigError` is one line
    ``<tool>: error: ...`` on stderr.

    Returns:
        The exit status: 0, or 2 on bad input.
    """
    output = json_stdout() if as_json else contextlib.nullcontext(sys.stdout)
    with output as out:
        try:
            result = compute()
        except ConfigError as error:
            print(f'{tool}: error: {error}', file=sys.stderr)
            return 2
        out.write((json.dumps(result) if as_json else format_text(result)) + '\n')
    return 0


__all__ = ['format_benchmark', 'format_complexity', 'json_stdout', 'report_to_stdout']
