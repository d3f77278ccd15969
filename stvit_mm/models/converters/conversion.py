"""What a converter did with every key: the result type shared by the converters."""
from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

from torch import Tensor


class PlanMismatchError(ValueError):
    """A checkpoint of another sparsification plan (see ``Conversion.plan_mismatch``)."""


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
