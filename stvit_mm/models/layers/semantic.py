"""Semantic token generation module (STGM), paper Sec. 3.2."""
from typing import Optional, Sequence, Type

import torch
from torch import Tensor, nn

from .blocks import CrossBlock
from .grouping import adaptive_max_pool_tokens


class SemanticTokenGenerator(nn.Module):
    """Summarise image tokens into a few semantic tokens with two attention layers.

    1. Queries: image tokens max-pooled to ``pool_size`` bins (spatial-pooling
       initialisation). ``layer1`` attends from them to the image tokens;
       its attention residual is optional (``shortcut``).
    2. ``centres`` (G, learnable global cluster centres, one per semantic
       token) are added; ``layer2`` attends from the semantic tokens to
       ``[semantic tokens; image tokens]``.

    Args:
        dim: token channels.
        num_heads: attention heads of both layers.
        pool_size: bins per spatial dim, e.g. (4, 4) -> 16 semantic tokens.
        mlp_ratio, qkv_bias, drop, norm_layer, act_layer: as in :class:`CrossBlock`.
        drop_path: stochastic depth of (layer1, layer2).
        layer_scale_init: layer scale of both layers (new layers: 1e-5).
        shortcut: attention residual in ``layer1`` (paper: on; the official
            STViT-R-Swin checkpoints: off).
        global_centres: learn the centres G (paper: on; official Swin: off).
    """

    def __init__(self, dim: int, num_heads: int, pool_size: Sequence[int],
                 mlp_ratio: float = 4.0, qkv_bias: bool = True, drop: float = 0.0,
                 drop_path: Sequence[float] = (0.0, 0.0),
                 layer_scale_init: Optional[float] = 1e-5, shortcut: bool = True,
                 global_centres: bool = True, norm_layer: Type[nn.Module] = nn.LayerNorm,
                 act_layer: Type[nn.Module] = nn.GELU) -> None:
        super().__init__()
        self.pool_size = tuple(int(s) for s in pool_size)
        if min(self.pool_size) < 1:
            raise ValueError(f'SemanticTokenGenerator: pool_size {self.pool_size} must be >= 1')
        self.num_tokens = 1
        for s in self.pool_size:
            self.num_tokens *= s
        common = dict(dim=dim, num_heads=num_heads, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias,
                      drop=drop, layer_scale_init=layer_scale_init, norm_layer=norm_layer,
                      act_layer=act_layer)
        self.layer1 = CrossBlock(drop_path=drop_path[0], shortcut=shortcut, **common)
        self.layer2 = CrossBlock(drop_path=drop_path[1], shortcut=True, **common)
        self.centres = (nn.Parameter(torch.zeros(1, self.num_tokens, dim))
                        if global_centres else None)
        # The pooled grid travels with the weights: no tensor shape depends on it (without
        # centres), so this record is what lets a checkpoint of another pool size be refused.
        self.register_buffer('pooled_grid', torch.tensor(self.pool_size), persistent=True)
        self.reset_centres()

    def reset_centres(self) -> None:
        if self.centres is not None:
            nn.init.trunc_normal_(self.centres, std=0.02)

    def initial_tokens(self, x: Tensor, grid: Sequence[int],
                       keep: Optional[Tensor] = None) -> Tensor:
        """(B, N, C) image tokens on ``grid`` -> (B, S, C) pooled queries."""
        return adaptive_max_pool_tokens(x, grid, self.pool_size, keep)

    def add_centres(self, semantic: Tensor) -> Tensor:
        """(B, G*S, C): add G to each group's S tokens (groups share the centres)."""
        if self.centres is None:
            return semantic
        B, N, C = semantic.shape
        return (semantic.reshape(B, -1, self.num_tokens, C) + self.centres[:, None]).reshape(
            B, N, C)

    def forward(self, x: Tensor, grid: Sequence[int],
                keep: Optional[Tensor] = None) -> Tensor:
        """Global generation (plain ViT: one group per image).

        Args:
            x: (B, N, C) image tokens on ``grid``.
            grid: spatial shape, prod(grid) == N.
            keep: optional (B, N) bool, False on padded tokens.

        Returns:
            (B, S, C) semantic tokens, S = prod(pool_size).
        """
        key_mask = None if keep is None else keep[:, None, None, :]  # (B, 1, 1, N)
        semantic = self.layer1(self.initial_tokens(x, grid, keep), x, mask=key_mask)
        if keep is not None:
            own = keep.new_ones(keep.shape[0], semantic.shape[1])
            key_mask = torch.cat([own, keep], dim=1)[:, None, None, :]
        # The centres join the queries (and so the residual), not the keys (official code).
        return self.layer2(self.add_centres(semantic), torch.cat([semantic, x], dim=1),
                           mask=key_mask)
