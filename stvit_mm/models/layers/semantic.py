"""Semantic token generation module (STGM), paper Sec. 3.2: global (plain ViT), windowed
(STViT-R-Swin) or on gathered keys (the detection fork)."""
import math
from typing import Callable, Optional, Sequence, Tuple, Type

import torch
from torch import Tensor, nn

from ...checkpoints.plans import POOLED_GRID
from .blocks import CrossBlock
from .grouping import adaptive_max_pool_tokens, gather_groups, window_layout


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
        self.num_tokens = math.prod(self.pool_size)
        common = dict(dim=dim, num_heads=num_heads, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias,
                      drop=drop, layer_scale_init=layer_scale_init, norm_layer=norm_layer,
                      act_layer=act_layer)
        self.layer1 = CrossBlock(drop_path=drop_path[0], shortcut=shortcut, **common)
        self.layer2 = CrossBlock(drop_path=drop_path[1], shortcut=True, **common)
        self.centres = (nn.Parameter(torch.zeros(1, self.num_tokens, dim))
                        if global_centres else None)
        # The pooled grid travels with the weights: no tensor shape depends on it (without
        # centres), so this record is what lets a checkpoint of another pool size be refused.
        self.register_buffer(POOLED_GRID, torch.tensor(self.pool_size), persistent=True)
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
        """Global generation (plain ViT: one group per image); see :meth:`windowed`.

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

    def windowed(self, x: Tensor, grid: Tuple[int, ...], window: Tuple[int, ...],
                 neighbourhood: Tuple[Tensor, Tensor, bool], keep: Optional[Tensor] = None,
                 semantic_neighbours: Optional[Callable] = None
                 ) -> Tuple[Tensor, Optional[Tensor]]:
        """Each window pooled to ``pool_size`` tokens: (B, N, C) -> (B, windows * S, C).

        Args:
            neighbourhood: (nW, K) image-token indices around each window, their validity
                and whether all are valid; layer 1 (and a local layer 2) attends to them.
            keep: optional (B or 1, *grid) bool, False on padded tokens.
            semantic_neighbours: None: layer 2 attends to all semantic and image tokens; else
                ``keep -> (rows, mask)``: each window's semantic keys, (nW, M) indices into
                the window-major semantic tokens, and their (B * nW, M) validity or None.

        Returns:
            The semantic tokens and their validity (B, windows * S) bool, False for tokens
            whose pooling bin holds only padding (None without padding).
        """
        B, N, C = x.shape
        S = self.num_tokens
        layout = window_layout(tuple(grid), window, (0, ) * len(window), x.device)
        num_windows = layout.num_windows
        windows = x.index_select(1, layout.index).reshape(B * num_windows, -1, C)
        window_keep = layout.valid  # (nW, Nw) or None
        if keep is not None:  # (Bk*nW, Nw)
            given = keep.reshape(keep.shape[0], N)[:, layout.index].reshape(-1, windows.shape[1])
            window_keep = (given if window_keep is None
                           else given & window_keep.repeat(keep.shape[0], 1))
        if window_keep is not None:
            window_keep = window_keep.repeat(B * num_windows // window_keep.shape[0], 1)
        pooled = adaptive_max_pool_tokens(windows, window, self.pool_size, window_keep)

        # Layer 1: keys/values of image tokens projected once, then gathered after the
        # window's own pooled tokens.
        index, valid, all_valid = neighbourhood
        own = torch.arange(num_windows * S, device=x.device).reshape(num_windows, S)
        kv = gather_groups([self.layer1.project_kv(pooled).reshape(B, -1, 2 * C),
                            self.layer1.project_kv(x)], [own, index])
        token_keep = None if keep is None else keep.reshape(keep.shape[0], N).expand(B, N)
        semantic_keep = None
        if window_keep is not None:
            # A semantic token is real when its own pooling bin holds a real token: a window
            # with one real row has real tokens only in its first row of bins.
            semantic_keep = pooled_validity(window_keep, window, self.pool_size).reshape(B, -1)
        mask = None
        if semantic_keep is not None or token_keep is not None or not all_valid:
            neighbour_keep = valid[None].expand(B, -1, -1)
            if token_keep is not None:
                neighbour_keep = neighbour_keep & token_keep[:, index]
            own = (semantic_keep.reshape(B, num_windows, S) if semantic_keep is not None
                   else neighbour_keep.new_ones(B, num_windows, S))
            mask = torch.cat([own, neighbour_keep], -1).reshape(B * num_windows, 1, 1, -1)
        semantic = self.layer1.forward_projected(pooled, kv, mask=mask).reshape(B, -1, C)

        # Layer 2: semantic tokens attend to [semantic; image tokens].
        queries = self.add_centres(semantic)
        if semantic_neighbours is None:
            mask = None
            if semantic_keep is not None:
                image_keep = token_keep if token_keep is not None else x.new_ones(
                    B, N, dtype=torch.bool)
                mask = torch.cat([semantic_keep, image_keep], 1)[:, None, None, :]
            semantic = self.layer2(queries, torch.cat([semantic, x], dim=1), mask=mask)
            return semantic, semantic_keep
        semantic_rows, semantic_mask = semantic_neighbours(semantic_keep)
        kv = gather_groups([self.layer2.project_kv(semantic), self.layer2.project_kv(x)],
                           [semantic_rows, index])
        mask = None
        if semantic_mask is not None or token_keep is not None or not all_valid:
            image_mask = valid[None].expand(B, -1, -1)
            if token_keep is not None:
                image_mask = image_mask & token_keep[:, index]
            if semantic_mask is None:
                semantic_mask = image_mask.new_ones(B * num_windows, semantic_rows.shape[1])
            mask = torch.cat([semantic_mask, image_mask.reshape(B * num_windows, -1)], 1)
            mask = mask[:, None, None, :]
        semantic = self.layer2.forward_projected(queries.reshape(B * num_windows, S, C), kv,
                                                 mask=mask)
        return semantic.reshape(B, -1, C), semantic_keep

    def gathered(self, pooled: Tensor, tokens: Tensor, keys1: Tuple[Tensor, Tensor],
                 keys2: Tuple[Tensor, Tensor]) -> Tensor:
        """Generation on gathered keys (the detection fork): ``pooled`` (G, S, C) queries;
        each layer projects ``tokens`` (B, N, C) once and gathers its keys by (index, bias).
        No centres (the fork has none)."""
        G, _, C = pooled.shape
        semantic = pooled
        for layer, (index, bias) in ((self.layer1, keys1), (self.layer2, keys2)):
            kv = layer.project_kv(tokens).index_select(1, index).reshape(G, -1, 2 * C)
            semantic = layer.forward_projected(semantic, kv, bias=bias)
        return semantic


def pooled_validity(keep: Tensor, window: Sequence[int], pool_size: Sequence[int]) -> Tensor:
    """Which pooled tokens summarise at least one real token.

    keep: (windows, prod(window)) bool, False on padding slots -> (windows, prod(pool_size))
    bool, computed with the same adaptive bins as :func:`adaptive_max_pool_tokens`.
    """
    bins = adaptive_max_pool_tokens(keep.to(torch.float32)[..., None], window, pool_size)
    return bins[..., 0] > 0
