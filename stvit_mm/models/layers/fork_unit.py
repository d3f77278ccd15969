"""The dumbbell unit of the authors' COCO detectors (changsn/STViT-R-Object-Detection).

Same layers and parameters as :class:`WindowedDumbbellUnit`, another computation
(read off the fork's ``swin_transformer.py`` / ``layers.py``; not the paper's,
not the classification code's). With window 7 and 3x3 semantic tokens per window:

1. a window block whose zero padding takes part in attention;
2. generator layer 1: the 3x3 max-pooled queries of each zero-padded window attend
   to a 14x14 neighbourhood of image tokens (3 before, 4 after the window) only;
   layer 2: the semantic tokens of each window attend to 21x21 image tokens (the
   3x3 surrounding windows), no semantic token among the keys; both layers add the
   attention residual; no global centres;
3. a local (3x3) and a global block on the semantic tokens;
4. recovery: each window's image tokens attend to 27x27 semantic tokens (9x9 windows).

Keys outside the image are zero tokens, normalised like real ones (so they hold the
norm's bias) and attended unless the fork's pad mask blocks them. That mask adds
-1000 on the keys beyond the padded map and on the interior rows/columns
``[-pad_h:, -pad_w:]`` -- a Python slice: without padding it covers the whole map
(a uniform shift that masks nothing), with padding on both sides only the
bottom-right corner; recovery applies the image's pad amounts to the semantic grid.
Every quirk is kept on purpose: the released weights were trained with them.
"""
import functools
from typing import NamedTuple, Optional, Sequence, Tuple, Type

import torch
from torch import Tensor, nn

from ...checkpoints.plans import FORK_PLAN_RECORD  # the buffer naming the plan
from .grouping import adaptive_max_pool_tokens, window_layout, zero_padded_window_layout
from .unit import SEMANTIC_SCOPES, UnitOutput, WindowedDumbbellUnit, semantic_tokens_to_grid

FORK_PAD_BIAS = -1000.0  # the fork's pad-mask value, added to the logits
# Key neighbourhood sides of the fork: layer 1 and layer 2 in image tokens (stride: the
# window), recovery in semantic tokens (stride: the pooled grid). At window 7 and pool 3:
# 14, 21, 27 (its k_window_size_1, k_window_size_2, restore_k_window_size).
LAYER1_WINDOWS, LAYER2_WINDOWS, RECOVERY_WINDOWS = 2, 3, 9


class ForkKeys(NamedTuple):
    """Where one attention of the fork unit takes its keys, for every window.

    Attributes:
        index: (windows * K,) raster index of each key into the tokens it is gathered
            from; keys outside the real tokens point at their count (a zero token).
        bias: (windows, 1, 1, K) the fork's pad mask as an additive logit bias.
    """
    index: Tensor
    bias: Tensor


def _positions(count: int, stride: int, size: int) -> Tensor:
    """(count, size) positions along one axis of each window's key neighbourhood."""
    before = (size - stride) // 2  # the fork pads floor((k - stride) / 2) in front
    return torch.arange(count)[:, None] * stride - before + torch.arange(size)[None, :]


