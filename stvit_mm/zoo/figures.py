"""Parameters and MACs of every zoo config and its stock model, kept in the metafiles.

The code is the truth: :func:`measure` counts them (``complexity_from_config``, as
``tools/get_flops.py``), :func:`stale_figures` lists metafile figures that differ and
:func:`write_figures` rewrites them.
"""
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import yaml

from ..analysis import complexity_from_config
from .metafiles import Section, ZooEntry, config_path, dump_metafile
from .stock import stock_config, stock_key

Log = Callable[[str], None]


def measure(zoo: Dict[str, ZooEntry], configs: Sequence[str],
            log: Log = lambda message: None) -> Dict[str, Tuple[dict, dict]]:
    """complexity_from_config of every config and of its stock model (stock ones shared)."""
    cache: Dict[str, dict] = {}

    def complexity(key: str, config: Any, shape: Optional[Tuple[int, int]]) -> dict:
        key = key if shape is None else f'{key}@{shape[0]}x{shape[1]}'
        if key not in cache:
            log(f'counting MACs: {key}')
            cache[key] = complexity_from_config(config, shape)
        return cache[key]

    out = {}
    for config in configs:
        entry = zoo[config]
        ours = complexity(config, config_path(entry), entry.input_size)
        out[config] = (ours, complexity(stock_key(entry), stock_config(entry), entry.input_size))
    return out


def _counts(result: dict) -> Dict[str, int]:
    return {'Parameters': int(round(result['params'])), 'FLOPs': int(round(result['flops'])),
            'Backbone FLOPs': int(round(result['backbone_flops']))}


def figures_of(ours: dict, stock: dict) -> Dict[str, Any]:
    """What the metafile records: input (H x W, frames first for clips) and the counts."""
    shape = ours['backbone_input_shape'][2:]  # without batch and channels
    return {'Input': 'x'.join(str(s) for s in shape), **_counts(ours),
            'Stock': _counts(stock)}


def _recorded(entry: ZooEntry) -> Dict[str, Any]:
    figures = dict(entry.figures)
    stock = figures.pop('Stock', {})
    return {**figures, 'Stock': {k: stock.get(k) for k in ('Parameters', 'FLOPs',
                                                           'Backbone FLOPs')}}


def stale_figures(zoo: Dict[str, ZooEntry],
                  measured: Dict[str, Tuple[dict, dict]]) -> List[str]:
    """Configs whose metafile figures differ from the measured ones, with the difference."""
    out = []
    for config, (ours, stock) in measured.items():
        fresh, recorded = figures_of(ours, stock), _recorded(zoo[config])
        if fresh != recorded:
            out.append(f'{config}: metafile {recorded}, code {fresh}')
    return out


_METADATA_ORDER = ('Title', 'Input Size', 'Input', 'Parameters', 'FLOPs', 'Backbone FLOPs',
                   'Stock')
_STOCK_ORDER = ('Name', 'Config', 'Backbone', 'Custom Imports', 'Parameters', 'FLOPs',
                'Backbone FLOPs', 'Results')


def _ordered(mapping: dict, order: Sequence[str]) -> dict:
    first = {k: mapping[k] for k in order if k in mapping}
    return {**first, **{k: v for k, v in mapping.items() if k not in first}}


def write_figures(sections: Sequence[Section],
                  measured: Dict[str, Tuple[dict, dict]]) -> List[str]:
    """Rewrite the figures of the metafiles where they differ; returns the files written."""
    written = []
    for section in sections:
        with open(section.path, encoding='utf-8') as f:
            data = yaml.safe_load(f)
        changed = False
        for model in data['Models']:
            config = model['Name'] + '.py'
            if config not in measured:
                continue
            fresh = figures_of(*measured[config])
            meta = model['Metadata']
            stock = {**meta['Stock'], **fresh.pop('Stock')}
            new = _ordered({**meta, **fresh, 'Stock': _ordered(stock, _STOCK_ORDER)},
                           _METADATA_ORDER)
            if new != meta:
                model['Metadata'], changed = new, True
        if changed:
            dump_metafile(data, section.path)
            written.append(section.path)
    return written
