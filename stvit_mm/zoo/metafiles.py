"""OpenMMLab metafiles of our configs: ``model-index.yml`` imports one ``metafile.yml`` per
config folder (mim layout, as mmengine's ``_get_cfg_metainfo`` reads it).

Each model entry holds what the code cannot compute: the display name, the stock config it
inherits and the stock model it is compared with, the paper's results with their source,
released weights and the conversion command; ``Metadata`` also records parameters and MACs
(written by :func:`stvit_mm.zoo.figures.write_figures`, checked against the code).
"""
import ast
import os
import os.path as osp
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import yaml

from ..config_scope import SCOPE
from ..utils import ConfigError

PACKAGE_DIR = osp.dirname(osp.dirname(osp.abspath(__file__)))
#: the package's mim folder: ``model-index.yml`` and ``configs/`` (symlinks in a checkout,
#: copies in a wheel), where mmengine looks for ``stvit_mm::`` configs
MIM_DIR = osp.join(PACKAGE_DIR, '.mim')
MODEL_INDEX = osp.join(MIM_DIR, 'model-index.yml')
SYNTHETIC_SUFFIX = '_synthetic.py'  # demo/test configs on generated data: not in the zoo
FIGURE_KEYS = ('Parameters', 'FLOPs', 'Backbone FLOPs')


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint a config can start from, and how to convert it."""
    description: str
    url: str = ''
    source: str = ''  # where the link was read
    convert: str = ''  # tools/convert_checkpoint.py command, '' when loading converts
    note: str = ''


@dataclass(frozen=True)
class Stock:
    """The stock model a config is compared with.

    ``config`` is the stock config the file inherits (checked). ``backbone`` None compares
    with it; otherwise ``{'Config': pkg::rel or None, 'Overrides': {...}}``: this config with
    that config's backbone (or none) updated with the overrides, where the inherited config
    has other heads than ours. ``results`` ``(accuracy, weights url, source)`` where the
    installed metafiles do not have the derived model.
    """
    name: str
    config: str
    backbone: Optional[Dict[str, Any]] = None
    custom_imports: Tuple[str, ...] = ()
    results: Optional[Tuple[str, str, str]] = None


@dataclass(frozen=True)
class ZooEntry:
    """One model of a metafile."""
    name: str  # config stem (mim convention)
    title: str  # model name on the page
    task: str  # config folder: classification, detection, segmentation, video
    config: str  # 'configs/<task>/<name>.py', relative to the repository (and .mim)
    collection: str
    stock: Stock
    results: Tuple[dict, ...]
    checkpoints: Tuple[Checkpoint, ...]
    figures: Dict[str, Any]  # Parameters, FLOPs, Backbone FLOPs, Input, Stock figures
    input_size: Optional[Tuple[int, int]] = None  # (H, W) where the task default does not suit

    @property
    def file(self) -> str:
        return osp.basename(self.config)

    @property
    def scope_path(self) -> str:
        """What a user's config writes: ``stvit_mm::<task>/<file>``."""
        return f'{SCOPE}::{self.task}/{self.file}'


@dataclass(frozen=True)
class Section:
    """One metafile: a page section."""
    task: str
    title: str
    notes: str
    path: str
    entries: Tuple[ZooEntry, ...]


def _load_yaml(path: str) -> Any:
    if not osp.isfile(path):
        raise ConfigError(f'missing metafile {path}')
    with open(path, encoding='utf-8') as f:
        return yaml.safe_load(f)


def _require(mapping: Any, key: str, where: str, kind: type = str) -> Any:
    value = mapping.get(key) if isinstance(mapping, dict) else None
    if not isinstance(value, kind):
        raise ConfigError(f'{where}: {key!r} missing or not a {kind.__name__}')
    return value


def _entry(model: dict, task: str, where: str) -> ZooEntry:
    name = _require(model, 'Name', where)
    where = f'{where}: {name}'
    config = _require(model, 'Config', where)
    if config != f'configs/{task}/{name}.py':
        raise ConfigError(f"{where}: Config {config!r} is not 'configs/{task}/{name}.py' "
                          '(mim layout: Name is the config stem)')
    meta = _require(model, 'Metadata', where, dict)
    stock = _require(meta, 'Stock', where, dict)
    stock_results = stock.get('Results')
    checkpoints = tuple(
        Checkpoint(_require(c, 'Description', f'{where}: Checkpoints'), c.get('URL') or '',
                   c.get('Source') or '', c.get('Convert') or '', c.get('Note') or '')
        for c in _require(model, 'Checkpoints', where, list))
    return ZooEntry(
        name=name, title=_require(meta, 'Title', where), task=task, config=config,
        collection=_require(model, 'In Collection', where),
        stock=Stock(_require(stock, 'Name', f'{where}: Stock'),
                    _require(stock, 'Config', f'{where}: Stock'), stock.get('Backbone'),
                    tuple(stock.get('Custom Imports') or ()),
                    None if stock_results is None else (
                        stock_results.get('Accuracy') or '', stock_results.get('Weights') or '',
                        _require(stock_results, 'Source', f'{where}: Stock Results'))),
        results=tuple(model.get('Results') or ()), checkpoints=checkpoints,
        figures={k: v for k, v in {**meta, 'Stock': stock}.items()
                 if k in FIGURE_KEYS + ('Input', 'Stock')},
        input_size=tuple(meta['Input Size']) if meta.get('Input Size') else None)


