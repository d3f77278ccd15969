"""Token layout helpers for any number of spatial dims (1D, 2D images, 3D video).

Tokens are (B, N, C) in raster order over a ``grid`` (e.g. (H, W) or (T, H, W)).
"""
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

_ADAPTIVE_MAX_POOL = {1: F.adaptive_max_pool1d, 2: F.adaptive_max_pool2d,
                      3: F.adaptive_max_pool3d}


def adaptive_max_pool_tokens(x: Tensor, grid: Sequence[int], out_size: Sequence[int],
                             keep: Optional[Tensor] = None) -> Tensor:
    """Max-pool tokens on their grid to ``out_size`` bins (STViT's query init).

    Bins overlap when the grid is not a multiple of ``out_size`` (adaptive
    pooling), and repeat tokens when the grid is smaller than ``out_size``.

    Args:
        x: (B, N, C) tokens, N = prod(grid).
        grid: spatial shape of the tokens.
        out_size: bins per spatial dim; ``len(out_size) == len(grid)``.
        keep: optional (B, N) bool, False on padding; padding never wins a
            max, and a bin of pure padding yields zeros.

    Returns:
        (B, prod(out_size), C).
    """
    B, N, C = x.shape
    grid, out_size = tuple(grid), tuple(out_size)
    if len(grid) != len(out_size) or len(grid) not in _ADAPTIVE_MAX_POOL:
        raise ValueError(f'pooling: grid {grid} and out_size {out_size} must both have 1, 2 '
                         'or 3 dims')
    if N != _prod(grid):
        raise ValueError(f'pooling: {N} tokens do not fill grid {grid}')
    if keep is not None:
        x = x.masked_fill(~keep[..., None], float('-inf'))
    maps = x.transpose(1, 2).reshape(B, C, *grid)
    pooled = _ADAPTIVE_MAX_POOL[len(grid)](maps, out_size).flatten(2).transpose(1, 2)
    if keep is not None:
        pooled = torch.nan_to_num(pooled, neginf=0.0)
    return pooled


def _prod(values: Sequence[int]) -> int:
    out = 1
    for v in values:
        out *= int(v)
    return out
