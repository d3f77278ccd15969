"""What a converter did with every key (the result type shared by the converters), and the
release-file unwrapping every loading path shares."""
from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

from torch import Tensor

from .report import compact_keys

# mmengine checkpoints hold the weights under 'state_dict', official DeiT / Swin / STViT-R
# release files under 'model'.
WRAPPERS = ('state_dict', 'model')


class ConversionError(ValueError):
    """A checkpoint that cannot be converted as asked; the message says what to change."""


@dataclass
class Conversion:
    """One backbone state dict converted to our names, with the fate of every source key.

    Attributes:
        tensors: our key -> tensor.
        sources: our key -> the source key(s) it was made from (two when ``q``
            and ``kv`` are joined into ``qkv``).
        dropped: source key -> why it is left out by design (recomputed
            buffers, classifier heads, tokens our model has no use for).
        unmapped: source key -> why it has no place in the target model; a
            trained tensor would be lost, so tools treat these as errors.
        plan_mismatch: the first way the source's structure (blocks per stage,
            which of them are STViT-R layers, pool size) differs from the
            target's, or None; tensors placed by index would then land in layers
            of another role, so every loading path refuses such a checkpoint.
    """
    tensors: Dict[str, Tensor] = field(default_factory=dict)
    sources: Dict[str, Tuple[str, ...]] = field(default_factory=dict)
    dropped: Dict[str, str] = field(default_factory=dict)
    unmapped: Dict[str, str] = field(default_factory=dict)
    plan_mismatch: Optional[str] = None

    def put(self, key: str, value: Tensor, *source_keys: str) -> None:
        self.tensors[key] = value
        self.sources[key] = tuple(source_keys)

    def drop(self, source_key: str, why: str) -> None:
        self.dropped[source_key] = why

    def reject(self, source_key: str, why: str) -> None:
        self.unmapped[source_key] = why

    @property
    def not_loaded(self) -> Dict[str, str]:
        """Every source key that was not converted, and why (what load hooks report)."""
        return {**self.dropped, **self.unmapped}


def unwrap_checkpoint(obj: object, name: str = 'checkpoint') -> Dict[str, Tensor]:
    """The tensors of ``{'state_dict': ...}`` (mmengine), ``{'model': ...}`` (official) or a bare
    state dict, without DistributedDataParallel's ``module.`` prefix.

    Raises:
        ConversionError: ``obj`` holds no state dict, or values that are not tensors.
    """
    for wrapper in WRAPPERS:
        if isinstance(obj, dict) and isinstance(obj.get(wrapper), dict):
            obj = obj[wrapper]
            break
    if not isinstance(obj, dict) or not obj:
        raise ConversionError(f'{name} holds no state dict (expected a dict of tensors, or one '
                              "under 'state_dict' or 'model')")
    not_tensors = [k for k, v in obj.items() if not isinstance(v, Tensor)]
    if not_tensors:
        raise ConversionError(f'{name} is not a state dict: {compact_keys(not_tensors)} are not '
                              'tensors')
    if all(k.startswith('module.') for k in obj):
        return {k[len('module.'):]: v for k, v in obj.items()}
    return dict(obj)


def unwrap_release_file(state_dict: dict, prefix: str) -> None:
    """In a load pre-hook: unwrap a release file's ``{prefix}model`` dict in place.

    mmengine's loader unwraps ``'state_dict'`` only, so an official DeiT / Swin
    file reaches the hooks as ``{'model': {...}}``; unwrapped here, it loads
    through ``init_cfg=dict(type='Pretrained')`` too. (:func:`unwrap_checkpoint`
    is the same for a whole file read by a tool.)
    """
    for wrapper in WRAPPERS:
        wrapped = state_dict.get(prefix + wrapper)
        if isinstance(wrapped, dict):
            del state_dict[prefix + wrapper]
            state_dict.update({prefix + k: v for k, v in wrapped.items()})
            return
