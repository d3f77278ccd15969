"""Where semantic tokens look, and what each image region recovers from.

For every semantic token generator in a backbone (the STViT generator of a
plain ViT, or each dumbbell unit of STViTSwin), this records, for one image:

- ``layer1`` / ``layer2``: the attention each semantic token pays to every
  image token in the two generator layers (paper Sec. 3.2), mean over heads;
- ``recovery`` (STViT-R): the weight every image token gives each semantic
  token in the recovery layer (Sec. 3.3), mean over heads; the weights of one
  image token over the semantic tokens sum to 1.

Attention weights come from :func:`stvit_mm.models.layers.record_attention`
(explicit attention path). Which layer produced a weight matrix is known from
a forward hook on that layer's query projection, which runs right before its
attention. Windowed units attend per window or neighbourhood; the gathered
keys are mapped back to image positions with the same index tables the unit
uses (:meth:`~stvit_mm.models.layers.unit.WindowedDumbbellUnit.footprint` and
:func:`stvit_mm.models.layers.grouping.window_layout`).

This module computes; :mod:`stvit_mm.analysis.plotting` draws and
:mod:`stvit_mm.analysis.visualize` runs a model on image files end to end.
"""
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import torch
from torch import Tensor, nn

from ..models.layers import record_attention
from ..models.layers.fork_unit import DetectionForkUnit
from ..models.layers.grouping import window_layout
from ..models.layers.unit import SemanticFootprint, WindowedDumbbellUnit
from ..utils.config import ConfigError

ROLES = ('layer1', 'layer2', 'recovery')


@dataclass
class SemanticMaps:
    """Attention maps of one generator for one image, on its token grid.

    Attributes:
        name: 'generator' (plain ViT) or 'stage{i}_unit{j}' (Swin unit).
        grid: (h, w) image-token grid the generator works on.
        stride: input pixels per token along each side.
        semantic_grid: (rows, cols) layout of the semantic tokens (windows
            times pooled tokens per window for Swin units).
        labels: 'row,col' of every semantic token on ``semantic_grid``.
        tokens_per_window: semantic tokens per window (all of them: one window).
        layer1, layer2: (T, h, w) attention of each semantic token to the
            image tokens (mean over heads; zero outside a token's keys).
        recovery: (T, h, w) weight each image token gives each semantic token
            (sums to 1 over T), or None without a recovery layer.
    """
    name: str
    grid: Tuple[int, int]
    stride: int
    semantic_grid: Tuple[int, int]
    labels: List[str]
    tokens_per_window: int
    layer1: np.ndarray
    layer2: np.ndarray
    recovery: Optional[np.ndarray] = None

    @property
    def num_tokens(self) -> int:
        return self.layer1.shape[0]


# --------------------------------------------------------------------------- recording


@dataclass
class RecordedGenerator:
    """A generator of a backbone and the attention weights recorded from it.

    Attributes:
        name: 'generator' (plain ViT) or 'stage{i}_unit{j}' (Swin unit).
        owner: the module owning ``generator`` (and ``recovery``).
        stride: input pixels per image token.
        grid: the image-token grid of the recorded forward.
        weights: {'layer1' | 'layer2' | 'recovery': attention, mean over heads}.
    """
    name: str
    owner: nn.Module
    stride: int
    grid: Optional[Tuple[int, ...]] = None
    weights: Dict[str, Tensor] = field(default_factory=dict)


def _swin_stage_stride(backbone: nn.Module, stage: int) -> int:
    # Patch embedding, then one 2x patch merging before every later stage.
    return int(backbone.patch_embed.patch_size) * 2**stage


def semantic_targets(backbone: nn.Module) -> List[RecordedGenerator]:
    """The generators of an STViT / STViTSwin backbone, nothing recorded yet;
    :class:`ConfigError` for backbones without semantic tokens."""
    from ..models.backbones.stvit import STViT
    from ..models.backbones.stvit_swin import STViTSwin
    if isinstance(backbone, STViT):
        return [RecordedGenerator('generator', backbone, int(backbone.patch_size))]
    if isinstance(backbone, STViTSwin):
        targets = []
        for name, module in backbone.named_modules():
            if isinstance(module, WindowedDumbbellUnit):
                stage, unit = map(int, re.fullmatch(r'stages\.(\d+)\.units\.(\d+)', name).groups())
                targets.append(RecordedGenerator(f'stage{stage}_unit{unit}', module,
                                                 _swin_stage_stride(backbone, stage)))
        if not targets:
            raise ConfigError('the STViTSwin backbone has no dumbbell units (arch units all 0): '
                              'no semantic tokens to show')
        return targets
    raise ConfigError(f'backbone {type(backbone).__name__} has no semantic tokens to show: '
                      'expected STViT or STViTSwin (2-D images)')


