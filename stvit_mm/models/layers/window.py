"""(Shifted) window attention for grids of any number of dims, padding masked out."""
from typing import Optional, Sequence, Tuple, Type

import torch
from torch import Tensor, nn

from .attention import Attention
from .grouping import pad_grid, shifted_window_regions, window_partition, window_reverse
from .layer_scale import DropPath, layer_scale_or_identity
from .mlp import Mlp
from .position import gather_position_bias, relative_position_index, relative_position_table_size


class WindowAttention(Attention):
    """Self-attention inside windows with a learned relative position bias.

    Parameter names (``qkv``, ``proj``, ``relative_position_bias_table``)
    follow the Swin / Video Swin checkpoints.
    """

    def __init__(self, dim: int, num_heads: int, window: Sequence[int], qkv_bias: bool = True,
                 proj_drop: float = 0.0) -> None:
        super().__init__(dim, num_heads, qkv_bias=qkv_bias, proj_drop=proj_drop)
        self.window = tuple(int(w) for w in window)
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros(relative_position_table_size(self.window), num_heads))
        self.register_buffer('relative_position_index', relative_position_index(self.window),
                             persistent=False)
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def position_bias(self) -> Tensor:
        """(1, heads, N, N) bias for the tokens of one window."""
        return gather_position_bias(self.relative_position_bias_table,
                                    self.relative_position_index)

    def attend_qkv(self, qkv: Tensor, bias: Optional[Tensor] = None,
                   mask: Optional[Tensor] = None) -> Tensor:
        """qkv: (B * windows, N, 3C); ``bias`` is added to the position bias."""
        position = self.position_bias()
        return super().attend_qkv(qkv, position if bias is None else position + bias, mask)


def window_keep_mask(grid: Sequence[int], window: Sequence[int], shift: Sequence[int],
                     keep: Optional[Tensor], batch: int,
                     device: Optional[torch.device] = None) -> Optional[Tensor]:
    """Boolean mask, broadcastable to (batch * windows, heads, N, N), for a padded, shifted grid.

    Combines Swin's shifted-window regions (tokens attend within their region)
    with padding (no token attends to a padded key).

    Args:
        grid: padded grid (whole windows).
        keep: (batch or 1, *grid) bool, False on padding, already shifted.

    Returns:
        The mask, or None when neither shift nor padding applies.
    """
    mask = None
    if any(shift):
        regions = shifted_window_regions(grid, window, shift, device=device)
        mask = regions[:, :, None] == regions[:, None, :]  # (nW, N, N)
    repeats = batch
    if keep is not None:
        keys = window_partition(keep[..., None], window)[..., 0][:, None, :]  # (Bk*nW, 1, N)
        mask = keys if mask is None else mask.repeat(keep.shape[0], 1, 1) & keys
        repeats = batch // keep.shape[0]
    return None if mask is None else mask.repeat(repeats, 1, 1)[:, None]


class WindowBlock(nn.Module):
    """Swin block: (shifted) window attention + MLP, each with its residual.

    Takes tokens in raster order over any grid; pads the grid to whole windows,
    masks padded keys out of every window, and crops back, so results on the
    real tokens do not depend on how much padding there is.

    Args:
        dim, num_heads, mlp_ratio, qkv_bias, drop, drop_path, layer_scale_init,
        norm_layer, act_layer: as in :class:`Block`.
        window: window size per spatial dim, e.g. (7, 7) or (8, 7, 7).
        shift: cyclic shift per dim (None or 0 for W-MSA, window // 2 for SW-MSA).
    """

    def __init__(self, dim: int, num_heads: int, window: Sequence[int],
                 shift: Optional[Sequence[int]] = None, mlp_ratio: float = 4.0, qkv_bias: bool = True,
                 drop: float = 0.0, drop_path: float = 0.0,
                 layer_scale_init: Optional[float] = None,
                 norm_layer: Type[nn.Module] = nn.LayerNorm,
                 act_layer: Type[nn.Module] = nn.GELU) -> None:
        super().__init__()
        self.window = tuple(int(w) for w in window)
        self.shift = tuple(int(s) for s in shift) if shift else (0, ) * len(self.window)
        if len(self.shift) != len(self.window) or any(
                not 0 <= s < w for s, w in zip(self.shift, self.window)):
            raise ValueError(f'WindowBlock: shift {self.shift} must be in [0, window) for '
                             f'window {self.window}')
        self.norm1 = norm_layer(dim)
        self.attn = WindowAttention(dim, num_heads, self.window, qkv_bias=qkv_bias,
                                    proj_drop=drop)
        self.ls1 = layer_scale_or_identity(dim, layer_scale_init)
        self.drop_path1 = DropPath(drop_path)
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=act_layer, drop=drop)
        self.ls2 = layer_scale_or_identity(dim, layer_scale_init)
        self.drop_path2 = DropPath(drop_path)

    def window_attention(self, x: Tensor, grid: Tuple[int, ...],
                         keep: Optional[Tensor] = None) -> Tensor:
        """Normalised tokens (B, N, C) on ``grid`` -> attention output (B, N, C)."""
        B, N, C = x.shape
        # Project real tokens only, then pad the projections (padding is masked anyway).
        qkv, keep = pad_grid(self.attn.qkv(x).reshape(B, *grid, 3 * C), self.window, keep)
        padded = tuple(qkv.shape[1:-1])
        dims = tuple(range(1, len(grid) + 1))
        if any(self.shift):
            negative = tuple(-s for s in self.shift)
            qkv = torch.roll(qkv, negative, dims)
            keep = None if keep is None else torch.roll(keep, negative, dims)
        mask = window_keep_mask(padded, self.window, self.shift, keep, B, x.device)
        out = self.attn.attend_qkv(window_partition(qkv, self.window), mask=mask)
        out = window_reverse(out, self.window, padded)
        if any(self.shift):
            out = torch.roll(out, self.shift, dims)
        crop = (slice(None), *(slice(0, g) for g in grid))
        return self.attn.proj_drop(self.attn.proj(out[crop].reshape(B, N, C)))

    def forward(self, x: Tensor, grid: Tuple[int, ...],
                keep: Optional[Tensor] = None) -> Tensor:
        """x: (B, N, C) in raster order over ``grid`` -> (B, N, C).

        ``keep``: optional (B or 1, *grid) bool, False on tokens that are
        padding already; they are masked out of every window like the block's
        own padding.
        """
        x = x + self.drop_path1(self.ls1(self.window_attention(self.norm1(x), grid, keep)))
        return x + self.drop_path2(self.ls2(self.mlp(self.norm2(x))))
