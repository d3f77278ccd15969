"""STViT / STViT-R for Swin Transformer: dumbbell units in the sparse stages (paper Sec. 3.4)."""
from collections import OrderedDict
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.registry import MODELS
from torch import Tensor, nn

from ...archs import size_for, units_in_deepest_stage
from ..layers import init_transformer_weights
from ..layers.unit import SEMANTIC_SCOPES, neighbourhood_for_window, pool_size_for_window
from .input_checks import check_input
from .presets import resolve_switches
from .stock_args import SWIN_STOCK_ARGS, StockArgs, resolve_convention
from .swin_family import SwinFamilyBackbone

# STViT-Swin (no recovery, classification): 4x4 = 16 semantic tokens per 7x7 window, the
# paper's "16 semantic tokens in each window" for Swin-T/S/B.
POOL_SIZE_WITHOUT_RECOVERY = 4


class ConvStem(nn.Sequential):
    """Two 3x3 stride-2 conv+BN layers with Hardswish (official STViT-R-Swin stem).

    Names (``proj.0.c``, ``proj.0.bn``, ...) follow the official checkpoints.
    """

    def __init__(self, in_channels: int, dim: int) -> None:
        def conv_bn(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(OrderedDict(c=nn.Conv2d(cin, cout, 3, 2, 1, bias=False),
                                             bn=nn.BatchNorm2d(cout)))
        super().__init__(conv_bn(in_channels, dim // 2), nn.Hardswish(), conv_bn(dim // 2, dim),
                         nn.Hardswish())


class PatchEmbed(nn.Module):
    """Image -> (B, N, C) tokens and grid; 'patch': 4x4 conv + LayerNorm, 'conv': ConvStem."""

    def __init__(self, in_channels: int, dim: int, stem: str, patch_size: int = 4) -> None:
        super().__init__()
        self.stem, self.patch_size = stem, patch_size
        if stem == 'patch':
            self.proj = nn.Conv2d(in_channels, dim, patch_size, stride=patch_size)
            self.norm = nn.LayerNorm(dim)
        elif stem == 'conv':
            if patch_size != 4:
                raise ValueError('STViTSwin: the conv stem downsamples by 4; use patch_size=4')
            self.proj = ConvStem(in_channels, dim)
            self.norm = None
        else:
            raise ValueError(f"STViTSwin: unknown stem {stem!r}; expected 'patch' or 'conv'")

    def forward(self, x: Tensor) -> Tuple[Tensor, Tuple[int, int]]:
        # pad right/bottom to whole patches, as mmdet does (the detection fork's conv stem too:
        # the stem's border outputs then see the padding, not the convolutions' own)
        H, W = x.shape[-2:]
        x = F.pad(x, (0, (-W) % self.patch_size, 0, (-H) % self.patch_size))
        if self.norm is not None:
            # channels-last: the token view below is then contiguous, no transposing copy
            # before the norm; same values (not so for the conv stem's 3x3 convs)
            x = x.contiguous(memory_format=torch.channels_last)
        maps = self.proj(x)
        grid = (maps.shape[2], maps.shape[3])
        tokens = maps.flatten(2).transpose(1, 2)
        return (tokens if self.norm is None else self.norm(tokens)), grid


@MODELS.register_module()
class STViTSwin(SwinFamilyBackbone):
    """Swin Transformer with STViT(-R) dumbbell units (``recovery=True``: STViT-R).

    Each unit replaces 6 Swin blocks (window block, 2-layer semantic token generator, local and
    global semantic blocks, recovery); outputs keep Swin's shapes, so stock necks and heads work.
    Without recovery the last unit hands its semantic token grid to patch merging (STViT-Swin).
    Any input size works: images pad to whole patches and windows, padding is masked.

    Args:
        arch: a name of ``ARCHS['swin']`` (``archs.py``) or a dict (``embed_dims``, ``depths``,
            ``num_heads``; optional ``units``, ``pool_size``, ``pool_size_without_recovery``).
        recovery: restore image tokens in every unit (STViT-R).
        preset: 'official', 'official-det' or None: a starting point for the switches
            (``presets.py``); a switch passed explicitly wins.
        stem, gen_shortcut, global_centres, layer2_scope, recovery_scope,
            neighbourhood_inside, fit_window, window_padding, unit_plan: the switches
            (``presets.py`` says what each does and its default).
        window_size, pool_size, neighbourhood, window_neighbours, semantic_layers: unit
            geometry; ``None`` scales the 7x7-window defaults (:func:`scale_to_window`).
        in_channels, patch_size, mlp_ratio, qkv_bias, drop_rate, drop_path_rate,
            layer_scale_init, out_indices, frozen_stages, norm_eval, with_cp, init_cfg:
            as in Swin; checkpoints of known layouts are converted on load.
        convention: 'mmdet' (mmdet/mmseg: every stage out, maps padded to windows) or
            'mmpretrain' (the last stage out, small maps one window); default: the registry
            scope building the model (a config's ``default_scope``), else 'mmdet'.
        **stock: the stock ``SwinTransformer`` arguments (``embed_dims``, ``depths``,
            ``pretrained``, ``img_size``, ...), taken by :class:`StockArgs`, so that
            ``type='STViTSwin'`` swaps a stock config's backbone.
    """
    arch_defaults = dict(units=units_in_deepest_stage, pool_size=3,
                         pool_size_without_recovery=POOL_SIZE_WITHOUT_RECOVERY)
    stock_arguments = tuple(SWIN_STOCK_ARGS)

    def __init__(self, arch: Union[str, dict] = 'tiny', recovery: bool = True,
                 preset: Optional[str] = None,
                 in_channels: int = 3, window_size: int = 7, pool_size: Optional[int] = None,
                 neighbourhood: Optional[int] = None, neighbourhood_inside: Optional[bool] = None,
                 layer2_scope: Optional[str] = None, recovery_scope: Optional[str] = None,
                 window_neighbours: Optional[int] = None, fit_window: Optional[bool] = None,
                 window_padding: Optional[str] = None, unit_plan: Optional[str] = None,
                 semantic_layers: Optional[Sequence[str]] = None,
                 gen_shortcut: Optional[bool] = None, global_centres: Optional[bool] = None,
                 layer_scale_init: Optional[float] = 1e-5,
                 stem: Optional[str] = None, mlp_ratio: float = 4.0, qkv_bias: bool = True,
                 drop_rate: float = 0.0, drop_path_rate: float = 0.1,
                 out_indices: Optional[Sequence[int]] = None, frozen_stages: int = -1,
                 norm_eval: bool = False, with_cp: bool = False,
                 init_cfg: Optional[Union[dict, List[dict]]] = None, patch_size: int = 4,
                 convention: Optional[str] = None, **stock) -> None:
        stock = StockArgs('STViTSwin', SWIN_STOCK_ARGS, stock)
        convention = resolve_convention('STViTSwin', convention)
        init_cfg = stock.init_cfg(init_cfg)
        super().__init__(init_cfg=init_cfg)
        switches = resolve_switches('STViTSwin', preset, dict(
            stem=stem, gen_shortcut=gen_shortcut, global_centres=global_centres,
            layer2_scope=layer2_scope, recovery_scope=recovery_scope,
            neighbourhood_inside=neighbourhood_inside, fit_window=fit_window,
            window_padding=window_padding, unit_plan=unit_plan))
        self.preset = preset
        self.unit_plan = switches['unit_plan']
        fit_window = switches.pop('fit_window')
        stem = switches.pop('stem')
        window_padding, unit_plan = switches.pop('window_padding'), switches.pop('unit_plan')
        if unit_plan == 'detection-fork':
            windowed_only = dict(
                neighbourhood=neighbourhood, layer2_scope=layer2_scope,
                recovery_scope=recovery_scope, window_neighbours=window_neighbours,
                neighbourhood_inside=neighbourhood_inside, semantic_layers=semantic_layers)
            given = sorted(k for k, v in windowed_only.items() if v is not None)
            given += [f'{k}={switches[k]}' for k, fork in (('gen_shortcut', True),
                                                           ('global_centres', False))
                      if switches[k] != fork]
            if given:
                raise ValueError("STViTSwin: unit_plan='detection-fork' fixes its units "
                                 f"(preset='official-det'); remove {', '.join(given)}")
        window_size = stock.window(window_size)
        arch = self._resolve_arch(self._arch_with_sizes(arch, stock.sizes()))
        num_stages = len(arch['depths'])
        stock.check(arch, patch_size)
        # mmpretrain's classifier conventions: stage 4 only; a map no larger than the window is
        # one unshifted window unless pad_small_map. mmdet/mmseg's: every stage, padded.
        mmpretrain = convention == 'mmpretrain'
        self.convention = convention
        if out_indices is None:
            out_indices = (num_stages - 1, ) if mmpretrain else tuple(range(num_stages))
        if fit_window is None:
            fit_window = mmpretrain and not stock['pad_small_map']
        if pool_size is None:
            pool_size = pool_size_for_window(
                arch['pool_size' if recovery else 'pool_size_without_recovery'], window_size)
        if neighbourhood is None:
            neighbourhood = neighbourhood_for_window(window_size)
        dims = [arch['embed_dims'] * 2**i for i in range(num_stages)]
        if pool_size > window_size:
            raise ValueError(f'STViTSwin: pool_size {pool_size} (semantic grid per window) is '
                             f'larger than window_size {window_size}; use at most the window')
        self._check_out_indices(out_indices, len(dims))
        self.arch_settings, self.recovery = arch, recovery
        self.in_channels, self.out_indices = in_channels, tuple(out_indices)
        self.frozen_stages, self.norm_eval = frozen_stages, norm_eval
        self.num_features = dims
        unit_cfg = dict(pool_size=(pool_size, ) * 2, layer_scale_init=layer_scale_init)
        if unit_plan != 'detection-fork':
            unit_cfg.update(neighbourhood=(neighbourhood, ) * 2, **switches,
                            semantic_layers=tuple(SEMANTIC_SCOPES if semantic_layers is None
                                                  else semantic_layers),
                            window_neighbours=3 if window_neighbours is None else window_neighbours)
        self.patch_embed = PatchEmbed(in_channels, dims[0], stem, patch_size)
        self.drop_after_pos = nn.Dropout(drop_rate)
        self._build_stages(arch, (window_size, ) * 2, unit_cfg, recovery, mlp_ratio, qkv_bias,
                           drop_rate, drop_path_rate, with_cp, fit_window, window_padding,
                           unit_plan)

        init_transformer_weights(self)
        self._install_checkpoint_hooks()
        self._freeze_stages()

    @classmethod
    def _arch_with_sizes(cls, arch: Union[str, dict], sizes: dict) -> Union[str, dict]:
        """``arch`` with the stock flat sizes (mmdet/mmseg ``embed_dims``, ``depths``,
        ``num_heads``) put in; sizes of a named arch give that arch (with its pool sizes)."""
        if not sizes:
            return arch
        base = cls._resolve_arch(arch) if isinstance(arch, str) else dict(arch)
        merged = {k: v for k, v in base.items() if k in ('embed_dims', 'depths', 'num_heads')}
        merged.update({k: tuple(v) if isinstance(v, (list, tuple)) else v
                       for k, v in sizes.items()})
        return size_for(cls.arch_family, merged) or merged

    def _check_input(self, x: Tensor) -> None:
        check_input(x, 'STViTSwin', self.in_channels, 'NCHW')

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """Images (B, C, H, W) -> tuple of (B, C_i, H_i, W_i), one per ``out_indices``."""
        self._check_input(x)
        return tuple(self.forward_stages(*self.patch_embed(x)))
