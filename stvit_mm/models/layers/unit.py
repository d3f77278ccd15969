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


def neighbourhood_index(grid: Sequence[int], window: Sequence[int],
                        size: Sequence[int]) -> Tuple[Tensor, Tensor]:
    """Token indices of a ``size`` neighbourhood around every window.

    Each neighbourhood is centred on its window and shifted inward at the
    image border, so it stays inside the image (at 14x14 with window 7 and
    size 10 this is the official STViT-R ``unfold(kernel 10, stride 4)``).
    Positions beyond a grid smaller than ``size`` are flagged invalid.

    Returns:
        (windows, prod(size)) long indices into the raster-ordered tokens and
        a bool mask of the same shape, False on positions outside the grid.
    """
    axes_index, axes_valid = [], []
    for g, w, k in zip(grid, window, size):
        count = -(-g // w)
        starts = torch.clamp(torch.arange(count) * w - (k - w) // 2, min=0, max=max(g - k, 0))
        pos = starts[:, None] + torch.arange(k)[None, :]  # (count, k)
        axes_valid.append(pos < g)
        axes_index.append(pos.clamp(max=g - 1))
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
    """

    def __init__(self, dim: int, num_heads: int, window: Sequence[int],
                 pool_size: Sequence[int], neighbourhood: Sequence[int],
                 semantic_layers: Sequence[str] = SEMANTIC_SCOPES, recovery: bool = True,
                 mlp_ratio: float = 4.0, qkv_bias: bool = True, drop: float = 0.0,
                 drop_path: Optional[Sequence[float]] = None,
                 layer_scale_init: Optional[float] = 1e-5, gen_shortcut: bool = True,
                 global_centres: bool = True, norm_layer: Type[nn.Module] = nn.LayerNorm,
                 act_layer: Type[nn.Module] = nn.GELU) -> None:
        super().__init__()
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
            index, valid = neighbourhood_index(grid, self.window, self.neighbourhood)
            self._index_cache[key] = (index.to(device), valid.to(device))
        return self._index_cache[key]

    def semantic_grid(self, grid: Sequence[int]) -> Tuple[int, ...]:
        """Spatial layout of the semantic tokens: windows x pool_size per dim."""
        return tuple(-(-g // w) * p for g, w, p in zip(grid, self.window, self.pool_size))

    def generate(self, x: Tensor, grid: Tuple[int, ...]) -> Tensor:
        """Image tokens (B, N, C) on ``grid`` -> semantic tokens (B, windows * S, C)."""
        B, N, C = x.shape
        padded, keep = pad_grid(x.reshape(B, *grid, C), self.window)
        windows = window_partition(padded, self.window)  # (B*nW, Nw, C)
        window_keep = None
        if keep is not None:
            window_keep = window_partition(keep[..., None], self.window)[..., 0]  # (nW, Nw)
            window_keep = window_keep.repeat(B, 1)
        pooled = adaptive_max_pool_tokens(windows, self.window, self.pool_size, window_keep)
        num_windows, S = pooled.shape[0] // B, pooled.shape[1]

        layer1 = self.generator.layer1
        index, valid = self._neighbourhood(grid, x.device)
        image_kv = layer1.project_kv(x)  # (B, N, 2C): once per image token
        neighbour_kv = image_kv[:, index.reshape(-1)].reshape(B * num_windows, -1, 2 * C)
        kv = torch.cat([layer1.project_kv(pooled), neighbour_kv], dim=1)
        mask = None
        if not bool(valid.all()):
            own = valid.new_ones(num_windows, S)
            mask = torch.cat([own, valid], 1).repeat(B, 1)[:, None, None, :]
        semantic = layer1.forward_projected(pooled, kv, mask=mask).reshape(B, -1, C)

        queries = self.generator.add_centres(semantic)
        return self.generator.layer2(queries, torch.cat([semantic, x], dim=1))

    def forward(self, x: Tensor, grid: Tuple[int, ...]) -> Tuple[Tensor, Tensor]:
        """Image tokens (B, N, C) in raster order over ``grid``.

        Returns:
            (image tokens (B, N, C) after recovery, or None without recovery;
            semantic tokens (B, windows * S, C), window-major).
        """
        B, _, C = x.shape
        x = self.window_block(x, grid)
        semantic = self.generate(x, grid)
        S = self.generator.num_tokens
        for scope, blk in zip(self.semantic_scopes, self.semantic_blocks):
            if scope == 'local':
                semantic = blk(semantic.reshape(-1, S, C)).reshape(B, -1, C)
            else:
                semantic = blk(semantic)
        if self.recovery is None:
            return None, semantic
        return self.recovery(x, semantic), semantic


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
