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
uses (its neighbourhood tables and :func:`stvit_mm.models.layers.grouping.window_layout`).

:func:`visualize_image` writes, per image and generator, PNG grids with one
panel per semantic token (overlay on the image; a square grid of panels, so
every figure keeps the input's aspect ratio), a map of the semantic token each
region recovers from (argmax), and the raw maps (``maps.npz``).
"""
import colorsys
import math
import os
import os.path as osp
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..models.layers import record_attention
from ..models.layers.grouping import window_layout
from ..models.layers.unit import WindowedDumbbellUnit
from .complexity import ConfigError, build_model, load_config, model_kind

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.webp', '.tif', '.tiff')
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
class _Target:
    """A generator to record: the module owning ``generator`` (and ``recovery``)."""
    name: str
    owner: nn.Module
    stride: int
    grid: Optional[Tuple[int, ...]] = None
    weights: Dict[str, Tensor] = field(default_factory=dict)


def _swin_stage_stride(backbone: nn.Module, stage: int) -> int:
    # Patch embedding, then one 2x patch merging before every later stage.
    return int(backbone.patch_embed.patch_size) * 2**stage


def _targets(backbone: nn.Module) -> List[_Target]:
    """The generators of an STViT / STViTSwin backbone; ConfigError for others."""
    from ..models.backbones.stvit import STViT
    from ..models.backbones.stvit_swin import STViTSwin
    if isinstance(backbone, STViT):
        return [_Target('generator', backbone, int(backbone.patch_size))]
    if isinstance(backbone, STViTSwin):
        targets = []
        for name, module in backbone.named_modules():
            if isinstance(module, WindowedDumbbellUnit):
                stage, unit = map(int, re.fullmatch(r'stages\.(\d+)\.units\.(\d+)', name).groups())
                targets.append(_Target(f'stage{stage}_unit{unit}', module,
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
        self.current: Optional[Tuple[_Target, str]] = None

    def tag(self, target: _Target, role: str) -> Callable:
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


def _record_grid(target: _Target) -> Callable:
    def hook(module: nn.Module, args: Tuple) -> None:
        target.grid = tuple(int(g) for g in args[1])
    return hook


def record_semantic_attention(backbone: nn.Module, inputs: Tensor) -> List[_Target]:
    """Run ``backbone(inputs)`` (one image) and collect the generators' attention weights."""
    if inputs.shape[0] != 1:
        raise ValueError(f'semantic maps: one image at a time, got a batch of {inputs.shape[0]}')
    targets = _targets(backbone)
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


def _global_maps(target: _Target) -> Tuple[Tensor, Tensor, Optional[Tensor]]:
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


def _unit_window(unit: WindowedDumbbellUnit, grid: Tuple[int, ...]) -> Tuple[int, ...]:
    """The window the unit uses on ``grid`` (it may shrink to small grids)."""
    return tuple(unit.window_for(grid))


def _window_maps(target: _Target) -> Tuple[Tensor, Tensor, Optional[Tensor]]:
    """Swin unit: per-window attention mapped to (T, N), T = windows * S, window-major.

    The index tables are the unit's own (its neighbourhood and window-neighbour
    caches, and the window layout), so keys map back exactly as they were gathered.
    """
    unit: WindowedDumbbellUnit = target.owner
    grid = target.grid
    if len(grid) != 2:
        raise ConfigError(f'semantic maps: {len(grid)}-D windows are not supported (images only)')
    N = grid[0] * grid[1]
    S = unit.generator.num_tokens
    window = _unit_window(unit, grid)
    cpu = torch.device('cpu')
    index, valid = unit._neighbourhood(grid, window, cpu)[:2]  # (nW, K) image tokens/window
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
            recovery = _local_recovery(unit, grid, window, recovery, S)
    return layer1, layer2, recovery


def _local_recovery(unit: WindowedDumbbellUnit, grid: Tuple[int, ...], window: Tuple[int, ...],
                    weights: Tensor, S: int) -> Tensor:
    """Local recovery: the image tokens of each (padded) window attend to the semantic
    tokens of the surrounding windows. (nW, window slots, M * S) -> (T, N)."""
    cpu = torch.device('cpu')
    near, near_valid = unit._window_neighbours(grid, window, cpu)[:2]  # (nW, M) windows
    num_windows, M = near.shape
    token_ids = (near[:, :, None] * S + torch.arange(S)).reshape(num_windows, M * S)
    token_valid = near_valid[:, :, None].expand(-1, -1, S).reshape(num_windows, M * S)
    per_slot = _scatter_keys(weights, token_ids, token_valid, num_windows * S)  # (nW, Nw, T)
    # window slots -> raster image tokens (padding slots dropped), as the unit regroups them
    layout = window_layout(tuple(grid), window, (0, ) * len(grid), cpu)
    per_token = per_slot.reshape(-1, num_windows * S).index_select(0, layout.inverse)  # (N, T)
    return per_token.t()


def _semantic_layout(target: _Target, num_tokens: int) -> Tuple[Tuple[int, int], List[str], int]:
    """Semantic grid, 'row,col' labels (token order of the model) and tokens per window."""
    if target.name == 'generator':
        pool = tuple(target.owner.generator.pool_size)
        windows, S = (1, 1), num_tokens
    else:
        unit = target.owner
        pool = tuple(unit.pool_size)
        windows = tuple(-(-g // w) for g, w in zip(target.grid, _unit_window(unit, target.grid)))
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


# --------------------------------------------------------------------------- model and image


def build_visualization_model(config: Union[str, Any], checkpoint: Optional[str],
                              device: str = 'cpu', cfg_options: Optional[dict] = None,
                              log: Callable[[str], None] = lambda message: None) -> nn.Module:
    """Model of ``config`` (random init, seeded) with ``checkpoint`` loaded ('none': no weights).

    A checkpoint with ``backbone.*`` keys (a detector or classifier file) is
    loaded into the model; one without is loaded into the backbone, whose
    load hooks convert foreign layouts (official Swin / STViT-R, DeiT, ...).
    """
    cfg = load_config(config, cfg_options)
    # mmpretrain configs keep the data preprocessor (mean/std, RGB) at the top level; the
    # Runner moves it into the model, and so do we.
    if cfg.get('data_preprocessor') and 'data_preprocessor' not in cfg.model:
        cfg.model.data_preprocessor = cfg.data_preprocessor
    model = build_model(cfg, device)
    kind = model_kind(model)
    if kind == 'recognizer3d':
        raise ConfigError('video recognizers are not supported: semantic maps are drawn on '
                          'images (use an image classification, detection or segmentation '
                          'config)')
    _targets(model.backbone)  # fails early on backbones without semantic tokens
    if checkpoint is not None and checkpoint.lower() != 'none':
        _load_weights(model, checkpoint, log)
    model.eval()
    return model


def _load_weights(model: nn.Module, checkpoint: str, log: Callable[[str], None]) -> None:
    from mmengine.runner.checkpoint import _load_checkpoint

    from ..utils.safe_checkpoint import UnsafeCheckpointError, use_safe_checkpoint_loading
    use_safe_checkpoint_loading()
    if '://' not in checkpoint and not osp.isfile(checkpoint):
        raise ConfigError(f'checkpoint {checkpoint} does not exist')
    try:
        loaded = _load_checkpoint(checkpoint, map_location='cpu')
    except UnsafeCheckpointError as error:
        raise ConfigError(str(error)) from None
    except Exception as error:  # noqa: BLE001  (any unreadable file is bad input)
        raise ConfigError(f'cannot read checkpoint {checkpoint}: {error}') from error
    state = loaded
    for key in ('state_dict', 'model'):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not state:
        raise ConfigError(f'checkpoint {checkpoint} holds no state dict')
    state = {k[len('module.'):] if k.startswith('module.') else k: v for k, v in state.items()}
    whole = any(k.startswith('backbone.') for k in state)
    target = model if whole else model.backbone
    total = len(target.state_dict())
    try:
        result = target.load_state_dict(state, strict=False)
    except (RuntimeError, ValueError, KeyError) as error:
        reason = ' '.join(str(error).split())[:300]
        raise ConfigError(f'checkpoint {checkpoint} does not fit the model: {reason}') from error
    matched = total - len(result.missing_keys)
    if matched == 0:
        raise ConfigError(f'checkpoint {checkpoint} matches none of the '
                          f'{"model" if whole else "backbone"} parameters')
    log(f'loaded {checkpoint} into the {"model" if whole else "backbone"}: {matched}/{total} '
        f'tensors, {len(result.missing_keys)} missing, {len(result.unexpected_keys)} unexpected')


def load_image(path: str, short_side: Optional[int] = None) -> np.ndarray:
    """BGR uint8 (H, W, 3) as the OpenMMLab pipelines load it, optionally rescaled."""
    import mmcv
    if not osp.isfile(path):
        raise ConfigError(f'image {path} does not exist')
    image = mmcv.imread(path, flag='color')
    if image is None:
        raise ConfigError(f'cannot read image {path}')
    if short_side:
        scale = short_side / min(image.shape[:2])
        image = mmcv.imrescale(image, scale)
    return image


def image_to_input(model: nn.Module, image_bgr: np.ndarray) -> Tensor:
    """Normalise (and pad) like the model's data preprocessor, then pad for the backbone.

    Returns (1, 3, H', W') with H' >= H, W' >= W; padding is at the bottom/right.
    """
    device = next(model.parameters()).device
    tensor = torch.from_numpy(np.ascontiguousarray(image_bgr)).permute(2, 0, 1)
    data = model.data_preprocessor(dict(inputs=[tensor.to(device)]), False)
    inputs = data['inputs']
    multiple = int(getattr(model.backbone, 'patch_size', 1) or 1)  # STViT: whole patches
    H, W = inputs.shape[-2:]
    return F.pad(inputs, (0, (-W) % multiple, 0, (-H) % multiple))


# --------------------------------------------------------------------------- drawing


def _check_cover(grid: Tuple[int, int], stride: int, size: Tuple[int, int]) -> None:
    if grid[0] * stride < size[0] or grid[1] * stride < size[1]:
        raise ValueError(f'token grid {grid} x stride {stride} does not cover the image {size}')


def to_pixels(maps: np.ndarray, stride: int, size: Tuple[int, int]) -> np.ndarray:
    """(..., h, w) token maps -> (..., H, W): each token covers stride x stride pixels."""
    _check_cover(maps.shape[-2:], stride, size)
    out = np.repeat(np.repeat(maps, stride, axis=-2), stride, axis=-1)
    return out[..., :size[0], :size[1]]


def token_colours(count: int) -> np.ndarray:
    """(count, 3) distinct RGB colours in [0, 1] (golden-ratio hues)."""
    return np.array([colorsys.hsv_to_rgb((0.1 + i * 0.6180339887) % 1.0, 0.75, 0.95)
                     for i in range(count)])


def _figure(width: int, height: int):
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib import pyplot as plt
    dpi = 100
    return plt.figure(figsize=(width / dpi, height / dpi), dpi=dpi), dpi


def _fit(size: Tuple[int, int], cells: int, max_side: int,
         min_side: int = 640) -> Tuple[int, int]:
    """Figure pixels (width, height) for a cells x cells mosaic of an (H, W) image.

    The image's own size, scaled so that the figure's long side lies in
    [min_side, max_side]; the figure keeps the image's aspect ratio.
    """
    H, W = size
    long_side = cells * max(H, W)
    scale = min(max(1.0, min(min_side, max_side) / long_side), max_side / long_side)
    if W >= H:
        width = max(1, round(cells * W * scale))
        return width, max(1, round(width * H / W))
    height = max(1, round(cells * H * scale))
    return max(1, round(height * W / H)), height


def draw_token_panels(image_rgb: np.ndarray, maps: np.ndarray, stride: int,
                      labels: Sequence[str], path: str, max_side: int = 1600,
                      cmap: str = 'jet') -> str:
    """One panel per map: the image with the map overlaid, labelled; a square grid of panels.

    Args:
        image_rgb: (H, W, 3) uint8.
        maps: (n, h, w) non-negative token maps; token (i, j) covers pixels
            [i * stride, (i + 1) * stride) x [j * stride, (j + 1) * stride)
            (what lies beyond the image is padding, cut off). Each panel shows
            its map divided by the map's peak, which is printed on the panel.
        stride: pixels per token.
        labels: one per map.
        path: PNG to write.
        max_side: long side of the figure in pixels (at most).
    """
    n, h, w = maps.shape
    _check_cover((h, w), stride, image_rgb.shape[:2])
    gray = _gray(image_rgb)  # the colour map reads better on a grey image
    cells = max(1, math.ceil(math.sqrt(n)))  # rows == cols: the figure keeps the image aspect
    H, W = image_rgb.shape[:2]
    width, height = _fit((H, W), cells, max_side)
    fig, dpi = _figure(width, height)
    font = max(4.0, min(9.0, 0.06 * height / cells * 72 / dpi))
    for i in range(cells * cells):
        r, c = divmod(i, cells)
        ax = fig.add_axes((c / cells, 1 - (r + 1) / cells, 1 / cells, 1 / cells))
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_color('white')
            spine.set_linewidth(0.5)
        if i >= n:
            ax.set_facecolor('black')
            continue
        ax.imshow(gray, extent=(0, W, H, 0), cmap='gray', vmin=0, vmax=255,
                  interpolation='antialiased')
        high = float(maps[i].max())
        norm = maps[i] / high if high > 0 else np.zeros_like(maps[i])
        ax.imshow(norm, extent=(0, w * stride, h * stride, 0), cmap=cmap, vmin=0, vmax=1,
                  alpha=0.5, interpolation='nearest')
        ax.set_xlim(0, W)
        ax.set_ylim(H, 0)
        ax.text(0.02, 0.98, f'{labels[i]}  max {high:.3g}', transform=ax.transAxes,
                fontsize=font, color='white', va='top', ha='left',
                bbox=dict(facecolor='black', alpha=0.6, pad=1, linewidth=0))
    fig.savefig(path, dpi=dpi)
    _close(fig)
    return path


def draw_argmax_map(image_rgb: np.ndarray, weights: np.ndarray, stride: int,
                    labels: Sequence[str], path: str, max_side: int = 1600,
                    alpha: float = 0.55) -> str:
    """Each region coloured by the map with the largest weight there, region borders in white.

    weights: (T, h, w) token maps (``stride`` pixels per token, as in
    :func:`draw_token_panels`), e.g. recovery weights: which semantic token
    each image token recovers most from. Labels are written at the regions'
    centres when there are at most 64 maps.
    """
    H, W = image_rgb.shape[:2]
    winner = to_pixels(weights.argmax(axis=0), stride, (H, W))  # (H, W)
    colours = token_colours(weights.shape[0])
    blend = (1 - alpha) * _gray(image_rgb)[..., None] / 255.0 + alpha * colours[winner]
    border = np.zeros((H, W), dtype=bool)
    border[:, 1:] |= winner[:, 1:] != winner[:, :-1]
    border[1:, :] |= winner[1:, :] != winner[:-1, :]
    blend[border] = 1.0
    width, height = _fit((H, W), 1, max_side)
    fig, dpi = _figure(width, height)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    ax.imshow(blend, extent=(0, W, H, 0), interpolation='nearest')
    ax.set_xlim(0, W)
    ax.set_ylim(H, 0)
    if weights.shape[0] <= 64:
        font = max(4.0, min(9.0, 0.03 * height * 72 / dpi))
        for t in np.unique(winner):
            ys, xs = np.nonzero(winner == t)
            ax.text(xs.mean(), ys.mean(), labels[t], fontsize=font, color='black',
                    ha='center', va='center',
                    bbox=dict(facecolor='white', alpha=0.7, pad=1, linewidth=0))
    fig.savefig(path, dpi=dpi)
    _close(fig)
    return path


def _gray(image_rgb: np.ndarray) -> np.ndarray:
    """(H, W) luminance (ITU-R BT.601) of an RGB uint8 image, float in 0..255."""
    return image_rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _close(fig) -> None:
    from matplotlib import pyplot as plt
    plt.close(fig)


def select_tokens(maps: SemanticMaps, max_panels: int) -> np.ndarray:
    """Token indices to draw: all, or whole windows spread over the image."""
    T, S = maps.num_tokens, maps.tokens_per_window
    if T <= max_panels:
        return np.arange(T)
    windows = T // S
    count = max(1, max_panels // S)
    chosen = np.unique(np.linspace(0, windows - 1, count).round().astype(int))
    tokens = (chosen[:, None] * S + np.arange(S)).reshape(-1)
    return tokens[:max_panels]


# --------------------------------------------------------------------------- end to end


def visualize_image(model: nn.Module, image_path: str, out_dir: str,
                    short_side: Optional[int] = None, max_panels: int = 64,
                    max_side: int = 1600,
                    log: Callable[[str], None] = lambda message: None) -> List[str]:
    """Write the semantic token figures of one image; returns the written paths.

    Per generator ``G`` (see :class:`SemanticMaps`), under ``out_dir``:
    ``G_layer1.png`` and ``G_layer2.png`` (attention of each semantic token to
    the image, one panel per token), ``G_recovery.png`` (each region coloured by
    the semantic token it recovers most from; without recovery,
    ``G_assignment.png``: by the token that attends to it most in layer 2),
    ``G_recovery_tokens.png`` (recovery weight given to each token), and
    ``maps.npz`` with every map on its token grid.
    """
    image_bgr = load_image(image_path, short_side)
    image_rgb = np.ascontiguousarray(image_bgr[..., ::-1])
    size = image_rgb.shape[:2]
    inputs = image_to_input(model, image_bgr)
    all_maps = semantic_maps(model.backbone, inputs)
    os.makedirs(out_dir, exist_ok=True)
    written, arrays = [], {}
    for maps in all_maps:
        tokens = select_tokens(maps, max_panels)
        if len(tokens) < maps.num_tokens:
            log(f'{maps.name}: drawing {len(tokens)} of {maps.num_tokens} semantic tokens '
                f'(whole windows; raise --max-panels for more)')
        labels = [maps.labels[t] for t in tokens]
        prefix = osp.join(out_dir, maps.name)
        for role in ('layer1', 'layer2'):
            written.append(draw_token_panels(image_rgb, getattr(maps, role)[tokens], maps.stride,
                                             labels, f'{prefix}_{role}.png', max_side))
        if maps.recovery is not None:
            written.append(draw_argmax_map(image_rgb, maps.recovery, maps.stride, maps.labels,
                                           f'{prefix}_recovery.png', max_side))
            written.append(draw_token_panels(image_rgb, maps.recovery[tokens], maps.stride,
                                             labels, f'{prefix}_recovery_tokens.png', max_side))
        else:
            written.append(draw_argmax_map(image_rgb, maps.layer2, maps.stride, maps.labels,
                                           f'{prefix}_assignment.png', max_side))
        for role in ROLES:
            value = getattr(maps, role)
            if value is not None:
                arrays[f'{maps.name}.{role}'] = value
        arrays[f'{maps.name}.labels'] = np.array(maps.labels)
        arrays[f'{maps.name}.stride'] = np.array(maps.stride)
    arrays['image_shape'] = np.array(size)
    npz = osp.join(out_dir, 'maps.npz')
    np.savez_compressed(npz, **arrays)
    written.append(npz)
    return written


def image_paths(paths: Sequence[str]) -> List[str]:
    """Files as given; directories expanded to the images they contain (sorted)."""
    out = []
    for path in paths:
        if osp.isdir(path):
            found = sorted(osp.join(path, f) for f in os.listdir(path)
                           if f.lower().endswith(IMAGE_EXTENSIONS))
            if not found:
                raise ConfigError(f'no images ({", ".join(IMAGE_EXTENSIONS)}) in {path}')
            out += found
        elif osp.isfile(path):
            out.append(path)
        else:
            raise ConfigError(f'image {path} does not exist')
    return out


__all__ = ['SemanticMaps', 'build_visualization_model', 'draw_argmax_map', 'draw_token_panels',
           'image_paths', 'image_to_input', 'load_image', 'record_semantic_attention',
           'select_tokens', 'semantic_maps', 'to_pixels', 'token_colours', 'visualize_image']
