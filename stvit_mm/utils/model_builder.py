"""Models built from configs for analysis (offline, seeded), and checkpoints loaded into them.

Defined once for the analysis tools (FLOPs, benchmark, semantic maps), the
checkpoint converter and the tests: pretrained weights named in a config are
dropped, so building never downloads; the numbers such models give do not
depend on weights.
"""
import os.path as osp
import sys
import warnings
from typing import Any, Callable, Union

import torch
from torch import nn

from .. import compat  # noqa: F401  (shims before any mm* import)
from .config import ConfigError

# Warnings that building (not training) a stock model prints: mmseg's loss builders.
_BUILD_NOISE = ('``build_loss`` would be deprecated', 'Default ``avg_non_ignore`` is False')

# The model kinds the analysis knows, and the class that identifies each.
MODEL_KINDS = (
    ('classifier', 'mmpretrain.models.classifiers', 'ImageClassifier'),
    ('detector', 'mmdet.models.detectors', 'BaseDetector'),
    ('segmentor', 'mmseg.models.segmentors', 'BaseSegmentor'),
    ('recognizer3d', 'mmaction.models.recognizers', 'Recognizer3D'),
)


def _without_pretrained_init(init_cfg: Any) -> Any:
    """``init_cfg`` minus ``Pretrained`` entries (a dict, a list of them, or None)."""
    def is_pretrained(item: Any) -> bool:
        return isinstance(item, dict) and item.get('type') == 'Pretrained'

    if isinstance(init_cfg, (list, tuple)):
        kept = [item for item in init_cfg if not is_pretrained(item)]
        return kept or None
    return None if is_pretrained(init_cfg) else init_cfg


def _drop_pretrained(node: Any) -> Any:
    """Copy of a model config with pretrained weights removed at every level.

    Some backbones download in ``__init__`` (``pretrained=True``/a URL), the
    rest in ``init_weights``, which we never call; clearing both keeps builds
    offline and fast.
    """
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == 'pretrained' and value:
                value = None if isinstance(value, str) else False
            elif key == 'init_cfg':
                value = _without_pretrained_init(value)
            out[key] = _drop_pretrained(value)
        return out
    if isinstance(node, (list, tuple)):
        return type(node)(_drop_pretrained(item) for item in node)
    return node


def build_model(cfg: Any, device: Union[str, torch.device] = 'cpu', seed: int = 0) -> nn.Module:
    """Build ``cfg.model`` in eval mode, honouring ``custom_imports`` and ``default_scope``.

    Weights are random (seeded, without touching the caller's RNG state);
    pretrained weights are never loaded.
    """
    from mmengine.config import ConfigDict
    from mmengine.registry import MODELS, init_default_scope
    from mmengine.utils import import_modules_from_strings

    if cfg.get('custom_imports'):
        import_modules_from_strings(**cfg.custom_imports)
    init_default_scope(cfg.get('default_scope', 'mmengine'))
    # ConfigDict: models read sub-configs as attributes (train_cfg.rpn).
    model_cfg = ConfigDict(_drop_pretrained(cfg.model.to_dict()))
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        # mmseg warns about its loss construction on every build; nothing here trains
        for message in _BUILD_NOISE:
            warnings.filterwarnings('ignore', message=message)
        torch.manual_seed(seed)
        model = MODELS.build(model_cfg)
    model.to(device)
    model.eval()  # not chained: mmdet's SwinTransformer.train() returns None
    return model


def model_kind(model: nn.Module) -> str:
    """'classifier', 'detector', 'segmentor' or 'recognizer3d'; :class:`ConfigError` otherwise."""
    for kind, module_name, class_name in MODEL_KINDS:
        # A model can only be an instance of a class that is already imported.
        module = sys.modules.get(module_name)
        if module is not None and isinstance(model, getattr(module, class_name)):
            return kind
    raise ConfigError(f'unsupported model type {type(model).__name__}: expected an mmpretrain '
                      'ImageClassifier, an mmdet detector, an mmseg segmentor or an mmaction '
                      'Recognizer3D')


def load_weights(model: nn.Module, checkpoint: str,
                 log: Callable[[str], None] = lambda message: None) -> None:
    """Load a checkpoint (file or URL, never running pickled code) into ``model``.

    A checkpoint with ``backbone.*`` keys (a detector or classifier file) is
    loaded into the model; one without into ``model.backbone``, whose load
    hooks convert foreign layouts (official Swin / STViT-R, DeiT, ...).
    Loading is not strict; :class:`ConfigError` when nothing matches.
    """
    from mmengine.runner.checkpoint import _load_checkpoint

    from ..checkpoints.checkpoint_check import CheckpointReadError
    from ..checkpoints.safe_loading import UnsafeCheckpointError, use_safe_checkpoint_loading
    use_safe_checkpoint_loading()
    if '://' not in checkpoint and not osp.isfile(checkpoint):
        raise ConfigError(f'checkpoint {checkpoint} does not exist')
    try:
        loaded = _load_checkpoint(checkpoint, map_location='cpu')
    except (UnsafeCheckpointError, CheckpointReadError) as error:  # they name the file
        raise ConfigError(str(error)) from None
    except Exception as error:  # noqa: BLE001  (any unreadable file is bad input)
        raise ConfigError(f'cannot read checkpoint {checkpoint}: {error}') from error
    state = loaded
    for key in ('state_dict', 'model'):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not state:
        raise ConfigError(f'checkpoint {checkpoint} holds no state dict')
    state = {k[len('module.'):] if k.startswith('module.') else k: v for k, v in state.items()}
    whole = any(k.startswith('backbone.') for k in state)
    target = model if whole else model.backbone
    total = len(target.state_dict())
    try:
        result = target.load_state_dict(state, strict=False)
    except (RuntimeError, ValueError, KeyError) as error:
        reason = ' '.join(str(error).split())[:300]
        raise ConfigError(f'checkpoint {checkpoint} does not fit the model: {reason}') from error
    matched = total - len(result.missing_keys)
    if matched == 0:
        raise ConfigError(f'checkpoint {checkpoint} matches none of the '
                          f'{"model" if whole else "backbone"} parameters')
    log(f'loaded {checkpoint} into the {"model" if whole else "backbone"}: {matched}/{total} '
        f'tensors, {len(result.missing_keys)} missing, {len(result.unexpected_keys)} unexpected')


__all__ = ['MODEL_KINDS', 'build_model', 'load_weights', 'model_kind']