class _Recorder:
    """Routes each recorded attention to the layer whose query projection ran last."""

    def __init__(self) -> None:
        self.current: Optional[Tuple[RecordedGenerator, str]] = None

    def tag(self, target: RecordedGenerator, role: str) -> Callable:
        def hook(module: nn.Module, args: Any, output: Any) -> None:
            self.current = (target, role)
        return hook

    def __call__(self, weights: Tensor) -> None:
        if self.current is None:
            return  # an ordinary self-attention block
        target, role = self.current
        self.current = None
        if role in target.weights:
            raise RuntimeError(f'semantic maps: {target.name}.{role} ran twice in one forward')
        target.weights[role] = weights.detach().float().mean(dim=1).cpu()  # mean over heads


def _record_grid(target: RecordedGenerator) -> Callable:
    def hook(module: nn.Module, args: Tuple) -> None:
        target.grid = tuple(int(g) for g in args[1])
    return hook


def record_semantic_attention(backbone: nn.Module, inputs: Tensor) -> List[RecordedGenerator]:
    """Run ``backbone(inputs)`` (one image) and collect the generators' attention weights."""
    if inputs.shape[0] != 1:
        raise ValueError(f'semantic maps: one image at a time, got a batch of {inputs.shape[0]}')
    targets = semantic_targets(backbone)
    recorder = _Recorder()
    handles = []
    try:
        for target in targets:
            owner = target.owner
            generator = owner.generator
            # STViT passes the grid to its generator, a Swin unit gets it itself.
            grid_module = generator if target.name == 'generator' else owner
            handles.append(grid_module.register_forward_pre_hook(_record_grid(target)))
            layers = dict(layer1=generator.layer1, layer2=generator.layer2,
                          recovery=owner.recovery)
            for role, layer in layers.items():
                if layer is not None:
                    handles.append(layer.attn.q.register_forward_hook(recorder.tag(target, role)))
        with torch.no_grad(), record_attention(recorder):
            backbone(inputs)
    finally:
        for handle in handles:
            handle.remove()
    for target in targets:
        missing = [r for r in ('layer1', 'layer2') if r not in target.weights]
        if target.grid is None or missing:
            raise RuntimeError(f'semantic maps: {target.name} did not run {missing or "at all"}')
    return targets


# --------------------------------------------------------------------------- back to the grid


def _scatter_keys(weights: Tensor, index: Tensor, valid: Tensor, num_positions: int) -> Tensor:
    """Per-group weights over gathered keys -> weights over grid positions.

    weights: (G, Q, K) attention of Q queries of each of G groups to K keys
    gathered at ``index`` (G, K) (``valid`` False where the gather is padding).
    Returns (G, Q, num_positions).
    """
    G, Q, K = weights.shape
    out = weights.new_zeros(G, Q, num_positions)
    values = weights * valid[:, None, :].to(weights.dtype)
    return out.scatter_add_(2, index[:, None, :].expand(G, Q, K), values)


def _global_maps(target: RecordedGenerator) -> Tuple[Tensor, Tensor, Optional[Tensor]]:
    """STViT (one group of semantic tokens per image): (T, N) maps."""
    grid = target.grid
    N = grid[0] * grid[1]
    layer1 = target.weights['layer1'][0]  # (T, N)
    T = layer1.shape[0]
    layer2 = target.weights['layer2'][0][:, T:]  # keys: [semantic; image]
    recovery = target.weights.get('recovery')
    recovery = None if recovery is None else recovery[0].t()  # (N, T) -> (T, N)
    assert layer1.shape[1] == N and layer2.shape[1] == N
    return layer1, layer2, recovery


