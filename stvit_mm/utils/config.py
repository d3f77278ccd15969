"""Config loading, defined once for the tools, the analysis and the tests.

Accepts ``mmdet::``-style package paths as well as files, applies
``--cfg-options`` and checks the options of our model classes. Bad input
raises :class:`ConfigError`, which tools print in one line.
"""
import copy
import difflib
import importlib.util
import inspect
import os
from typing import Any, Iterator, Optional, Sequence, Tuple, Union

from mmengine.config import Config, DictAction  # noqa: F401  (DictAction re-exported for tools)

# mim-style scopes whose importable package has another name
_PACKAGES = {'mmaction2': 'mmaction', 'mmsegmentation': 'mmseg'}


class ConfigError(ValueError):
    """Bad user input (missing config, bad option, unsupported model, bad shape)."""


class ConfigNotFoundError(ConfigError, FileNotFoundError):
    """A config file, or the package of a ``pkg::rel`` path, that does not exist.

    Also a FileNotFoundError, so callers that catch that keep working.
    """


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
            raise ConfigNotFoundError(f'config {path!r}: package {package!r} is not installed '
                                    '(run `make install`)')
        resolved = os.path.join(os.path.dirname(spec.origin), '.mim', 'configs', rel)
    else:
        resolved = path
    if not os.path.isfile(resolved):
        raise ConfigNotFoundError(f'config file not found: {path}'
                                + (f' (looked at {resolved})' if resolved != path else ''))
    return resolved


def merge_options(cfg: Config, cfg_options: Optional[dict]) -> None:
    """Apply ``--cfg-options``; ConfigError naming the option when mmengine cannot merge it."""
    if not cfg_options:
        return
    try:
        cfg.merge_from_dict(cfg_options)
    except (TypeError, KeyError) as err:
        message = err.args[0] if err.args else err
        raise ConfigError(f'--cfg-options {" ".join(f"{k}={v}" for k, v in cfg_options.items())}: '
                         f'{message}') from None


def _our_model_classes() -> dict:
    import stvit_mm.models as models  # registers them
    return {name: getattr(models, name) for name in models.__all__}


def typed_dicts(node: Any, where: str) -> Iterator[Tuple[str, dict]]:
    """(path, dict) of every dict with a string ``type`` in ``node``, nested ones included.

    Paths read like the config: ``model.decode_head.norm_cfg``, ``model.heads[0]``.
    """
    if isinstance(node, dict):
        if isinstance(node.get('type'), str):
            yield where, node
        for key, value in node.items():
            yield from typed_dicts(value, f'{where}.{key}')
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            yield from typed_dicts(value, f'{where}[{i}]')


def check_model_options(cfg: Config) -> None:
    """ConfigError for an option our backbones/necks do not take (a config typo).

    Without it the typo surfaces as a TypeError deep inside the Runner, after
    the datasets are built; this names the key, the class and the closest option.
    """
    ours = _our_model_classes()
    for where, node in typed_dicts(cfg.get('model'), 'model'):
        cls = ours.get(node['type'].rsplit('.', 1)[-1])
        if cls is None:
            continue
        parameters = inspect.signature(cls.__init__).parameters
        stock = getattr(cls, 'stock_arguments', None)  # what a **stock adapter takes
        if stock is None and any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
            continue
        accepted = [name for name, p in parameters.items()
                    if name != 'self' and p.kind is not p.VAR_KEYWORD] + list(stock or ())
        for key in node:
            if key != 'type' and key not in accepted:
                close = difflib.get_close_matches(key, accepted, n=1)
                hint = (f"did you mean '{close[0]}'?" if close
                        else f'options: {", ".join(accepted)}')
                raise ConfigError(f"config: {where} ({cls.__name__}) has no option '{key}'; "
                                 f'{hint}')


def load_config(config: Union[str, Config], cfg_options: Optional[dict] = None) -> Config:
    """Load a model config, apply ``--cfg-options`` and check our models' options.

    Args:
        config: a file, a ``pkg::rel`` path (``mmdet::swin/x.py``) or an mmengine
            ``Config``, which is copied (the caller's stays as it is).
        cfg_options: overrides as from ``--cfg-options`` (``{'a.b': value}``).

    Raises:
        ConfigError: a missing file (:class:`ConfigNotFoundError`), options that
            cannot be merged or that our models do not take, or no ``model`` dict.
    """
    cfg = (copy.deepcopy(config) if isinstance(config, Config)
           else Config.fromfile(resolve_config_path(config)))
    apply_options(cfg, cfg_options)
    if not isinstance(cfg.get('model'), dict):
        raise ConfigError(f'config {cfg.filename} has no model dict')
    return cfg


def apply_options(cfg: Config, cfg_options: Optional[dict] = None) -> None:
    """Merge ``--cfg-options`` into a loaded config, then check its model options."""
    merge_options(cfg, cfg_options)
    check_model_options(cfg)


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


def add_custom_import(cfg: Config, module: str) -> None:
    """Name ``module`` in ``cfg.custom_imports`` (once), so that the config dumped into the
    work dir imports it where it is loaded again."""
    custom = cfg.setdefault('custom_imports', dict(imports=[], allow_failed_imports=False))
    imports = custom.get('imports') or []
    imports = [imports] if isinstance(imports, str) else list(imports)
    if module not in imports:
        custom['imports'] = imports + [module]
