"""The speed suite's table (markdown) and its files: bench_gpu.json and bench_gpu.md."""
import json
import os
import os.path as osp
from typing import Any, Dict, Optional


def _ms(spread: Dict[str, Any]) -> str:
    return f"{spread['median']:.2f} [{spread['min']:.2f}, {spread['max']:.2f}]"


def _sdpa(sdpa: Optional[Dict[str, Any]]) -> str:
    if sdpa is None:
        return 'not recorded (compiled)'
    if not sdpa['sdpa_calls']:
        return f"none ({sdpa['softmax_calls']} softmax)"
    return ', '.join(f'{name} {count}' for name, count in sdpa['backends'].items())


def format_suite(result: Dict[str, Any]) -> str:
    """One markdown row per case: times (median [min, max] over rounds), speed-up, memory."""
    lines = [f"device {result['device']}, torch {result['torch']}, {result['rounds']} rounds; "
             f"timing: {result['timing_method']}; memory: {result['memory_method']}", '',
             '| case | input | stock ms | ours ms | speed-up | peak MiB stock / ours | '
             'SDPA stock | SDPA ours |', '|---|---|---|---|---|---|---|---|']
    for case in result['cases']:
        if 'error' in case or 'skipped' in case:
            lines.append(f"| {case['name']} | {case.get('error') or case['skipped']} | "
                         '| | | | | |')
            continue
        stock, ours = case['stock'], case['ours']
        lines.append(
            f"| {case['name']} | {'x'.join(map(str, case['input']))} | {_ms(stock['ms'])} | "
            f"{_ms(ours['ms'])} | {_ms(case['speedup'])}x | {stock['peak_mem_mb']:.0f} / "
            f"{ours['peak_mem_mb']:.0f} | {_sdpa(stock['sdpa'])} | {_sdpa(ours['sdpa'])} |")
    refused = {(k['backend'], k['dtype'], k['mask'], name, reason)
               for case in result['cases'] for side in ('stock', 'ours')
               for k in ((case.get(side) or {}).get('sdpa') or {}).get('kinds', [])
               for name, reasons in k['refused'].items() for reason in reasons}
    if refused:
        lines += ['', 'SDPA fallbacks (backend used, dtype, mask; refused backend: reason):']
        lines += [f'- {b}, {d}, {"mask" if m else "no mask"}; {name}: {reason}'
                  for b, d, m, name, reason in sorted(refused)]
    lines += ['', f"{len(result['cases'])} cases in {result['elapsed_s']:.0f} s"]
    if result.get('command'):
        lines.append(f"command: `{result['command']}`")
    return '\n'.join(lines)


def write_suite(result: Dict[str, Any], out_dir: str) -> None:
    """``out_dir``/bench_gpu.json (the result) and bench_gpu.md (the table)."""
    os.makedirs(out_dir, exist_ok=True)
    with open(osp.join(out_dir, 'bench_gpu.json'), 'w', encoding='utf-8') as f:
        json.dump(result, f, indent=1)
        f.write('\n')
    with open(osp.join(out_dir, 'bench_gpu.md'), 'w', encoding='utf-8') as f:
        f.write(format_suite(result) + '\n')


__all__ = ['format_suite', 'write_suite']
