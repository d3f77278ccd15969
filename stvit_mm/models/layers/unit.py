"""Windowed dumbbell unit (STViT-R Swin / Video Swin), for grids of any number of dims.

wide -> narrow -> wide: a window block on image tokens, a generator that pools
each window to a few semantic tokens, blocks on the semantic tokens only, and
a recovery block back to image tokens.
"""
import math
from typing import List, NamedTuple, Optional, Sequence, Tuple, Type, Union

import torch
from torch import Tensor, nn

from .blocks import Block
from .grouping import gather_groups, window_layout, window_reverse
from .recovery import RecoveryBlock
from .semantic import SemanticTokenGenerator, pooled_validity
from .window import WindowBlock

SEMANTIC_SCOPES = ('local', 'global')
# The window side the official STViT-R-Swin was designed for (7x7 windows, a 10x10
# neighbourhood around each); plans state their per-window sizes for it.
REFERENCE_WINDOW = 7
REFERENCE_NEIGHBOURHOOD = 10


def scale_to_window(size_at_reference: int, window: int) -> int:
    """A per-window size stated for a 7-token window side, for a ``window``-token side.

    The size keeps its share of the window: a pooled grid keeps the number of image
    tokens per semantic token (3x3 per 7x7 window, 5.4 each -> 5x5 per 12x12, 5.8 each),
    a neighbourhood its margin (10 around 7 -> 17 around 12). Exact at 7; rounded half
    up; at least 1.
    """
    return max(1, math.floor(size_at_reference * window / REFERENCE_WINDOW + 0.5))


def pool_size_for_window(pool_at_reference: int, window: int) -> int:
    """Semantic tokens per window side: :func:`scale_to_window`, at most the window."""
    return min(window, scale_to_window(pool_at_reference, window))


def neighbourhood_for_window(window: int) -> int:
    """Generator layer 1's neighbourhood side: the official 10 around 7, scaled, >= window."""
    return max(window, scale_to_window(REFERENCE_NEIGHBOURHOOD, window))


