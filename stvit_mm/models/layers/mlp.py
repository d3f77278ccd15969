"""Feed-forward network of a transformer block."""
from typing import Type

from torch import Tensor, nn


class Mlp(nn.Module):
    """``fc1 -> act -> drop -> fc2 -> drop`` (names match timm/official STViT-R keys)."""

    def __init__(self, dim: int, hidden_dim: int, act_layer: Type[nn.Module] = nn.GELU,
                 drop: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = act_layer()
        self.fc2 = nn.Linear(hidden_dim, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x: Tensor) -> Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))