def load_sections(model_index: str = MODEL_INDEX) -> List[Section]:
    """Every metafile named by ``model_index``, checked against the schema, in import order."""
    index = _load_yaml(model_index)
    root = osp.dirname(model_index)
    sections, names = [], set()
    for rel in _require(index, 'Import', model_index, list):
        path = osp.join(root, rel)
        task = osp.basename(osp.dirname(rel))
        data = _load_yaml(path)
        collections = {c.get('Name') for c in _require(data, 'Collections', rel, list)}
        entries = tuple(_entry(m, task, rel) for m in _require(data, 'Models', rel, list))
        for entry in entries:
            if entry.collection not in collections:
                raise ConfigError(f'{rel}: {entry.name}: In Collection {entry.collection!r} '
                                  'is not in Collections')
            if entry.name in names:
                raise ConfigError(f'{rel}: model {entry.name} listed twice')
            names.add(entry.name)
        sections.append(Section(task, _require(data, 'Section', rel), data.get('Notes') or '',
                                path, entries))
    return sections


def load_zoo(model_index: str = MODEL_INDEX) -> Dict[str, ZooEntry]:
    """Config file name -> entry, in metafile order."""
    return {e.file: e for s in load_sections(model_index) for e in s.entries}


# --------------------------------------------------------------------------- configs on disk


def config_files(config_dir: str = osp.join(MIM_DIR, 'configs')) -> Dict[str, str]:
    """File name -> path of every config in the task folders of ``config_dir`` (the top-level
    files are one-line short paths to them, see ``short_path_configs``)."""
    return {f: osp.join(folder, f) for folder, _, files in os.walk(config_dir, followlinks=True)
            if folder != config_dir for f in files if f.endswith('.py')}


def short_path_configs(config_dir: str = osp.join(MIM_DIR, 'configs')) -> Dict[str, str]:
    """File name -> path of the top-level configs (``configs/<name>.py``, each inheriting
    ``configs/<task>/<name>.py``: the paths written before the task folders keep working)."""
    return {f: osp.join(config_dir, f) for f in sorted(os.listdir(config_dir))
            if f.endswith('.py')}


def zoo_configs(zoo: Dict[str, ZooEntry],
                config_dir: str = osp.join(MIM_DIR, 'configs')) -> List[str]:
    """Config file names the zoo covers, in metafile order; ConfigError where the metafiles
    and the configs on disk disagree (a config without entry, an entry without config)."""
    files = config_files(config_dir)
    on_disk = sorted(f for f in files if not f.endswith(SYNTHETIC_SUFFIX))
    missing = [f for f in on_disk if f not in zoo]
    stale = [f for f in zoo if f not in on_disk]
    misplaced = [f'{f} is in {osp.relpath(files[f], config_dir)}, its entry says '
                 f'{zoo[f].config}' for f in zoo if f in files
                 and osp.relpath(files[f], config_dir) != osp.relpath(zoo[f].config, 'configs')]
    if missing or stale or misplaced:
        raise ConfigError('the metafiles are out of date: ' + '; '.join(filter(None, [
            missing and f'no entry for {", ".join(missing)}',
            stale and f'no config for {", ".join(stale)}', '; '.join(misplaced)])))
    return list(zoo)


def inherited_stock(path: str) -> str:
    """The first ``pkg::`` config on the ``_base_`` chain of the config file ``path``
    (read, not executed)."""
    seen = []
    while True:
        seen.append(path)
        with open(path, encoding='utf-8') as f:
            tree = ast.parse(f.read(), path)
        bases = [node.value for node in tree.body if isinstance(node, ast.Assign)
                 and any(getattr(t, 'id', None) == '_base_' for t in node.targets)]
        if not bases:
            raise ConfigError(f'{osp.basename(seen[0])}: no _base_ on the way to a stock '
                              f'config ({seen})')
        value = ast.literal_eval(bases[-1])
        value = value if isinstance(value, str) else value[0]
        if '::' in value:
            return value
        path = osp.normpath(osp.join(osp.dirname(path), value))


def check_inheritance(zoo: Dict[str, ZooEntry], configs: Sequence[str],
                      config_dir: str = osp.join(MIM_DIR, 'configs')) -> None:
    """ConfigError where a config no longer inherits the stock config its entry names."""
    files = config_files(config_dir)
    wrong = [f'{c} inherits {inherited_stock(files[c])}, its entry says {zoo[c].stock.config}'
             for c in configs if inherited_stock(files[c]) != zoo[c].stock.config]
    if wrong:
        raise ConfigError('the metafiles are out of date: ' + '; '.join(wrong))


def config_path(entry: ZooEntry) -> str:
    """The config file of ``entry`` (through the package's ``.mim``)."""
    return osp.join(MIM_DIR, entry.config)


# --------------------------------------------------------------------------- writing


class _Dumper(yaml.SafeDumper):
    """Block style, no anchors: metafiles stay readable and diff line by line."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump_metafile(data: dict, path: str) -> None:
    with open(path, 'w', encoding='utf-8') as f:
        yaml.dump(data, f, Dumper=_Dumper, sort_keys=False, width=100, allow_unicode=True)