def _window_maps(target: RecordedGenerator) -> Tuple[Tensor, Tensor, Optional[Tensor]]:
    """Swin unit: per-window attention mapped to (T, N), T = windows * S, window-major.

    The index tables are the unit's own (:meth:`WindowedDumbbellUnit.footprint`
    and the window layout), so keys map back exactly as they were gathered.
    """
    unit: WindowedDumbbellUnit = target.owner
    grid = target.grid
    if isinstance(unit, DetectionForkUnit):
        raise ConfigError("semantic maps: the detection fork's units (preset='official-det') "
                          'are not supported; visualise a model of another preset')
    if len(grid) != 2:
        raise ConfigError(f'semantic maps: {len(grid)}-D windows are not supported (images only)')
    N = grid[0] * grid[1]
    S = unit.generator.num_tokens
    footprint = unit.footprint(grid)
    index, valid = footprint.image_tokens, footprint.image_valid  # (nW, K) per window
    nW, K = index.shape
    T = nW * S

    # Generator layer 1: keys = [the window's S pooled tokens; its neighbourhood of image tokens].
    layer1 = _scatter_keys(target.weights['layer1'][:, :, S:], index, valid, N).reshape(T, N)

    # Generator layer 2: global keys [semantic; image], or per window [nearby semantic;
    # the layer-1 neighbourhood of image tokens] (the last K keys).
    weights = target.weights['layer2']
    if unit.layer2_scope == 'global':
        layer2 = weights[0][:, T:]
    else:
        layer2 = _scatter_keys(weights[:, :, -K:], index, valid, N).reshape(T, N)

    recovery = target.weights.get('recovery')
    if recovery is not None:
        if unit.recovery_scope == 'global':
            recovery = recovery[0].t()  # (N, T) -> (T, N)
        else:
            recovery = _local_recovery(grid, footprint, recovery, S)
    return layer1, layer2, recovery


def _local_recovery(grid: Tuple[int, ...], footprint: SemanticFootprint, weights: Tensor,
                    S: int) -> Tensor:
    """Local recovery: the image tokens of each (padded) window attend to the semantic
    tokens of the surrounding windows. (nW, window slots, M * S) -> (T, N)."""
    near, near_valid = footprint.windows, footprint.windows_valid  # (nW, M) windows
    num_windows, M = near.shape
    token_ids = (near[:, :, None] * S + torch.arange(S)).reshape(num_windows, M * S)
    token_valid = near_valid[:, :, None].expand(-1, -1, S).reshape(num_windows, M * S)
    per_slot = _scatter_keys(weights, token_ids, token_valid, num_windows * S)  # (nW, Nw, T)
    # window slots -> raster image tokens (padding slots dropped), as the unit regroups them
    layout = window_layout(tuple(grid), footprint.window, (0, ) * len(grid), torch.device('cpu'))
    per_token = per_slot.reshape(-1, num_windows * S).index_select(0, layout.inverse)  # (N, T)
    return per_token.t()


def _semantic_layout(target: RecordedGenerator,
                     num_tokens: int) -> Tuple[Tuple[int, int], List[str], int]:
    """Semantic grid, 'row,col' labels (token order of the model) and tokens per window."""
    if target.name == 'generator':
        pool = tuple(target.owner.generator.pool_size)
        windows, S = (1, 1), num_tokens
    else:
        unit = target.owner
        pool = tuple(unit.pool_size)
        windows = tuple(-(-g // w) for g, w in zip(target.grid, unit.window_for(target.grid)))
        S = unit.generator.num_tokens
    labels = []
    for t in range(num_tokens):
        w, s = divmod(t, S)
        (wr, wc), (pr, pc) = divmod(w, windows[1]), divmod(s, pool[1])
        labels.append(f'{wr * pool[0] + pr},{wc * pool[1] + pc}')
    return (windows[0] * pool[0], windows[1] * pool[1]), labels, S


def semantic_maps(backbone: nn.Module, inputs: Tensor) -> List[SemanticMaps]:
    """Attention maps of every generator of ``backbone`` for one image (1, 3, H, W)."""
    out = []
    for target in record_semantic_attention(backbone, inputs):
        maps = (_global_maps if target.name == 'generator' else _window_maps)(target)
        h, w = target.grid
        layer1, layer2, recovery = (None if m is None else m.reshape(-1, h, w).numpy()
                                    for m in maps)
        semantic_grid, labels, per_window = _semantic_layout(target, layer1.shape[0])
        out.append(SemanticMaps(target.name, (h, w), target.stride, semantic_grid, labels,
                                per_window, layer1, layer2, recovery))
    return out


__all__ = ['ROLES', 'RecordedGenerator', 'SemanticMaps', 'record_semantic_attention',
           'semantic_maps', 'semantic_targets']