@functools.lru_cache(maxsize=64)
@torch.inference_mode(False)  # cached for every later call: must serve autograd too
def fork_keys(grid: Tuple[int, int], extent: Tuple[int, int], stride: int, size: int,
              pads: Tuple[int, int], device: torch.device) -> ForkKeys:
    """Key neighbourhoods of ``size`` x ``size`` tokens around every ``stride`` window.

    Args:
        grid: real tokens (rows, cols) the keys are gathered from.
        extent: the map the fork unfolds (``grid`` zero-padded to whole windows).
        stride: window side in these tokens.
        size: neighbourhood side.
        pads: the image's window padding (bottom, right) that the fork's mask reads.
        device: where the tables live.
    """
    rows, cols = (_positions(e // stride, stride, size) for e in extent)
    real_r, real_c = ((p >= 0) & (p < g) for p, g in ((rows, grid[0]), (cols, grid[1])))
    index = (rows.clamp(0, grid[0] - 1)[:, None, :, None] * grid[1]
             + cols.clamp(0, grid[1] - 1)[None, :, None, :])
    real = real_r[:, None, :, None] & real_c[None, :, None, :]
    index = torch.where(real, index, grid[0] * grid[1])
    margin_r, margin_c = ((p < 0) | (p >= e) for p, e in ((rows, extent[0]), (cols, extent[1])))
    # pad_mask[:, -pad_h:, -pad_w:]: a zero pad is `-0:`, the whole axis
    last_r, last_c = ((p >= e - pad) if pad else torch.ones_like(p, dtype=torch.bool)
                      for p, e, pad in ((rows, extent[0], pads[0]), (cols, extent[1], pads[1])))
    blocked = (margin_r[:, None, :, None] | margin_c[None, :, None, :]
               | (last_r[:, None, :, None] & last_c[None, :, None, :]))
    windows = rows.shape[0] * cols.shape[0]
    bias = (blocked.to(torch.float32) * FORK_PAD_BIAS).reshape(windows, 1, 1, size * size)
    return ForkKeys(index.reshape(-1).to(device), bias.to(device))


class DetectionForkUnit(WindowedDumbbellUnit):
    """The STViT-R unit as the detection fork computes it (module docstring).

    Args:
        dim, num_heads, window, pool_size, mlp_ratio, qkv_bias, drop, drop_path,
        layer_scale_init, norm_layer, act_layer: as in :class:`WindowedDumbbellUnit`
            (2-D windows; ``pool_size`` square).
    """

    def __init__(self, dim: int, num_heads: int, window: Sequence[int],
                 pool_size: Sequence[int], mlp_ratio: float = 4.0, qkv_bias: bool = True,
                 drop: float = 0.0, drop_path: Optional[Sequence[float]] = None,
                 layer_scale_init: Optional[float] = 1e-5,
                 norm_layer: Type[nn.Module] = nn.LayerNorm,
                 act_layer: Type[nn.Module] = nn.GELU) -> None:
        window, pool_size = tuple(window), tuple(pool_size)
        if len(window) != 2 or len(set(window)) != 1 or len(set(pool_size)) != 1:
            raise ValueError(f'DetectionForkUnit: the fork has square 2-D windows and pooled '
                             f'grids, got window {window}, pool_size {pool_size}')
        super().__init__(dim, num_heads, window, pool_size,
                         neighbourhood=tuple(LAYER1_WINDOWS * w for w in window),
                         semantic_layers=SEMANTIC_SCOPES, recovery=True, mlp_ratio=mlp_ratio,
                         qkv_bias=qkv_bias, drop=drop, drop_path=drop_path,
                         layer_scale_init=layer_scale_init, gen_shortcut=True,
                         global_centres=False, window_padding='zeros', norm_layer=norm_layer,
                         act_layer=act_layer)
        # The plan travels with the weights (the same tensors fit the windowed plan): what lets
        # a checkpoint of one plan be refused by a model of the other.
        self.register_buffer(FORK_PLAN_RECORD, torch.tensor(self.key_sides()), persistent=True)

    def footprint(self, grid: Sequence[int], device=None):
        raise NotImplementedError('DetectionForkUnit: semantic token maps of the detection '
                                  "fork's unit are not supported (use another preset)")

    def key_sides(self) -> Tuple[int, int, int]:
        """Neighbourhood sides of layer 1, layer 2 (image tokens) and recovery (semantic)."""
        w, p = self.window[0], self.pool_size[0]
        return LAYER1_WINDOWS * w, LAYER2_WINDOWS * w, RECOVERY_WINDOWS * p

    def forward(self, x: Tensor, grid: Tuple[int, ...],
                keep: Optional[Tensor] = None) -> UnitOutput:
        """Image tokens (B, N, C) in raster order over ``grid`` -> ``UnitOutput`` (recovered
        image tokens (B, N, C) on ``grid``, semantic tokens (B, windows * S, C) window-major)."""
        if keep is not None:
            raise ValueError('DetectionForkUnit: the detection fork masks no token (keep must '
                             'be None)')
        B, N, C = x.shape
        grid, window, pool = tuple(grid), self.window, self.pool_size
        S = self.generator.num_tokens
        extent = tuple(-(-g // w) * w for g, w in zip(grid, window))
        pads = tuple(e - g for e, g in zip(extent, grid))
        side1, side2, side_r = self.key_sides()
        x = self.window_block(x, grid)
        padded = torch.cat([x, x.new_zeros(B, 1, C)], dim=1)  # token N: zero padding

        # Queries: each zero-padded window max-pooled (padding competes with value 0).
        windows = zero_padded_window_layout(grid, window, (0, 0), x.device)
        nW = windows.num_windows
        pooled = adaptive_max_pool_tokens(
            padded.index_select(1, windows.index).reshape(B * nW, -1, C), window, pool)

        keys1 = fork_keys(grid, extent, window[0], side1, pads, x.device)
        keys2 = fork_keys(grid, extent, window[0], side2, pads, x.device)
        semantic = self.generator.gathered(pooled, padded, (keys1.index, keys1.bias),
                                           (keys2.index, keys2.bias))  # (B*nW, S, C)

        local_block, global_block = self.semantic_blocks
        semantic = global_block(local_block(semantic).reshape(B, nW * S, C))

        # Recovery: keys from the raster semantic grid, zero-padded like the image tokens.
        sem_grid = tuple(e // w * p for e, w, p in zip(extent, window, pool))
        raster = semantic_tokens_to_grid(semantic, grid, window, pool)
        raster = torch.cat([raster, raster.new_zeros(B, 1, C)], dim=1)
        keys_r = fork_keys(sem_grid, sem_grid, pool[0], side_r, pads, x.device)
        kv = self.recovery.project_kv(raster).index_select(1, keys_r.index)
        layout = window_layout(grid, window, (0, 0), x.device)

        def to_windows(q: Tensor) -> Tensor:  # (B, N, C) -> (B*nW, Nw, C)
            return q.index_select(1, layout.index).reshape(B * nW, -1, C)

        def from_windows(out: Tensor) -> Tensor:  # (B*nW, Nw, C) -> (B, N, C)
            return out.reshape(B, -1, C).index_select(1, layout.inverse)

        recovered = self.recovery.forward_projected(
            x, kv.reshape(B * nW, -1, 2 * C), bias=keys_r.bias,
            regroup=(to_windows, from_windows))
        return UnitOutput(recovered, grid, semantic)
