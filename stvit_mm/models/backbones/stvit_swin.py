"""STViT / STViT-R for Swin Transformer: dumbbell units in the sparse stages (paper Sec. 3.4)."""
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch.nn.functional as F
from mmengine.registry import MODELS
from torch import Tensor, nn

from ..layers import init_transformer_weights
from ..layers.unit import SEMANTIC_SCOPES, neighbourhood_for_window, pool_size_for_window
from .input_checks import check_input
from .presets import resolve_switches
from .stock_args import check_strides, check_unsupported, stage_window
from .swin_family import SwinFamilyBackbone, units_in_deepest_stage


# STViT-Swin (no recovery, classification): 4x4 = 16 semantic tokens per 7x7 window, the
# paper's "16 semantic tokens in each window" for Swin-T/S/B.
POOL_SIZE_WITHOUT_RECOVERY = 4


def _arch(embed_dims: int, depths: Sequence[int], num_heads: Sequence[int],
          pool_size: int) -> dict:
    # pool sizes are stated for 7x7 windows (scaled for others, see scale_to_window)
    return dict(embed_dims=embed_dims, depths=tuple(depths), num_heads=tuple(num_heads),
                units=units_in_deepest_stage(depths), pool_size=pool_size,
                pool_size_without_recovery=POOL_SIZE_WITHOUT_RECOVERY)


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
    """Image -> (B, N, C) tokens and grid; 'patch': 4x4 conv + LayerNorm (Swin), 'conv': ConvStem."""

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
        arch: a name of :data:`SWIN_ARCHS` or a dict (``embed_dims``, ``depths``,
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
        embed_dims, depths, num_heads and the other stock ``SwinTransformer`` arguments are
            taken by ``stock_args.py``, so ``type='STViTSwin'`` swaps a stock config's backbone.
    """
    # Swin-S/B/L: 3 units of 3x3 semantic tokens per 7x7 window (official STViT-R). Swin-T (not
    # in the paper) has a single unit; 2x2 tokens per window (about 12 image tokens per semantic
    # token, DeiT's ratio) bring its backbone to ~0.73x Swin-T's FLOPs at 800x1333.
    arch_zoo: Dict[str, dict] = {
        **dict.fromkeys(['t', 'tiny', 'swin-t', 'swin-tiny'],
                        _arch(96, (2, 2, 6, 2), (3, 6, 12, 24), pool_size=2)),
        **dict.fromkeys(['s', 'small', 'swin-s', 'swin-small'],
                        _arch(96, (2, 2, 18, 2), (3, 6, 12, 24), pool_size=3)),
        **dict.fromkeys(['b', 'base', 'swin-b', 'swin-base'],
                        _arch(128, (2, 2, 18, 2), (4, 8, 16, 32), pool_size=3)),
        **dict.fromkeys(['l', 'large', 'swin-l', 'swin-large'],
                        _arch(192, (2, 2, 18, 2), (6, 12, 24, 48), pool_size=3)),
    }

    arch_defaults = dict(units=units_in_deepest_stage, pool_size=3,
                         pool_size_without_recovery=POOL_SIZE_WITHOUT_RECOVERY)

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
                 init_cfg: Optional[Union[dict, List[dict]]] = None,
                 # the stock mmdet / mmseg / mmpretrain SwinTransformer's own arguments
                 embed_dims: Optional[int] = None, depths: Optional[Sequence[int]] = None,
                 num_heads: Optional[Sequence[int]] = None, patch_size: int = 4,
                 strides: Optional[Sequence[int]] = None, pretrained: Optional[str] = None,
                 img_size: Optional[Union[int, Sequence[int]]] = None,
                 pad_small_map: Optional[bool] = None, qk_scale: Optional[float] = None,
                 patch_norm: bool = True, attn_drop_rate: float = 0.0,
                 use_abs_pos_embed: bool = False, act_cfg: Optional[dict] = None,
                 norm_cfg: Optional[dict] = None, out_after_downsample: bool = False,
                 stage_cfgs: Optional[dict] = None, patch_cfg: Optional[dict] = None,
                 pretrain_img_size: Optional[Union[int, Sequence[int]]] = None,
                 convert_weights: Optional[bool] = None,
                 interpolate_mode: Optional[str] = None) -> None:
        if pretrained is not None:  # mmdet/mmseg's deprecated shorthand
            if init_cfg is not None:
                raise ValueError('STViTSwin: give either pretrained or init_cfg, not both')
            init_cfg = dict(type='Pretrained', checkpoint=pretrained)
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
        if stage_cfgs:  # mmpretrain's 384-pixel configs set the window there
            window_size = stage_window(stage_cfgs) or window_size
        arch = self._resolve_arch(self._arch_with_sizes(arch, embed_dims, depths, num_heads))
        num_stages = len(arch['depths'])
        check_strides('STViTSwin', strides, patch_size, num_stages)
        check_unsupported('STViTSwin', qk_scale, patch_norm, attn_drop_rate, use_abs_pos_embed,
                          act_cfg, norm_cfg, out_after_downsample, stage_cfgs, patch_cfg,
                          head_dim=arch['embed_dims'] // arch['num_heads'][0])
        # img_size is mmpretrain's argument: its classifier conventions apply (stage 4 only;
        # a map no larger than the window is one unshifted window unless pad_small_map)
        mmpretrain = img_size is not None or pad_small_map is not None
        if out_indices is None:
            out_indices = (num_stages - 1, ) if mmpretrain else tuple(range(num_stages))
        if fit_window is None:
            fit_window = mmpretrain and not pad_small_map
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
                            semantic_layers=tuple(semantic_layers or SEMANTIC_SCOPES),
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
    def _arch_with_sizes(cls, arch: Union[str, dict], embed_dims: Optional[int],
                         depths: Optional[Sequence[int]],
                         num_heads: Optional[Sequence[int]]) -> Union[str, dict]:
        """``arch`` with the stock flat sizes (mmdet/mmseg ``embed_dims``, ``depths``,
        ``num_heads``) put in; sizes of a preset give that preset (with its pool sizes)."""
        sizes = {k: v for k, v in (('embed_dims', embed_dims), ('depths', depths),
                                   ('num_heads', num_heads)) if v is not None}
        if not sizes:
            return arch
        base = cls._resolve_arch(arch) if isinstance(arch, str) else dict(arch)
        merged = {k: v for k, v in base.items() if k in ('embed_dims', 'depths', 'num_heads')}
        merged.update({k: tuple(v) if isinstance(v, (list, tuple)) else v
                       for k, v in sizes.items()})
        for name, preset in cls.arch_zoo.items():
            if all(preset[k] == merged[k] for k in merged):
                return name
        return merged

    def _check_input(self, x: Tensor) -> None:
        check_input(x, 'STViTSwin', self.in_channels, 'NCHW')

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """Images (B, C, H, W) -> tuple of (B, C_i, H_i, W_i), one per ``out_indices``."""
        self._check_input(x)
        return tuple(self.forward_stages(*self.patch_embed(x)))
