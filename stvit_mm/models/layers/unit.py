"""Windowed dumbbell unit (STViT-R Swin / Video Swin), for grids of any number of dims.

wide -> narrow -> wide: a window block on image tokens, a generator that pools
each window to a few semantic tokens, blocks on the semantic tokens only, and
a recovery block back to image tokens.
"""
from typing import List, Optional, Sequence, Tuple, Type

import torch
from torch import Tensor, nn

from .blocks import Block
from .grouping import adaptive_max_pool_tokens, pad_grid, window_partition
from .recovery import RecoveryBlock
from .semantic import SemanticTokenGenerator
from .window import WindowBlock

SEMANTIC_SCOPES = ('local', 'global')


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
    """

    def __init__(self, dim: int, num_heads: int, window: Sequence[int],
                 pool_size: Sequence[int], neighbourhood: Sequence[int],
                 semantic_layers: Sequence[str] = SEMANTIC_SCOPES, recovery: bool = True,
                 mlp_ratio: float = 4.0, qkv_bias: bool = True, drop: float = 0.0,
                 drop_path: Optional[Sequence[float]] = None,
                 layer_scale_init: Optional[float] = 1e-5, gen_shortcut: bool = True,
                 global_centres: bool = True, neighbourhood_inside: bool = False,
                 norm_layer: Type[nn.Module] = nn.LayerNorm,
                 act_layer: Type[nn.Module] = nn.GELU) -> None:
        super().__init__()
        self.neighbourhood_inside = neighbourhood_inside
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
                                        **common)
        self.generator = SemanticTokenGenerator(
            pool_size=self.pool_size, drop_path=dpr[1:3], layer_scale_init=layer_scale_init,
            shortcut=gen_shortcut, global_centres=global_centres, **common)
        self.semantic_blocks = nn.ModuleList([
            Block(drop=drop, drop_path=rate, layer_scale_init=layer_scale_init, **common)
            for rate in dpr[3:3 + len(self.semantic_scopes)]])
        self.recovery = (RecoveryBlock(drop=drop, drop_path=dpr[-1],
                                       layer_scale_init=layer_scale_init, **common)
                         if recovery else None)
        self._index_cache: dict = {}

    def _neighbourhood(self, grid: Tuple[int, ...], device: torch.device) -> Tuple[Tensor, Tensor]:
        key = (grid, device)
        if key not in self._index_cache:
            index, valid = neighbourhood_index(grid, self.window, self.neighbourhood,
                                               self.neighbourhood_inside)
            self._index_cache[key] = (index.to(device), valid.to(device))
        return self._index_cache[key]

    def semantic_grid(self, grid: Sequence[int]) -> Tuple[int, ...]:
        """Spatial layout of the semantic tokens: windows x pool_size per dim."""
        return tuple(-(-g // w) * p for g, w, p in zip(grid, self.window, self.pool_size))

    def generate(self, x: Tensor, grid: Tuple[int, ...],
                 keep: Optional[Tensor] = None) -> Tuple[Tensor, Optional[Tensor]]:
        """Image tokens (B, N, C) on ``grid`` -> semantic tokens (B, windows * S, C).

        Returns the semantic tokens and their validity (B, windows * S) bool,
        False for windows that hold only padding (None when all are valid).
        """
        B, N, C = x.shape
        S = self.generator.num_tokens
        padded, padded_keep = pad_grid(x.reshape(B, *grid, C), self.window, keep)
        windows = window_partition(padded, self.window)  # (B*nW, Nw, C)
        num_windows = windows.shape[0] // B
        window_keep = None
        if padded_keep is not None:
            window_keep = window_partition(padded_keep[..., None], self.window)[..., 0]
            window_keep = window_keep.repeat(B // padded_keep.shape[0], 1)  # (B*nW, Nw)
        pooled = adaptive_max_pool_tokens(windows, self.window, self.pool_size, window_keep)

        # Generator layer 1: keys/values of image tokens projected once, then gathered.
        layer1 = self.generator.layer1
        index, valid = self._neighbourhood(grid, x.device)
        image_kv = layer1.project_kv(x)  # (B, N, 2C)
        neighbour_kv = image_kv[:, index.reshape(-1)].reshape(B * num_windows, -1, 2 * C)
        kv = torch.cat([layer1.project_kv(pooled), neighbour_kv], dim=1)
        token_keep = None if keep is None else keep.reshape(keep.shape[0], N).expand(B, N)
        semantic_keep = None
        if window_keep is not None:
            semantic_keep = window_keep.any(-1, keepdim=True).expand(-1, S).reshape(B, -1)
        mask = None
        if token_keep is not None or not bool(valid.all()):
            neighbour_keep = valid[None].expand(B, -1, -1)
            if token_keep is not None:
                neighbour_keep = neighbour_keep & token_keep[:, index]
            own = (semantic_keep.reshape(B, num_windows, S) if semantic_keep is not None
                   else neighbour_keep.new_ones(B, num_windows, S))
            mask = torch.cat([own, neighbour_keep], -1).reshape(B * num_windows, 1, 1, -1)
        semantic = layer1.forward_projected(pooled, kv, mask=mask).reshape(B, -1, C)

        # Generator layer 2: all semantic tokens attend to [semantic; image tokens].
        mask = None
        if token_keep is not None:
            mask = torch.cat([semantic_keep, token_keep], 1)[:, None, None, :]
        queries = self.generator.add_centres(semantic)
        semantic = self.generator.layer2(queries, torch.cat([semantic, x], dim=1), mask=mask)
        return semantic, semantic_keep

    def forward(self, x: Tensor, grid: Tuple[int, ...],
                keep: Optional[Tensor] = None) -> Tuple[Optional[Tensor], Tensor]:
        """Image tokens (B, N, C) in raster order over ``grid``.

        Args:
            keep: optional (B or 1, *grid) bool, False on tokens that are
                already padding; they never influence the other tokens.

        Returns:
            (image tokens (B, N, C) after recovery, or None without recovery;
            semantic tokens (B, windows * S, C), window-major).
        """
        B, _, C = x.shape
        S = self.generator.num_tokens
        x = self.window_block(x, grid, keep)
        semantic, semantic_keep = self.generate(x, grid, keep)
        global_mask = local_mask = None
        if semantic_keep is not None and keep is not None:
            global_mask = semantic_keep[:, None, None, :]
            local_mask = semantic_keep.reshape(-1, 1, 1, S)
        for scope, blk in zip(self.semantic_scopes, self.semantic_blocks):
            if scope == 'local':
                semantic = blk(semantic.reshape(-1, S, C), mask=local_mask).reshape(B, -1, C)
            else:
                semantic = blk(semantic, mask=global_mask)
        if self.recovery is None:
            return None, semantic
        return self.recovery(x, semantic, mask=global_mask), semantic


def semantic_tokens_to_grid(semantic: Tensor, grid: Sequence[int], window: Sequence[int],
                            pool_size: Sequence[int]) -> Tensor:
    """Window-major semantic tokens (B, windows * S, C) -> raster order on their grid.

    Lets a stage without recovery hand its semantic tokens to patch merging
    and the next stage as an ordinary (smaller) feature map.
    """
    from .grouping import window_reverse
    B, _, C = semantic.shape
    sem_grid = [-(-g // w) * p for g, w, p in zip(grid, window, pool_size)]
    return window_reverse(semantic.reshape(-1, _numel(pool_size), C), pool_size,
                          sem_grid).reshape(B, -1, C)


def _numel(size: Sequence[int]) -> int:
    out = 1
    for s in size:
        out *= s
    return out


__all__: List[str] = ['WindowedDumbbellUnit', 'neighbourhood_index', 'semantic_tokens_to_grid',
                      'SEMANTIC_SCOPES']
