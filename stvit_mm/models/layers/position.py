"""Position encodings: relative position bias for windows of any number of dims (Swin 2D,
Video Swin 3D) and the resizing of a grid of absolute position embeddings (ViT)."""
import math
from typing import Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor


def relative_position_index(window: Sequence[int]) -> Tensor:
    """(N, N) index into a table of prod(2w - 1) offsets, N = prod(window).

    Offsets are enumerated row-major over the dims (the layout of Swin and
    Video Swin checkpoints' ``relative_position_bias_table``).
    """
    coords = torch.stack(torch.meshgrid(*[torch.arange(w) for w in window], indexing='ij'))
    coords = coords.flatten(1)  # (nd, N)
    offsets = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0)  # (N, N, nd)
    index = torch.zeros(offsets.shape[:2], dtype=torch.long)
    for axis, w in enumerate(window):
        index = index * (2 * w - 1) + offsets[..., axis] + w - 1
    return index


def relative_position_table_size(window: Sequence[int]) -> int:
    return math.prod(2 * w - 1 for w in window)


def gather_position_bias(table: Tensor, index: Tensor) -> Tensor:
    """Table (prod(2w-1), heads) and index (N, N) -> (1, heads, N, N) additive logits.

    Contiguous: a bias merged with a mask inherits its layout, and SDPA on CPU copies a
    heads-last mask of every window into (windows, heads, N, N) order first (docs/speed.md).
    """
    N = index.shape[0]
    return table[index.reshape(-1)].reshape(N, N, -1).permute(2, 0, 1).unsqueeze(0).contiguous()


def resize_grid_embed(grid_embed: Tensor, src_grid: Tuple[int, int],
                      dst_grid: Tuple[int, int]) -> Tensor:
    """(1, h*w, C) -> (1, H*W, C), bicubic (as DeiT fine-tunes at other sizes)."""
    if tuple(src_grid) == tuple(dst_grid):
        return grid_embed
    C = grid_embed.shape[-1]
    maps = grid_embed.reshape(1, *src_grid, C).permute(0, 3, 1, 2)
    maps = F.interpolate(maps.float(), size=tuple(dst_grid), mode='bicubic',
                         align_corners=False).to(grid_embed.dtype)
    return maps.permute(0, 2, 3, 1).reshape(1, -1, C)
