"""Token layout helpers for any number of spatial dims (1D, 2D images, 3D video).

Tokens are (B, N, C) in raster order over a ``grid`` (e.g. (H, W) or (T, H, W)).
"""
import functools
import itertools
import math
from typing import NamedTuple, Optional, Sequence, Tuple

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
    if N != math.prod(grid):
        raise ValueError(f'pooling: {N} tokens do not fill grid {grid}')
    if keep is not None:
        x = x.masked_fill(~keep[..., None], float('-inf'))
    maps = x.transpose(1, 2).reshape(B, C, *grid)
    pooled = _ADAPTIVE_MAX_POOL[len(grid)](maps, out_size).flatten(2).transpose(1, 2)
    if keep is not None:
        pooled = torch.nan_to_num(pooled, neginf=0.0)
    return pooled


def pad_grid(x: Tensor, multiple: Sequence[int],
             keep: Optional[Tensor] = None) -> Tuple[Tensor, Optional[Tensor]]:
    """Pad (B, *grid, C) at the end of each spatial dim to a multiple of ``multiple``.

    Args:
        x: (B, *grid, C) tokens.
        multiple: per spatial dim.
        keep: optional (B or 1, *grid) bool, False on tokens that are already
            padding (e.g. batch padding of smaller images).

    Returns:
        The padded tensor and a (B or 1, *padded_grid) bool mask, False on
        padding (None when there is no padding at all).
    """
    grid = x.shape[1:-1]
    pads = [(-g) % m for g, m in zip(grid, multiple)]
    if not any(pads):
        return x, keep
    flat_pad = [0, 0]  # channels
    for p in reversed(pads):
        flat_pad += [0, p]
    padded = F.pad(x, flat_pad)
    batch = 1 if keep is None else keep.shape[0]
    padded_keep = torch.zeros((batch, *padded.shape[1:-1]), dtype=torch.bool, device=x.device)
    padded_keep[(slice(None), *(slice(0, g) for g in grid))] = True if keep is None else keep
    return padded, padded_keep


def tokens_to_map(tokens: Tensor, grid: Sequence[int]) -> Tensor:
    """Raster-ordered tokens (B, N, C) -> a contiguous (B, C, *grid) feature map.

    Contiguous on purpose: a transposed view has channels-last strides, and
    mmcv's CPU RoIAlign reads such a map as if it were NCHW, silently feeding
    scrambled features to the RoI heads (Mask R-CNN then barely learns).
    """
    B, _, C = tokens.shape
    return tokens.transpose(1, 2).reshape(B, C, *grid).contiguous()


