"""The stock model each zoo config is compared with, and its accuracy and weights."""
import importlib
import os.path as osp
from typing import Any, Dict, Optional, Tuple

import yaml

from ..utils import ConfigError, load_config
from .metafiles import ZooEntry, config_path


def stock_config(entry: ZooEntry) -> Any:
    """The stock model of ``entry``: a ``pkg::`` path or a derived mmengine Config."""
    stock = entry.stock
    if stock.backbone is None:
        return stock.config
    cfg = load_config(config_path(entry))
    source = stock.backbone.get('Config')
    backbone = load_config(source).model.backbone.to_dict() if source else {}
    backbone.update(stock.backbone.get('Overrides') or {})
    backbone.pop('init_cfg', None)
    backbone.pop('_delete_', None)
    cfg.model.backbone = backbone
    if stock.custom_imports:
        imports = list(cfg.custom_imports.imports) + list(stock.custom_imports)
        cfg.custom_imports = dict(imports=imports, allow_failed_imports=False)
    return cfg


def stock_key(entry: ZooEntry) -> str:
    """Names the stock model: entries comparing with the same inherited config share it."""
    return entry.stock.config if entry.stock.backbone is None else f'stock:{entry.file}'


def stock_description(entry: ZooEntry) -> str:
    backbone = entry.stock.backbone
    if backbone is None:
        return 'the inherited config'
    source, overrides = backbone.get('Config'), backbone.get('Overrides') or {}
    if source:
        what = f'the backbone of `{source}`'
        if overrides:
            what += ' with ' + ', '.join(f'{k}={v}' for k, v in overrides.items())
    else:
        what = ', '.join(f'{k}={v!r}' for k, v in overrides.items())
    return f'this config with the stock backbone ({what})'


def _installed_metafile_model(stock: str) -> Optional[dict]:
    """The installed package's metafile entry of a ``pkg::`` stock config, or None."""
    package, rel = stock.split('::')
    module = importlib.import_module(package)
    directory = osp.join(osp.dirname(module.__file__), '.mim', 'configs', osp.dirname(rel))
    # mmseg names its metafiles metafile.yaml, the others metafile.yml
    metafile = next((osp.join(directory, name) for name in ('metafile.yml', 'metafile.yaml')
                     if osp.isfile(osp.join(directory, name))), None)
    if metafile is None:
        return None
    with open(metafile, encoding='utf-8') as f:
        models = yaml.safe_load(f).get('Models', [])
    stem = osp.splitext(osp.basename(rel))[0]
    matches = [m for m in models if osp.basename(str(m.get('Config', ''))) == osp.basename(rel)]
    exact = [m for m in matches if m.get('Name') == stem]
    return (exact or matches or [None])[0]


def metrics(model: dict) -> Dict[str, Any]:
    """All metrics of a metafile model entry (mmdet lists box and mask AP as two results)."""
    results = model.get('Results') or []
    results = results if isinstance(results, list) else [results]
    out = {}
    for result in results:
        out.update(result.get('Metrics') or {})
    return out


def format_metrics(values: Dict[str, Any], stock_name: str = '', bare_top1: bool = False) -> str:
    """'51.8 box / 44.7 mask', '48.3 mIoU', '81.18 top-1' ('82.7' with ``bare_top1``),
    '+0.2 top-1 vs Swin-T' (a change against the stock model)."""
    if 'box AP' in values:  # detectors without a mask head (RTMDet) have box AP only
        return f"{values['box AP']} box" + (
            f" / {values['mask AP']} mask" if 'mask AP' in values else '')
    if 'mIoU' in values:  # mmseg: single-scale mIoU (the paper's setting)
        return f"{values['mIoU']} mIoU"
    if 'Top 1 Accuracy Change' in values:
        return f"{values['Top 1 Accuracy Change']:+.1f} top-1 vs {stock_name}"
    if 'Top 1 Accuracy' in values:
        return f"{values['Top 1 Accuracy']}" + ('' if bare_top1 else ' top-1')
    raise ConfigError(f'no metric the page knows in {sorted(values)}')


def stock_reference(entry: ZooEntry) -> Tuple[str, str, str]:
    """(accuracy, weights url, source) of the stock model."""
    if entry.stock.results is not None:
        return entry.stock.results
    model = _installed_metafile_model(entry.stock.config)
    if model is None:
        raise ConfigError(f'{entry.file}: no installed metafile entry for '
                          f'{entry.stock.config}; give Stock Results in its metafile')
    package = entry.stock.config.split('::')[0]
    return (format_metrics(metrics(model)), model.get('Weights', ''),
            f'{package} metafile ({model["Name"]})')


def paper_result(entry: ZooEntry) -> str:
    """The paper's accuracy of ``entry`` as the page shows it, '' where there is none."""
    if not entry.results:
        return ''
    sources = {r.get('Source', '') for r in entry.results}
    if len(sources) != 1:
        raise ConfigError(f'{entry.file}: its Results name different sources {sorted(sources)}')
    text = format_metrics(metrics(dict(Results=list(entry.results))), entry.stock.name,
                          bare_top1=True)
    return f'{text} ({sources.pop()})'
