"""Speed records of the zoo (``docs/benchmarks.json``): ours vs the stock model, measured
with ``stvit_mm.analysis.complexity.benchmark_configs`` (``tools/benchmark.py``'s harness).

A config's entry holds the whole-model inference record at its top level (the first kind
measured) and the other kinds under their part name (:data:`PARTS`), so measuring one kind
keeps the others.
"""
import datetime
import json
import os
import os.path as osp
import platform
import statistics
import tempfile
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from ..analysis import benchmark_configs
from ..utils import load_config
from .metafiles import ZooEntry, config_path
from .stock import stock_config, stock_description

#: part name -> what is timed; 'model' records sit at the top level of a config's entry
PARTS = {
    'model': 'inference, whole model (tensor mode)',
    'backbone': 'inference, backbone',
    'predict': "inference, whole model (predict mode, as tools/test.py)",
    'train': 'training step, whole model',
    'backbone_train': 'training step, backbone',
}
REQUIRED_KEYS = ('ratio', 'batch_size', 'command', 'date', 'machine', 'device')


def part_name(backbone_only: bool = False, train: bool = False, mode: str = 'tensor') -> str:
    """The record a measurement with these settings goes to."""
    if mode == 'predict':
        return 'predict'
    if train:
        return 'backbone_train' if backbone_only else 'train'
    return 'backbone' if backbone_only else 'model'


def load_benchmarks(path: str) -> Dict[str, dict]:
    if not osp.isfile(path):
        return {}
    with open(path, encoding='utf-8') as f:
        return json.load(f).get('entries', {})


def save_benchmarks(entries: Dict[str, dict], path: str,
                    order: Optional[Sequence[str]] = None) -> None:
    """Record new measurements: each replaces the record of its part and keeps the others."""
    merged = load_benchmarks(path)
    for config, entry in entries.items():
        merged[config] = {**merged.get(config, {}), **entry}
    order = list(order) if order is not None else list(merged)
    ordered = {c: merged[c] for c in order + [c for c in merged if c not in order]
               if c in merged}
    os.makedirs(osp.dirname(path) or '.', exist_ok=True)
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(dict(note='written by tools/make_model_zoo.py --benchmark; read by the page',
                       entries=ordered), f, indent=1)
        f.write('\n')


def measurements(bench: dict) -> List[Tuple[str, dict]]:
    """(part, record) of each measurement of one config, in :data:`PARTS` order."""
    out = [('model', bench)] if 'ratio' in bench else []
    return out + [(part, bench[part]) for part in PARTS if part != 'model' and part in bench]


def machine_description() -> str:
    import torch
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo', encoding='utf-8') as f:
            names = [line.split(':', 1)[1].strip() for line in f if line.startswith('model name')]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return (f'{platform.system()} {platform.machine()}, {cpu}, {os.cpu_count()} cores, '
            f'torch {torch.__version__}')


def _measured_model(config: Any, backbone_only: bool) -> str:
    """What a measurement depends on in a config: its model (or backbone), weights aside."""
    cfg = load_config(config) if isinstance(config, str) else config
    model = cfg.model.backbone if backbone_only else cfg.model
    model = model.to_dict() if hasattr(model, 'to_dict') else dict(model)
    model.pop('init_cfg', None)
    return json.dumps(model, sort_keys=True, default=str)


def _record(result: dict, entry: ZooEntry, command: str) -> dict:
    """The JSON record of one ours-vs-stock ``benchmark_configs`` result: medians with their
    spread over the interleaved repeats (``rounds``; ``ratio`` is the median of the
    per-repeat ratios of models timed back to back)."""
    base, ours = result['results']
    ratios = ours['ratio_repeats']
    return dict(
        stock=entry.stock.config if entry.stock.backbone is None
        else stock_description(entry),
        throughput=ours['throughput'], stock_throughput=base['throughput'],
        throughput_min=min(ours['throughput_repeats']),
        throughput_max=max(ours['throughput_repeats']),
        stock_throughput_min=min(base['throughput_repeats']),
        stock_throughput_max=max(base['throughput_repeats']),
        unit=ours['unit'], ratio=statistics.median(ratios), ratio_min=min(ratios),
        ratio_max=max(ratios), rounds=len(ratios),
        latency_ms=ours['latency_ms'], stock_latency_ms=base['latency_ms'],
        latency_ms_min=ours['latency_ms_min'], latency_ms_max=ours['latency_ms_max'],
        stock_latency_ms_min=base['latency_ms_min'],
        stock_latency_ms_max=base['latency_ms_max'], latency_samples=ours['latency_samples'],
        latency_speedup=ours['latency_speedup'],
        peak_mem_mb=ours.get('peak_mem_mb'), stock_peak_mem_mb=base.get('peak_mem_mb'),
        batch_size=result['batch_size'], shape=result['shape'],
        clip_len=result['clip_len'], device=result['device'],
        measure=result['measure'], step=result['step'], mode=result['mode'],
        timing_method=result['timing_method'] + '; ratio: median of the per-repeat ratios',
        date=datetime.date.today().isoformat(), machine=machine_description(),
        command=command)


def run_benchmarks(zoo: Dict[str, ZooEntry], configs: Sequence[str], command: str, *,
                   batch_size: int = 8, device: str = 'cpu', warmup: int = 2, repeats: int = 3,
                   iters: int = 3, min_time: float = 0.0, backbone_only: bool = False,
                   train: bool = False, mode: str = 'tensor',
                   log: Callable[[str], None] = lambda message: None) -> Dict[str, dict]:
    """Benchmark each config against its stock model; returns the new JSON entries.

    Configs whose measured models (the backbones with ``backbone_only``) and stock models
    are identical at the same input share one measurement (``shared_with`` names the
    config measured), so the page cannot show two figures for the same thing.
    """
    part = part_name(backbone_only, train, mode)
    entries: Dict[str, dict] = {}
    measured: Dict[Tuple, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for config in configs:
            entry = zoo[config]
            stock = stock_config(entry)
            if not isinstance(stock, str):  # derived stock config: the harness reads files
                stock_path = osp.join(tmp, f'stock_{config}')
                stock.dump(stock_path)
                stock = stock_path
            key = (_measured_model(config_path(entry), backbone_only),
                   _measured_model(stock, backbone_only), tuple(entry.input_size or ()))
            if key in measured:
                first = measured[key]
                record = entries[first] if part == 'model' else entries[first][part]
                record = dict(record, shared_with=first)
                entries[config] = record if part == 'model' else {part: record}
                log(f'{config} ({PARTS[part]}): the same models as {first}, shared')
                continue
            result = benchmark_configs(
                [stock, config_path(entry)], shape=entry.input_size, batch_size=batch_size,
                device=device, warmup=warmup, repeats=repeats, iters=iters, min_time=min_time,
                backbone_only=backbone_only, train=train, mode=mode, log=log)
            record = _record(result, entry, command)
            measured[key] = config
            entries[config] = record if part == 'model' else {part: record}
            log(f"{config} ({PARTS[part]}): {record['ratio']:.2f}x "
                f"[{record['ratio_min']:.2f}, {record['ratio_max']:.2f}] over "
                f"{record['rounds']} rounds")
    return entries