def window_partition(x: Tensor, window: Sequence[int]) -> Tensor:
    """(B, *grid, C) -> (B * num_windows, prod(window), C); grid divisible by window."""
    B, *grid, C = x.shape
    nd = len(grid)
    shape = [B]
    for g, w in zip(grid, window):
        shape += [g // w, w]
    x = x.reshape(*shape, C)
    # (B, n0, w0, n1, w1, ..., C) -> (B, n0, n1, ..., w0, w1, ..., C)
    order = [0] + [1 + 2 * i for i in range(nd)] + [2 + 2 * i for i in range(nd)] + [1 + 2 * nd]
    return x.permute(*order).reshape(-1, math.prod(window), C)


def window_reverse(windows: Tensor, window: Sequence[int], grid: Sequence[int]) -> Tensor:
    """Inverse of :func:`window_partition`: (B * num_windows, prod(window), C) -> (B, *grid, C)."""
    nd = len(grid)
    counts = [g // w for g, w in zip(grid, window)]
    C = windows.shape[-1]
    x = windows.reshape(-1, *counts, *window, C)
    order = [0]
    for i in range(nd):
        order += [1 + i, 1 + nd + i]
    return x.permute(*order + [1 + 2 * nd]).reshape(-1, *grid, C)


def gather_groups(sources: Sequence[Tensor], rows: Sequence[Tensor]) -> Tensor:
    """Tokens of each group taken from several sources, in one copy.

    Args:
        sources: (B, N_i, D) tokens, e.g. a window's own semantic tokens and image tokens.
        rows: (G, K_i) indices into ``sources[i]`` for each of G groups.

    Returns:
        (B * G, sum K_i, D), image-major: group g takes its ``rows[0][g]`` then ``rows[1][g]``...
        Joining the (small) sources before one ``index_select`` copies less, and faster, than
        gathering each and joining the (large) results (docs/speed.md).
    """
    offsets = itertools.accumulate([0] + [s.shape[1] for s in sources[:-1]])
    index = torch.cat([r + o for r, o in zip(rows, offsets)], dim=1)
    source = sources[0] if len(sources) == 1 else torch.cat(list(sources), dim=1)
    return source.index_select(1, index.reshape(-1)).reshape(-1, index.shape[1],
                                                              source.shape[-1])


def shifted_window_regions(grid: Sequence[int], window: Sequence[int], shift: Sequence[int],
                           device=None) -> Tensor:
    """Region id per token after a cyclic shift, partitioned into windows.

    Tokens of one window may attend to each other only within the same
    region (Swin's SW-MSA); compare ids to get the mask.

    Returns:
        (num_windows, prod(window)) int ids.
    """
    ids = torch.zeros((1, *grid, 1), device=device)
    cuts = [((slice(0, -w), slice(-w, -s), slice(-s, None)) if s else (slice(None), ))
            for w, s in zip(window, shift)]
    count = 0
    for index in itertools.product(*cuts):
        ids[(slice(None), *index, slice(None))] = count
        count += 1
    return window_partition(ids, window)[..., 0]


class WindowLayout(NamedTuple):
    """Where the tokens of a grid go when it is padded to whole windows, shifted and split.

    Gathering with ``index`` does the padding, the cyclic shift and the window
    partition in one copy, and ``inverse`` undoes all three in another; the
    pad/roll/partition/reverse/roll/crop sequence costs six copies.

    Attributes:
        index: (windows * Nw,) raster index of the token in each window slot;
            padding slots point at token 0 (any real token: they are masked).
        inverse: (N,) window slot of every token.
        valid: (windows, Nw) bool, False on padding slots; None without padding.
        mask: (windows, Nw, Nw) bool, True where a query slot may attend a key
            slot (same shifted-window region, key not padding); None when
            every slot may attend every other.
        num_windows: number of windows.
    """
    index: Tensor
    inverse: Tensor
    valid: Optional[Tensor]
    mask: Optional[Tensor]
    num_windows: int


@functools.lru_cache(maxsize=64)
@torch.inference_mode(False)  # cached for every later call: must serve autograd too
def window_layout(grid: Tuple[int, ...], window: Tuple[int, ...], shift: Tuple[int, ...],
                  device: torch.device) -> WindowLayout:
    """The :class:`WindowLayout` of ``grid`` (cached: it depends on shapes only)."""
    num_tokens = math.prod(grid)
    positions = torch.arange(num_tokens, device=device).reshape(1, *grid, 1)
    padded, keep = pad_grid(positions, window)  # padding slots hold 0
    dims = tuple(range(1, len(grid) + 1))
    if any(shift):
        negative = tuple(-s for s in shift)
        padded = torch.roll(padded, negative, dims)
        keep = None if keep is None else torch.roll(keep, negative, dims)
    index = window_partition(padded, window)[..., 0]  # (nW, Nw)
    num_windows, slots = index.shape
    valid = None if keep is None else window_partition(keep[..., None], window)[..., 0]
    mask = None
    if any(shift):
        regions = shifted_window_regions(padded.shape[1:-1], window, shift, device=device)
        mask = regions[:, :, None] == regions[:, None, :]
    if valid is not None:
        mask = valid[:, None, :] if mask is None else mask & valid[:, None, :]
        mask = mask.expand(num_windows, slots, slots).contiguous()
    index = index.reshape(-1)
    inverse = torch.empty(num_tokens, dtype=torch.long, device=device)
    slot_ids = torch.arange(index.numel(), device=device)
    real = slice(None) if valid is None else valid.reshape(-1)
    inverse[index[real]] = slot_ids[real]
    return WindowLayout(index, inverse, valid, mask, num_windows)


class ZeroPaddedLayout(NamedTuple):
    """A :class:`WindowLayout` whose padding slots are zero tokens that take part in attention
    (mmdet's Swin and the STViT-R detection fork pad normalised tokens with zeros, unmasked).

    Attributes:
        index: (windows * Nw,) raster index per window slot; padding slots point at
            ``num_tokens``, the zero token callers append.
        inverse: (N,) window slot of every real token.
        mask: (windows, Nw, Nw) bool shifted-window region mask, None without shift.
        num_windows: number of windows.
    """
    index: Tensor
    inverse: Tensor
    mask: Optional[Tensor]
    num_windows: int


@functools.lru_cache(maxsize=64)
@torch.inference_mode(False)  # cached for every later call: must serve autograd too
def zero_padded_window_layout(grid: Tuple[int, ...], window: Tuple[int, ...],
                              shift: Tuple[int, ...], device: torch.device) -> ZeroPaddedLayout:
    """The :class:`ZeroPaddedLayout` of ``grid`` (cached: it depends on shapes only)."""
    layout = window_layout(grid, window, shift, device)
    index = layout.index
    if layout.valid is not None:
        index = torch.where(layout.valid.reshape(-1), index, math.prod(grid))
    mask = None
    if any(shift):
        padded = tuple(-(-g // w) * w for g, w in zip(grid, window))
        regions = shifted_window_regions(padded, window, shift, device=device)
        mask = regions[:, :, None] == regions[:, None, :]
    return ZeroPaddedLayout(index, layout.inverse, mask, layout.num_windows)