def neighbourhood_index(grid: Sequence[int], window: Sequence[int], size: Sequence[int],
                        inside: bool = False) -> Tuple[Tensor, Tensor]:
    """Token indices of a ``size`` neighbourhood around every window.

    Neighbourhoods are centred on their window (``(size - window) // 2`` tokens
    before it). Positions outside the grid are flagged invalid, so extra
    padding never changes which real tokens a window sees. With
    ``inside=True`` they are shifted inward at the border instead, as the
    official STViT-R does (at 14x14 with window 7 and size 10 this is its
    ``unfold(kernel 10, stride 4)``); that depends on the grid's extent.

    Returns:
        (windows, prod(size)) long indices into the raster-ordered tokens and
        a bool mask of the same shape, False on positions outside the grid.
    """
    axes_index, axes_valid = [], []
    for g, w, k in zip(grid, window, size):
        count = -(-g // w)
        starts = torch.arange(count) * w - (k - w) // 2
        if inside:
            starts = starts.clamp(min=0, max=max(g - k, 0))
        pos = starts[:, None] + torch.arange(k)[None, :]  # (count, k)
        axes_valid.append((pos >= 0) & (pos < g))
        axes_index.append(pos.clamp(min=0, max=g - 1))
    index = torch.zeros((1, 1), dtype=torch.long)
    valid = torch.ones((1, 1), dtype=torch.bool)
    for g, pos, ok in zip(grid, axes_index, axes_valid):
        # combine windows and positions of this axis with those of the previous axes
        index = (index[:, None, :, None] * g + pos[None, :, None, :]).flatten(2).flatten(0, 1)
        valid = (valid[:, None, :, None] & ok[None, :, None, :]).flatten(2).flatten(0, 1)
    return index, valid


class SemanticFootprint(NamedTuple):
    """Which image tokens and windows the semantic tokens of each window attend to.

    Semantic tokens are window-major: token ``t`` belongs to window ``t // S``
    (``S`` tokens per window), so per-window tables give every token's footprint.
    Indices are clamped into range; the ``*_valid`` masks are False where a
    neighbourhood reaches past the grid (those keys are masked in the forward).

    Attributes:
        window: the window used on this grid (see ``fit_window``).
        image_tokens: (nW, K) raster indices of the image tokens that generator
            layer 1 (and a local layer 2) attends to around each window.
        image_valid: (nW, K) bool.
        windows: (nW, M) indices of the surrounding windows whose semantic
            tokens a local layer 2 or local recovery attends to.
        windows_valid: (nW, M) bool.
    """
    window: Tuple[int, ...]
    image_tokens: Tensor
    image_valid: Tensor
    windows: Tensor
    windows_valid: Tensor


class UnitOutput(NamedTuple):
    """What a unit hands on: ``tokens`` on ``grid`` (the recovered image tokens on the input
    grid, or without recovery the real semantic tokens in raster order on their grid) and the
    ``semantic`` tokens (B, windows * S, C), window-major."""
    tokens: Tensor
    grid: Tuple[int, ...]
    semantic: Tensor


class WindowedDumbbellUnit(nn.Module):
    """One STViT-R unit on windows (official STViT-R-Swin stage-3 unit).

    1. ``window_block``: a (never shifted) window block on image tokens;
    2. ``generator``: each window max-pooled to ``pool_size`` tokens; layer 1
       attends from them to [the window's pooled tokens; a ``neighbourhood`` of
       image tokens around the window]; layer 2 attends from all semantic
       tokens to [semantic tokens; all image tokens];
    3. ``semantic_blocks``: blocks on semantic tokens, each ``'local'``
       (within a window's tokens) or ``'global'`` (all of an image's);
    4. ``recovery`` (optional): image tokens attend to the semantic tokens.

    Keys/values of image tokens are projected once and then gathered, so the
    cost stays linear in the number of image tokens per window.

    Args:
        dim, num_heads, mlp_ratio, qkv_bias, drop, norm_layer, act_layer:
            as in :class:`Block`.
        window: window per spatial dim, e.g. (7, 7) or (8, 7, 7).
        pool_size: semantic tokens per window and dim, e.g. (3, 3).
        neighbourhood: image-token neighbourhood of generator layer 1.
        semantic_layers: scope of each semantic block.
        recovery: restore image tokens at the end (STViT-R).
        drop_path: one rate per layer (``4 + len(semantic_layers)`` with recovery).
        layer_scale_init: layer scale of the new layers (1e-5).
        gen_shortcut, global_centres: see :class:`SemanticTokenGenerator`;
            the centres are shared by all windows (one per window position).
        neighbourhood_inside: shift border neighbourhoods inward (official
            STViT-R) instead of masking what lies outside (padding-invariant).
        layer2_scope: 'global' (official): generator layer 2 attends to all
            semantic and image tokens, a cost quadratic in the image size;
            'local': to the semantic tokens of the ``window_neighbours``^nd
            surrounding windows and the layer-1 neighbourhood of image tokens.
        recovery_scope: 'global' (official): image tokens attend to all
            semantic tokens; 'local': to those of the surrounding windows.
        window_neighbours: side of the window neighbourhood of local scopes.
        fit_window: in a dim where the grid is no larger than the window, the
            window (pooling bins, neighbourhoods, window block) shrinks to the
            grid (Video Swin's rule): semantic tokens then always summarise
            real tokens, e.g. a 4-frame clip is pooled to 2 bins of 2 frames
            instead of one real and one padding bin.
        window_padding: padding of the window block, see :class:`WindowBlock`.
    """

    def __init__(self, dim: int, num_heads: int, window: Sequence[int],
                 pool_size: Sequence[int], neighbourhood: Sequence[int],
                 semantic_layers: Sequence[str] = SEMANTIC_SCOPES, recovery: bool = True,
                 mlp_ratio: float = 4.0, qkv_bias: bool = True, drop: float = 0.0,
                 drop_path: Optional[Sequence[float]] = None,
                 layer_scale_init: Optional[float] = 1e-5, gen_shortcut: bool = True,
                 global_centres: bool = True, neighbourhood_inside: bool = False,
                 layer2_scope: str = 'global', recovery_scope: str = 'global',
                 window_neighbours: int = 3, fit_window: bool = False,
                 window_padding: str = 'masked',
                 norm_layer: Type[nn.Module] = nn.LayerNorm,
                 act_layer: Type[nn.Module] = nn.GELU) -> None:
        super().__init__()
        self.fit_window = fit_window
        self.neighbourhood_inside = neighbourhood_inside
        for name, scope in (('layer2_scope', layer2_scope), ('recovery_scope', recovery_scope)):
            if scope not in SEMANTIC_SCOPES:
                raise ValueError(f'unit: {name} must be one of {SEMANTIC_SCOPES}, got {scope!r}')
        if window_neighbours < 1 or window_neighbours % 2 == 0:
            raise ValueError(f'unit: window_neighbours must be odd and >= 1, got '
                             f'{window_neighbours}')
        self.layer2_scope, self.recovery_scope = layer2_scope, recovery_scope
        self.window_neighbours = window_neighbours
        self.window = tuple(int(w) for w in window)
        self.pool_size = tuple(int(p) for p in pool_size)
        self.neighbourhood = tuple(int(k) for k in neighbourhood)
        if not len(self.window) == len(self.pool_size) == len(self.neighbourhood):
            raise ValueError(f'unit: window {self.window}, pool_size {self.pool_size} and '
                             f'neighbourhood {self.neighbourhood} need the same number of dims')
        if any(p > w for p, w in zip(self.pool_size, self.window)):
            raise ValueError(f'unit: semantic grid {self.pool_size} per window is larger than '
                             f'the window {self.window}; use at most the window size')
        if any(k < w for k, w in zip(self.neighbourhood, self.window)):
            raise ValueError(f'unit: neighbourhood {self.neighbourhood} must cover the window '
                             f'{self.window}')
        unknown = [s for s in semantic_layers if s not in SEMANTIC_SCOPES]
        if unknown:
            raise ValueError(f'unit: unknown semantic layer scope(s) {unknown}; expected '
                             f'{SEMANTIC_SCOPES}')
        self.semantic_scopes = tuple(semantic_layers)
        depth = 3 + len(self.semantic_scopes) + int(recovery)
        dpr = list(drop_path) if drop_path is not None else [0.0] * depth
        if len(dpr) != depth:
            raise ValueError(f'unit: {len(dpr)} drop path rates for {depth} layers')
        common = dict(dim=dim, num_heads=num_heads, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias,
                      norm_layer=norm_layer, act_layer=act_layer)
        self.window_block = WindowBlock(window=self.window, drop=drop, drop_path=dpr[0],
                                        fit_window=fit_window, padding=window_padding,
                                        **common)
        self.generator = SemanticTokenGenerator(
            pool_size=self.pool_size, drop=drop, drop_path=dpr[1:3],
            layer_scale_init=layer_scale_init,
            shortcut=gen_shortcut, global_centres=global_centres, **common)
        self.semantic_blocks = nn.ModuleList([
            Block(drop=drop, drop_path=rate, layer_scale_init=layer_scale_init, **common)
            for rate in dpr[3:3 + len(self.semantic_scopes)]])
        self.recovery = (RecoveryBlock(drop=drop, drop_path=dpr[-1],
                                       layer_scale_init=layer_scale_init, **common)
                         if recovery else None)
        self._index_cache: dict = {}

    def window_for(self, grid: Sequence[int]) -> Tuple[int, ...]:
        """The window used on ``grid`` (see ``fit_window``)."""
        if not self.fit_window:
            return self.window
        return tuple(min(g, w) for g, w in zip(grid, self.window))

    def footprint(self, grid: Sequence[int],
                  device: Union[str, torch.device] = 'cpu') -> SemanticFootprint:
        """Where each window's semantic tokens attend on ``grid``, for tools that map
        attention weights back to the image (the semantic token visualiser).

        Args:
            grid: image-token grid, e.g. (h, w) or (t, h, w).
            device: where the returned tables live.

        Returns:
            The index tables the forward gathers keys with (copies, not the cache).
        """
        grid = tuple(int(g) for g in grid)
        window = self.window_for(grid)
        device = torch.device(device)
        index, valid = self._neighbourhood(grid, window, device)[:2]
        near, near_valid = self._window_neighbours(grid, window, device)[:2]
        return SemanticFootprint(window, index.clone(), valid.clone(), near.clone(),
                                 near_valid.clone())

    def _neighbourhood(self, grid: Tuple[int, ...], window: Tuple[int, ...],
                       device: torch.device) -> Tuple[Tensor, Tensor, bool]:
        """Image-token neighbourhood of every window: (nW, K) indices, validity, all valid."""
        key = ('tokens', grid, window, device)
        if key not in self._index_cache:
            # a shrunk window keeps the neighbourhood's margin around it
            size = tuple(k - w + f for k, w, f in zip(self.neighbourhood, self.window, window))
            with torch.inference_mode(False):  # cached: must serve autograd too
                index, valid = neighbourhood_index(grid, window, size, self.neighbourhood_inside)
                self._index_cache[key] = (index.to(device), valid.to(device),
                                          _all_inside(grid, window, size,
                                                      self.neighbourhood_inside))
        return self._index_cache[key]

    def _window_neighbours(self, grid: Tuple[int, ...], window: Tuple[int, ...],
                           device: torch.device) -> Tuple[Tensor, Tensor, bool, Tensor]:
        """Surrounding windows of every window: (nW, M) window indices, validity, all valid,
        and their semantic tokens as (nW, M * S) indices into the window-major tokens."""
        key = ('windows', grid, window, device)
        if key not in self._index_cache:
            windows = tuple(-(-g // w) for g, w in zip(grid, window))
            ones = (1, ) * len(grid)
            size = (self.window_neighbours, ) * len(grid)
            S = self.generator.num_tokens
            with torch.inference_mode(False):  # cached: must serve autograd too
                index, valid = neighbourhood_index(windows, ones, size)
                rows = (index[:, :, None] * S + torch.arange(S)).reshape(index.shape[0], -1)
                self._index_cache[key] = (index.to(device), valid.to(device),
                                          _all_inside(windows, ones, size, False),
                                          rows.to(device))
        return self._index_cache[key]

    def _semantic_neighbours(self, keep: Optional[Tensor], grid: Tuple[int, ...],
                             window: Tuple[int, ...], batch: int,
                             device: torch.device) -> Tuple[Tensor, Optional[Tensor]]:
        """Per window, the semantic tokens of its surrounding windows.

        keep: (B, nW * S) or None. Returns (nW, M * S) indices into the window-major semantic
        tokens and a (B * nW, M * S) validity mask, or None when all are valid.
        """
        S = self.generator.num_tokens
        index, valid, all_valid, rows = self._window_neighbours(grid, window, device)
        nW = index.shape[0]
        if keep is None and all_valid:
            return rows, None
        mask = valid[None, :, :, None].expand(batch, -1, -1, S)
        if keep is not None:
            mask = mask & keep.reshape(batch, nW, S)[:, index]
        return rows, mask.reshape(batch * nW, -1)

    def semantic_grid(self, grid: Sequence[int]) -> Tuple[int, ...]:
        """Spatial layout of the semantic tokens: windows x pool_size per dim."""
        return tuple(-(-g // w) * p for g, w, p in zip(grid, self.window_for(grid),
                                                        self.pool_size))

    def generate(self, x: Tensor, grid: Tuple[int, ...], keep: Optional[Tensor] = None,
                 window: Optional[Tuple[int, ...]] = None) -> Tuple[Tensor, Optional[Tensor]]:
        """Image tokens (B, N, C) on ``grid`` -> semantic tokens (B, windows * S, C) and their
        validity: :meth:`SemanticTokenGenerator.windowed` on this unit's neighbourhoods."""
        window = window or self.window_for(grid)
        neighbours = None
        if self.layer2_scope == 'local':
            def neighbours(semantic_keep: Optional[Tensor]):
                return self._semantic_neighbours(semantic_keep, grid, window, x.shape[0],
                                                 x.device)
        return self.generator.windowed(x, grid, window, self._neighbourhood(grid, window,
                                                                            x.device),
                                       keep, neighbours)

    def forward(self, x: Tensor, grid: Tuple[int, ...],
                keep: Optional[Tensor] = None) -> Tuple[Optional[Tensor], Tensor]:
        """Image tokens (B, N, C) in raster order over ``grid``.

        Args:
            keep: optional (B or 1, *grid) bool, False on tokens that are
                already padding; they never influence the other tokens.

        Returns:
            :class:`UnitOutput`: the tokens and grid handed on, and the semantic tokens.
        """
        B, _, C = x.shape
        S = self.generator.num_tokens
        window = self.window_for(grid)
        x = self.window_block(x, grid, keep)
        semantic, semantic_keep = self.generate(x, grid, keep, window)
        global_mask = local_mask = None
        if semantic_keep is not None:
            global_mask = semantic_keep[:, None, None, :]
            local_mask = semantic_keep.reshape(-1, 1, 1, S)
        for scope, blk in zip(self.semantic_scopes, self.semantic_blocks):
            if scope == 'local':
                semantic = blk(semantic.reshape(-1, S, C), mask=local_mask).reshape(B, -1, C)
            else:
                semantic = blk(semantic, mask=global_mask)
        if self.recovery is None:
            return UnitOutput(*self.hand_on(semantic, grid, window), semantic)
        if self.recovery_scope == 'global':
            return UnitOutput(self.recovery(x, semantic, mask=global_mask), grid, semantic)
        return UnitOutput(self.recover_locally(x, grid, semantic, semantic_keep, keep, window),
                          grid, semantic)

    def hand_on(self, semantic: Tensor, grid: Tuple[int, ...],
                window: Tuple[int, ...]) -> Tuple[Tensor, Tuple[int, ...]]:
        """Without recovery: the semantic tokens as a raster grid for the next stage, less the
        tokens pooled from padding only; returns (tokens (B, M, C), their grid)."""
        x = semantic_tokens_to_grid(semantic, grid, window, self.pool_size)
        full = self.semantic_grid(grid)
        real = real_semantic_grid(grid, window, self.pool_size)
        if real != full:
            x = x.reshape(x.shape[0], *full, x.shape[-1])[
                (slice(None), ) + tuple(slice(0, e) for e in real)]
            x = x.reshape(x.shape[0], -1, x.shape[-1])
        return x, real

    def recover_locally(self, x: Tensor, grid: Tuple[int, ...], semantic: Tensor,
                        semantic_keep: Optional[Tensor], keep: Optional[Tensor],
                        window: Tuple[int, ...]) -> Tensor:
        """Image tokens of each window attend to the semantic tokens of the surrounding windows."""
        B, N, C = x.shape
        rows, mask = self._semantic_neighbours(semantic_keep, grid, window, B, x.device)
        kv = gather_groups([self.recovery.project_kv(semantic)], [rows])
        layout = window_layout(tuple(grid), window, (0, ) * len(window), x.device)

        def to_windows(q: Tensor) -> Tensor:  # (B, N, C) -> (B*nW, Nw, C)
            return q.index_select(1, layout.index).reshape(B * layout.num_windows, -1, C)

        def from_windows(out: Tensor) -> Tensor:  # (B*nW, Nw, C) -> (B, N, C)
            return out.reshape(B, -1, C).index_select(1, layout.inverse)

        return self.recovery.forward_projected(
            x, kv, mask=None if mask is None else mask[:, None, None, :],
            regroup=(to_windows, from_windows))


def semantic_tokens_to_grid(semantic: Tensor, grid: Sequence[int], window: Sequence[int],
                            pool_size: Sequence[int]) -> Tensor:
    """Window-major semantic tokens (B, windows * S, C) -> raster order on their grid.

    Lets a stage without recovery hand its semantic tokens to patch merging
    and the next stage as an ordinary (smaller) feature map.
    """
    B, _, C = semantic.shape
    sem_grid = [-(-g // w) * p for g, w, p in zip(grid, window, pool_size)]
    return window_reverse(semantic.reshape(-1, math.prod(pool_size), C), pool_size,
                          sem_grid).reshape(B, -1, C)


def real_semantic_grid(grid: Sequence[int], window: Sequence[int],
                       pool_size: Sequence[int]) -> Tuple[int, ...]:
    """Leading extent of the semantic grid whose tokens pool at least one real token.

    Only the last window along a dim holds padding, and its adaptive bins start at
    ``floor(i * w / p)``: bins starting past its real rows pool padding only. So the real
    semantic tokens form the grid's leading block, which a unit without recovery hands on.
    """
    extent = []
    for g, w, p in zip(grid, window, pool_size):
        windows = -(-g // w)
        real_in_last = g - (windows - 1) * w
        extent.append((windows - 1) * p + sum(1 for i in range(p) if i * w // p < real_in_last))
    return tuple(extent)


def _all_inside(grid: Sequence[int], window: Sequence[int], size: Sequence[int],
                inside: bool) -> bool:
    """``bool(neighbourhood_index(grid, window, size, inside)[1].all())`` from the sizes alone.

    A Python bool, so forward passes branch on it without reading a tensor
    (``Tensor.item()`` is a graph break under torch.compile).
    """
    for g, w, k in zip(grid, window, size):
        starts = [i * w - (k - w) // 2 for i in range(-(-g // w))]
        if inside:
            starts = [min(max(s, 0), max(g - k, 0)) for s in starts]
        if min(starts) < 0 or max(starts) + k > g:
            return False
    return True


__all__: List[str] = ['UnitOutput', 'WindowedDumbbellUnit', 'neighbourhood_index',
                      'pooled_validity', 'semantic_tokens_to_grid', 'real_semantic_grid',
                      'SEMANTIC_SCOPES',
                      'scale_to_window', 'pool_size_for_window', 'neighbourhood_for_window',
                      'SemanticFootprint']
