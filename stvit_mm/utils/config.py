"""Config loading that also accepts ``mmdet::``-style package paths."""
import importlib.util
import os
from typing import Optional, Sequence

from mmengine.config import Config, DictAction  # noqa: F401  (DictAction re-exported for tools)

# mim-style scopes whose importable package has another name
_PACKAGES = {'mmaction2': 'mmaction', 'mmsegmentation': 'mmseg'}


def resolve_config_path(path: str) -> str:
    """Map ``'mmdet::swin/x.py'`` to the installed file; check that the file exists.

    ``Config.fromfile`` resolves such paths inside ``_base_`` but not as its
    own argument, which users expect to work on the command line too.
    """
    if '::' in path:
        scope, rel = path.split('::', 1)
        package = _PACKAGES.get(scope, scope)
        spec = importlib.util.find_spec(package) if package.isidentifier() else None
        if spec is None or spec.origin is None:
            raise FileNotFoundError(f'config {path!r}: package {package!r} is not installed '
                                    '(run `make install`)')
        resolved = os.path.join(os.path.dirname(spec.origin), '.mim', 'configs', rel)
    else:
        resolved = path
    if not os.path.isfile(resolved):
        raise FileNotFoundError(f'config file not found: {path}'
                                + (f' (looked at {resolved})' if resolved != path else ''))
    return resolved


def load_config(path: str, cfg_options: Optional[dict] = None) -> Config:
    """Load a config file (plain or ``pkg::rel`` path) and apply ``--cfg-options``."""
    cfg = Config.fromfile(resolve_config_path(path))
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def missing_data_paths(cfg: Config, splits: Sequence[str] = ('train', 'val', 'test')) -> list:
    """Dataset roots/folders named in the config's dataloaders that do not exist."""
    missing = []
    for split in splits:
        loader = cfg.get(f'{split}_dataloader')
        if not loader:
            continue
        dataset = loader.get('dataset', {})
        while 'dataset' in dataset:  # wrappers such as RepeatDataset
            dataset = dataset['dataset']
        root = dataset.get('data_root')
        if root and not os.path.exists(root):
            missing.append(f'{split}: data_root {root}')
    return missing


def check_data_paths(cfg: Config, splits: Sequence[str]) -> None:
    """Raise FileNotFoundError naming every missing dataset path of these splits."""
    missing = missing_data_paths(cfg, splits)
    if missing:
        raise FileNotFoundError(f'dataset path does not exist ({"; ".join(missing)}); set it '
                                'with --cfg-options or in the config')
