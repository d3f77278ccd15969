"""Per-part profiles of configs' backbones side by side, and their markdown table.

``tools/profile_parts.py`` is a command line over :func:`profile_configs` and
:func:`format_parts`; the attribution itself is :mod:`.parts`.
"""
from typing import Any, Callable, Dict, List, Optional, Sequence

import torch

from ..utils.config import load_config
from ..utils.model_builder import build_model
from .forward import DEFAULT_CLIP_LEN, check_positive, first_call, make_forward
from .parts import PARTS, TOTAL, profile_parts
from .rounds import time_calls


def profile_configs(configs: Sequence[str], shape: Optional[Sequence[int]],
                    batch_sizes: Sequence[int], device: str = 'cpu', rounds: int = 3,
                    warmup: int = 2, clip_len: int = DEFAULT_CLIP_LEN,
                    log: Callable[[str], None] = lambda message: None) -> Dict[str, Any]:
    """Per-part profile of one backbone forward of each config at each batch size.

    Each model is built once; per batch size, every model is warmed up, timed once
    without the profiler (``unprofiled_ms``, to show the profiler's overhead) and
    profiled over ``rounds`` forwards (the parts are their mean).
    """
    check_positive('rounds', rounds)
    torch_device = torch.device(device)
    models = []
    for config in configs:
        log(f'building {config}')
        models.append(build_model(load_config(config), torch_device))
    runs = []
    with torch.inference_mode():
        for batch_size in batch_sizes:
            for config, model in zip(configs, models):
                log(f'profiling {config}, batch {batch_size}')
                case = make_forward(model, shape, batch_size, clip_len)
                for _ in range(max(warmup, 1)):
                    first_call(case.run_backbone, config, case)
                unprofiled = 1000 * time_calls(case.run_backbone, 1, torch_device)
                result = profile_parts(model.backbone, case.run_backbone, rounds, torch_device)
                runs.append(dict(config=config, backbone=type(model.backbone).__name__,
                                 batch_size=batch_size,
                                 input=list(case.backbone_input_shape),
                                 unprofiled_ms=unprofiled, **result))
    return dict(device=str(torch_device), threads=torch.get_num_threads(),
                torch=torch.__version__, rounds=rounds, runs=runs)


def _cell(part: Dict[str, float], total: Dict[str, float], cuda: bool) -> str:
    share = 100 * part['time_ms'] / max(total['time_ms'], 1e-9)
    count = part['kernels'] if cuda else part['ops']
    text = f"{part['time_ms']:.1f} ms ({share:.0f}%), {count:.0f}"
    return text + (f", {part['device_ms']:.2f} ms GPU" if cuda else '')


def format_parts(result: Dict[str, Any]) -> str:
    """Markdown table: one column per (backbone, batch), one row per part."""
    cuda = result['device'].startswith('cuda')
    runs: List[dict] = result['runs']
    header = ['part'] + [f"{r['backbone']} b={r['batch_size']}" for r in runs]
    count = 'kernels' if cuda else 'ops'
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    for part in PARTS + (TOTAL, ):
        cells = [_cell(r['parts'][part], r['parts'][TOTAL], cuda) for r in runs]
        lines.append(f'| {part} | ' + ' | '.join(cells) + ' |')
    lines.append('| unprofiled forward | ' + ' | '.join(
        f"{r['unprofiled_ms']:.1f} ms" for r in runs) + ' |')
    lines += ['', f'Cells: time per forward (share of the total), {count} per forward'
              + (', GPU kernel time' if cuda else '') + f"; mean of {result['rounds']} "
              f"profiled forwards; device {result['device']}, {result['threads']} threads, "
              f"torch {result['torch']}. Inputs: " + ', '.join(
                  f"{r['backbone']} {tuple(r['input'])}" for r in runs[:len(runs)]) + '.']
    return '\n'.join(lines)


__all__ = ['format_parts', 'profile_configs']
