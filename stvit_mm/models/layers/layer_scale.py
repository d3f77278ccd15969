"""Per-channel residual scaling (CaiT); STViT's new blocks start at 1e-5."""
from typing import Optional

import torch
from torch import Tensor, nn


class LayerScale(nn.Module):
    """Multiply the last dim by a learnable ``gamma`` initialised to ``init_value``."""

    def __init__(self, dim: int, init_value: float = 1e-5) -> None:
        super().__init__()
        self.init_value = init_value
        self.gamma = nn.Parameter(torch.full((dim, ), float(init_value)))

    def reset_parameters(self) -> None:
        nn.init.constant_(self.gamma, self.init_value)

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gamma


def layer_scale_or_identity(dim: int, init_value: Optional[float]) -> nn.Module:
    """``LayerScale`` when ``init_value`` is set, else a no-op (stock blocks)."""
    return nn.Identity() if init_value is None else LayerScale(dim, init_value)


class DropPath(nn.Module):
    """Stochastic depth: drop a sample's whole residual branch with probability ``p``."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        shape = (x.shape[0], ) + (1, ) * (x.ndim - 1)
        return x * x.new_empty(shape).bernoulli_(keep).div_(keep)

    def extra_repr(self) -> str:
        return f'p={self.p}'
