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
import tempfile
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from ..analysis import benchmark_configs
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


def run_benchmarks(zoo: Dict[str, ZooEntry], configs: Sequence[str], command: str, *,
                   batch_size: int = 8, device: str = 'cpu', warmup: int = 2, repeats: int = 3,
                   iters: int = 3, min_time: float = 0.0, backbone_only: bool = False,
                   train: bool = False, mode: str = 'tensor',
                   log: Callable[[str], None] = lambda message: None) -> Dict[str, dict]:
    """Benchmark each config against its stock model; returns the new JSON entries."""
    part = part_name(backbone_only, train, mode)
    entries = {}
    with tempfile.TemporaryDirectory() as tmp:
        for config in configs:
            entry = zoo[config]
            stock = stock_config(entry)
            if not isinstance(stock, str):  # derived stock config: the harness reads files
                stock_path = osp.join(tmp, f'stock_{config}')
                stock.dump(stock_path)
                stock = stock_path
            result = benchmark_configs(
                [stock, config_path(entry)], shape=entry.input_size, batch_size=batch_size,
                device=device, warmup=warmup, repeats=repeats, iters=iters, min_time=min_time,
                backbone_only=backbone_only, train=train, mode=mode, log=log)
            base, ours = result['results']
            record = dict(
                stock=entry.stock.config if entry.stock.backbone is None
                else stock_description(entry),
                throughput=ours['throughput'], stock_throughput=base['throughput'],
                unit=ours['unit'], ratio=ours['ratio'],
                latency_ms=ours['latency_ms'], stock_latency_ms=base['latency_ms'],
                latency_speedup=ours['latency_speedup'],
                peak_mem_mb=ours.get('peak_mem_mb'), stock_peak_mem_mb=base.get('peak_mem_mb'),
                batch_size=result['batch_size'], shape=result['shape'],
                clip_len=result['clip_len'], device=result['device'],
                measure=result['measure'], step=result['step'], mode=result['mode'],
                timing_method=result['timing_method'],
                date=datetime.date.today().isoformat(), machine=machine_description(),
                command=command)
            entries[config] = record if part == 'model' else {part: record}
            log(f"{config} ({PARTS[part]}): {ours['throughput']:.2f} vs "
                f"{base['throughput']:.2f} {ours['unit']}/s ({ours['ratio']:.2f}x)")
    return entries
