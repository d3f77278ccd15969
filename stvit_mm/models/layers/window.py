"""(Shifted) window attention for grids of any number of dims, padding masked out."""
from typing import Dict, Optional, Sequence, Tuple, Type

import torch
from torch import Tensor, nn

from .attention import Attention
from .blocks import PreNormResidual
from .grouping import window_layout, zero_padded_window_layout
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
        self._sub_index: Dict[tuple, Tensor] = {}

    def _index_for(self, window: Tuple[int, ...]) -> Tensor:
        """Relative position index of a smaller ``window`` inside the full one (cached)."""
        full = self.relative_position_index
        if window == self.window:
            return full
        key = (window, full.device)
        if key not in self._sub_index:
            coords = torch.stack(torch.meshgrid(*[torch.arange(w) for w in window],
                                                indexing='ij')).flatten(1)
            rows = torch.zeros(coords.shape[1], dtype=torch.long)
            for axis, size in enumerate(self.window):  # raster index in the full window
                rows = rows * size + coords[axis]
            rows = rows.to(full.device)
            with torch.inference_mode(False):  # cached: must serve autograd too
                self._sub_index[key] = full[rows][:, rows]
        return self._sub_index[key]

    def position_bias(self, window: Optional[Tuple[int, ...]] = None) -> Tensor:
        """(1, heads, N, N) bias for the tokens of one window (or of a smaller sub-window)."""
        return gather_position_bias(self.relative_position_bias_table,
                                    self._index_for(window or self.window))

    def attend_qkv(self, qkv: Tensor, bias: Optional[Tensor] = None,
                   mask: Optional[Tensor] = None,
                   window: Optional[Tuple[int, ...]] = None) -> Tensor:
        """qkv: (B * windows, N, 3C); ``bias`` is added to the position bias."""
        position = self.position_bias(window)
        return super().attend_qkv(qkv, position if bias is None else position + bias, mask)


WINDOW_PADDINGS = ('masked', 'zeros')
# Window slots of padding, as a share of the tokens, up to which the tokens are gathered into
# windows before their qkv projection (WindowBlock._window_qkv).
TOKENS_FIRST_MAX_PADDING = 0.15


