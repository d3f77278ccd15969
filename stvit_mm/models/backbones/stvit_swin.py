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
    """Image -> (B, N, C) tokens, grid; 'patch': 4x4 conv + LayerNorm (Swin), 'conv': ConvStem."""

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

    Each unit replaces 6 Swin blocks: a window block, a 2-layer semantic token
    generator (every 7x7 window pooled to ``pool_size`` tokens), a local and a
    global block on the semantic tokens, and a recovery block back to the
    image tokens. Dense outputs keep Swin's shapes, so necks and heads of
    stock mmdet configs work unchanged.

    STViT-Swin (``recovery=False``, the paper's Swin classification models):
    the units sit where STViT-R's do (stage 3: one unit for Swin-T, three for
    Swin-S/B, 6 layers each), every 7x7 window is summarised into 4x4 = 16
    semantic tokens (the paper's "16 semantic tokens in each window"), and
    the last unit has no recovery: it hands its semantic tokens on as a grid
    (2x2 windows x 4x4 = 8x8 at 224x224) to patch merging, so the last stage
    runs on 4x4 = 16 tokens instead of 7x7 = 49. The earlier units of
    Swin-S/B keep their recovery, as in the official STViT-R, so each unit
    starts from full-resolution tokens; the layer the last unit no longer
    needs becomes a plain window block at the start of stage 3, so every Swin block keeps
    a counterpart and Swin weights initialise the whole model. Backbone
    multiply-adds at 224x224: 0.70x (T), 0.65x (S, B) the stock Swin's.

    Any input size works: the image is padded to whole patches, every window
    op pads to whole windows and masks the padding out of attention and
    pooling, and outputs have ``ceil(H / stride)`` rows as in mmdet's Swin.

    Args:
        arch: 'tiny'/'small'/'base'/'large' (aliases 't', 'swin-t', ...), or
            a dict with ``embed_dims``, ``depths``, ``num_heads`` (any number of
            stages) and optional ``units`` (dumbbell units per stage; default:
            the deepest stage's depth // 6 in that stage), ``pool_size`` and
            ``pool_size_without_recovery`` (per side of a 7x7 window).
        preset: named settings of the switches ``stem``, ``gen_shortcut``,
            ``global_centres``, ``layer2_scope``, ``recovery_scope``,
            ``neighbourhood_inside``, ``fit_window``, ``window_padding``,
            ``unit_plan``: 'official' (the official STViT-R-Swin classifiers'),
            'official-det' (the authors' COCO detectors', ``presets.py``) or
            None. A switch passed explicitly wins over the preset; one left None
            takes the preset's value, else the default named below.
        unit_plan: 'windowed' (default) or 'detection-fork': units computed
            as the official detection fork computes them (``DetectionForkUnit``:
            its neighbourhoods and pad mask; the windowed plan's
            ``neighbourhood``, scopes and generator switches do not apply).
        window_padding: 'masked' (default: padded tokens never attended) or
            'zeros' (mmdet's Swin and the detection fork: zero padding attended).
        recovery: restore image tokens in every unit (STViT-R, for dense
            tasks). Without it the last unit of the last sparse stage hands its
            semantic token grid to the next stage (STViT, classification), less
            the tokens that pool window padding only (at sizes whose stage grid
            is not a multiple of the window).
        in_channels: image channels.
        window_size: Swin window side (7; any, e.g. 12 for the 384-pixel Swins).
        pool_size: semantic tokens per window side (3 -> 9 per window);
            default from ``arch``: with recovery its ``pool_size`` (2 for
            Swin-T, 3 for Swin-S/B/L), without its ``pool_size_without_recovery``
            (4, paper), stated for 7x7 windows and scaled to keep the image
            tokens per semantic token for others (:func:`scale_to_window`:
            window 12 -> 3, 5, 7).
        neighbourhood: image-token neighbourhood side of generator layer 1;
            default the official 10 for window 7, scaled (window 12 -> 17).
        neighbourhood_inside: official STViT-R border handling (see
            :func:`neighbourhood_index`); off (default) keeps outputs
            padding-invariant.
        layer2_scope, recovery_scope: 'local' (surrounding windows only: cost
            linear in the image size, the default for any input size) or
            'global' (official STViT-R, fine at 224x224); see
            :class:`WindowedDumbbellUnit`. Default 'local'.
        window_neighbours: side of the window neighbourhood of local scopes.
        fit_window: where a map is no larger than the window in a dim, use one
            unshifted window of the map's size there (official Swin and
            mmpretrain at 224: the 7x7 last stage is not shifted); off (the
            default, except for mmpretrain configs, see ``img_size``): pad and
            shift as mmdet's Swin does.
        semantic_layers: scopes of the blocks on semantic tokens per unit.
        gen_shortcut, global_centres: generator switches (paper and default:
            on; the official STViT-R-Swin checkpoints: off).
        layer_scale_init: layer scale of the new layers (1e-5, paper).
        stem: 'patch' (default: Swin 4x4 conv + LayerNorm) or 'conv'
            (official STViT-R).
        mlp_ratio, qkv_bias, drop_rate, drop_path_rate: as in Swin.
        out_indices: stages whose (normalised) outputs are returned, NCHW;
            default all (the last only for mmpretrain configs).
        frozen_stages: freeze the stem (0) and stages up to this index.
        norm_eval: keep BatchNorm (conv stem) in eval mode while training.
        with_cp: gradient checkpointing per block/unit.
        init_cfg: e.g. ``dict(type='Pretrained', checkpoint=...)``; Swin
            checkpoints in mmdet, mmpretrain, official Swin and official
            STViT-R-Swin layouts are converted on load, with a report.
        embed_dims, depths, num_heads, patch_size, strides, pretrained,
        img_size, pad_small_map, qk_scale, patch_norm, attn_drop_rate,
        use_abs_pos_embed, act_cfg, norm_cfg, out_after_downsample, stage_cfgs,
        patch_cfg, pretrain_img_size, convert_weights, interpolate_mode: the
            stock mmdet / mmseg / mmpretrain ``SwinTransformer`` arguments, so
            that ``type='STViTSwin'`` alone swaps the backbone of a stock config
            (``stock_args.py``). Flat sizes override ``arch`` (the sizes of a
            preset give that preset); ``patch_size`` is honoured; ``pretrained``
            means ``init_cfg`` Pretrained; ``img_size`` (or ``pad_small_map``)
            marks an mmpretrain config, whose defaults then apply (see
            ``out_indices``, ``fit_window``), and its ``stage_cfgs`` may set the
            window of every block; image sizes of absolute position
            embeddings, ``interpolate_mode`` and ``convert_weights`` are ignored
            (relative position bias only; conversion is automatic); any other
            value than the stock default raises one line saying so.
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