class WindowBlock(PreNormResidual):
    """Swin block: (shifted) window attention + MLP, each with its residual.

    Takes tokens in raster order over any grid; pads the grid to whole windows
    and crops back. ``padding='masked'`` (default) masks padded keys out of
    every window, so results on the real tokens do not depend on how much
    padding there is; ``'zeros'`` lets the zero padding take part in attention,
    as mmdet's Swin and the STViT-R detection fork do.

    Args:
        dim, num_heads, mlp_ratio, qkv_bias, drop, drop_path, layer_scale_init,
        norm_layer, act_layer: as in :class:`Block`.
        window: window size per spatial dim, e.g. (7, 7) or (8, 7, 7).
        shift: cyclic shift per dim (None or 0 for W-MSA, window // 2 for SW-MSA).
        fit_window: in a dim where the grid is no larger than the window, use
            one window of the grid's size, unshifted (official Swin,
            mmpretrain, Video Swin); off: pad and shift as mmdet's Swin does.
        padding: 'masked' or 'zeros', see above.
    """

    def __init__(self, dim: int, num_heads: int, window: Sequence[int],
                 shift: Optional[Sequence[int]] = None, mlp_ratio: float = 4.0,
                 qkv_bias: bool = True,
                 drop: float = 0.0, drop_path: float = 0.0,
                 layer_scale_init: Optional[float] = None, fit_window: bool = False,
                 padding: str = 'masked', norm_layer: Type[nn.Module] = nn.LayerNorm,
                 act_layer: Type[nn.Module] = nn.GELU) -> None:
        window = tuple(int(w) for w in window)
        super().__init__(dim, lambda: WindowAttention(dim, num_heads, window, qkv_bias=qkv_bias,
                                                      proj_drop=drop),
                         mlp_ratio, drop, drop_path, layer_scale_init, norm_layer, act_layer)
        if padding not in WINDOW_PADDINGS:
            raise ValueError(f'WindowBlock: padding must be one of {WINDOW_PADDINGS}, got '
                             f'{padding!r}')
        self.padding = padding
        self.window = window
        self.shift = tuple(int(s) for s in shift) if shift else (0, ) * len(self.window)
        if len(self.shift) != len(self.window) or any(
                not 0 <= s < w for s, w in zip(self.shift, self.window)):
            raise ValueError(f'WindowBlock: shift {self.shift} must be in [0, window) for '
                             f'window {self.window}')
        self.fit_window = fit_window

    def window_for(self, grid: Sequence[int]) -> Tuple[Tuple[int, ...], Tuple[int, ...]]:
        """(window, shift) used on ``grid`` (see ``fit_window``)."""
        if not self.fit_window:
            return self.window, self.shift
        return (tuple(min(g, w) for g, w in zip(grid, self.window)),
                tuple(s if g > w else 0 for s, g, w in zip(self.shift, grid, self.window)))

    def window_attention(self, x: Tensor, grid: Tuple[int, ...],
                         keep: Optional[Tensor] = None) -> Tensor:
        """Normalised tokens (B, N, C) on ``grid`` -> attention output (B, N, C)."""
        B, N, C = x.shape
        window, shift = self.window_for(grid)
        if self.padding == 'zeros':
            if keep is not None:
                raise ValueError("WindowBlock: padding='zeros' takes no keep mask (nothing is "
                                 'masked)')
            return self._zero_padded_attention(x, tuple(grid), window, shift)
        layout = window_layout(tuple(grid), window, shift, x.device)
        slots = layout.index.numel() // layout.num_windows
        qkv = self._window_qkv(x, layout.index, slots)
        mask = layout.mask  # (nW, Nw, Nw), shared by all images
        if keep is not None:
            keys = keep.reshape(keep.shape[0], N)[:, layout.index].reshape(-1, 1, slots)
            mask = keys if mask is None else mask.repeat(keep.shape[0], 1, 1) & keys
        out = self.attn.attend_qkv(qkv, mask=None if mask is None else mask[:, None],
                                   window=window)
        out = out.reshape(B, -1, C).index_select(1, layout.inverse)
        return self.attn.proj_drop(self.attn.proj(out))

    def _window_qkv(self, x: Tensor, index: Tensor, slots: int) -> Tensor:
        """qkv (B * windows, slots, 3C) of the tokens ``index`` puts in each window slot.

        One gather pads, shifts and partitions. Gathering the tokens before the projection
        copies a third of what gathering the 3C projections does but also projects the
        padding slots: cheaper while they are few (CPU measurements: docs/speed.md).
        Both orders give the same values.
        """
        N, C = x.shape[1:]
        if index.numel() <= (1 + TOKENS_FIRST_MAX_PADDING) * N:
            qkv = self.attn.qkv(x.index_select(1, index))
        else:
            qkv = self.attn.qkv(x).index_select(1, index)
        return qkv.reshape(-1, slots, 3 * C)

    def _zero_padded_attention(self, x: Tensor, grid: Tuple[int, ...],
                               window: Tuple[int, ...], shift: Tuple[int, ...]) -> Tensor:
        """Window attention in which padding slots hold zero tokens (their projection is the
        ``qkv`` bias) and are attended; only the shift regions are masked."""
        B, N, C = x.shape
        layout = zero_padded_window_layout(grid, window, shift, x.device)
        slots = layout.index.numel() // layout.num_windows
        padded = torch.cat([x, x.new_zeros(B, 1, C)], dim=1)  # token N: the zero padding
        qkv = self._window_qkv(padded, layout.index, slots)
        mask = None if layout.mask is None else layout.mask[:, None]
        out = self.attn.attend_qkv(qkv, mask=mask, window=window)
        out = out.reshape(B, -1, C).index_select(1, layout.inverse)
        return self.attn.proj_drop(self.attn.proj(out))

    def forward(self, x: Tensor, grid: Tuple[int, ...],
                keep: Optional[Tensor] = None) -> Tensor:
        """x: (B, N, C) in raster order over ``grid`` -> (B, N, C).

        ``keep``: optional (B or 1, *grid) bool, False on tokens that are
        padding already; they are masked out of every window like the block's
        own padding.
        """
        return self.residuals(x, self.window_attention(self.norm1(x), grid, keep))
