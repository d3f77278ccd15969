"""STViT-R for Video Swin Transformer: 3-D window dumbbell units in stage 3 (paper Sec. 4.4).

Video Swin (Liu et al. 2022) with its stage-3 blocks regrouped into the dumbbell
units of STViT-R: each (8, 7, 7) window of image tokens is max-pooled to a small
3-D grid of semantic tokens, the semantic tokens run the middle layers, and a
recovery layer restores the image tokens, so the output keeps Video Swin's
shapes and mmaction's ``I3DHead`` works unchanged.

Checkpoints: mmaction2 ``SwinTransformer3D`` (``layers.{i}.blocks.{j}``) and
2-D Swin / STViT-R-Swin image checkpoints (official, mmpretrain, mmdet, ours)
load through a pre-hook; 2-D weights are inflated as Video Swin does.
"""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.registry import MODELS
from torch import Tensor, nn

from ...archs import units_in_deepest_stage
from ...checkpoints.conversion import Conversion
from ...checkpoints.plans import POOLED_GRID, raise_plan_mismatch
from ..layers import init_transformer_weights
from ..layers.unit import SEMANTIC_SCOPES, neighbourhood_for_window, pool_size_for_window
from .input_checks import check_input
from .stock_args import VIDEO_SWIN_STOCK_ARGS, StockArgs, resolve_convention
from .swin_family import SwinFamilyBackbone

Size3 = Tuple[int, int, int]
OUT_TYPES = ('tuple', 'tensor')


def _triple(value: Union[int, Sequence[int]], name: str) -> Size3:
    values = (value, ) * 3 if isinstance(value, int) else tuple(value)
    if len(values) != 3 or not all(isinstance(v, int) and v >= 1 for v in values):
        raise ValueError(f'STViTVideoSwin: {name} must be one positive int or three (T, H, W), '
                         f'got {value!r}')
    return values


class PatchEmbed3D(nn.Module):
    """Clip (B, C, T, H, W) -> tokens (B, N, C) and grid; T/H/W zero-padded to the patch.

    Names (``proj``, ``norm``) follow mmaction2's ``PatchEmbed3D``.
    """

    def __init__(self, in_channels: int, dim: int, patch_size: Size3) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv3d(in_channels, dim, patch_size, stride=patch_size)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor) -> Tuple[Tensor, Size3]:
        pt, ph, pw = self.patch_size
        T, H, W = x.shape[-3:]
        x = F.pad(x, (0, (-W) % pw, 0, (-H) % ph, 0, (-T) % pt))  # end of each dim
        # channels-last: the token view below is then contiguous (no transposing copy before
        # the norm) and mkldnn's Conv3d is faster on it on CPU; same values (docs/speed.md)
        maps = self.proj(x.contiguous(memory_format=torch.channels_last_3d))  # (B, C, T', H', W')
        return self.norm(maps.flatten(2).transpose(1, 2)), tuple(maps.shape[2:])


@MODELS.register_module()
class STViTVideoSwin(SwinFamilyBackbone):
    """Video Swin Transformer with STViT(-R) dumbbell units (``recovery=True``: STViT-R).

    Each unit replaces 6 Video Swin blocks of stage 3: a window block, a
    2-layer semantic token generator (every ``window_size`` window max-pooled
    to ``pool_size`` tokens), a local and a global block on the semantic
    tokens, and a recovery block back to the image tokens.

    Any clip length and frame size work: the clip is padded to whole patches,
    every window op pads to whole windows and masks the padding out of
    attention and pooling, and the stage-``i`` output has ``ceil(T / 2)``
    frames and ``ceil(H / 2**(i + 2))`` rows. A dim that fits in one window is
    not shifted (Video Swin), so on sizes that are multiples of the windows
    the unsparsified model computes exactly mmaction2's ``SwinTransformer3D``.

    Args:
        arch: 'tiny'/'small'/'base'/'large' (aliases 't', 'video-swin-t', ...),
            or a dict with ``embed_dims``, ``depths``, ``num_heads`` and
            optional ``units`` (units per stage), ``pool_size``,
            ``neighbourhood``.
        recovery: restore image tokens in every unit (STViT-R). Without it
            the last unit of the last sparse stage hands its semantic token
            grid to the next stage (STViT).
        in_channels: clip channels.
        patch_size: (T, H, W) patch of the 3-D patch embedding.
        window_size: (T, H, W) attention window.
        pool_size: (T, H, W) semantic tokens per window; default from
            ``arch`` (H, W stated for 7x7 windows, scaled for others as in
            :class:`STViTSwin`; T at most the window's).
        neighbourhood: (T, H, W) image-token neighbourhood of generator
            layer 1; default from ``arch``, else the window's T and the
            official 10 around 7, scaled, in H and W.
        neighbourhood_inside, layer2_scope, recovery_scope, window_neighbours,
            semantic_layers, gen_shortcut, global_centres, layer_scale_init:
            as in :class:`STViTSwin` (local scopes keep the cost linear in
            the number of tokens). There is no ``preset``: no official video
            STViT-R exists, and the official conv stem has no 3-D counterpart.
        mlp_ratio, qkv_bias, drop_rate, drop_path_rate: as in Video Swin.
        out_indices: stages whose (normalised) outputs are returned, NCTHW.
        out_type: 'tuple' (one tensor per ``out_indices``) or 'tensor' (the
            single output itself, what mmaction's ``I3DHead`` expects; needs
            exactly one index). Default 'tuple', except under the 'mmaction' convention
            with one index: 'tensor', as ``SwinTransformer3D`` returns.
        frozen_stages: freeze the patch embedding (0) and stages up to this index.
        with_cp: gradient checkpointing per block/unit.
        init_cfg: e.g. ``dict(type='Pretrained', checkpoint=...)``. After a
            load of a foreign checkpoint ``last_load_report`` holds which keys
            were loaded, inflated and not loaded, and which model tensors were
            missing (also logged); after a load of our own 3-D layout it is None.
        convention: 'mmaction' or another of ``stock_args.CONVENTIONS``; default: the
            registry scope building the model (a config's ``default_scope``).
        **stock: the stock ``SwinTransformer3D`` arguments, taken by ``StockArgs``:
            ``pretrained`` (``init_cfg`` shorthand), ``pretrained2d`` (what it must hold:
            True a 2-D image model, inflated on load; False a 3-D one), and options
            refused in one line unless at their stock defaults.
    """
    # Semantic tokens per (8, 7, 7) window of 392 image tokens: 2 temporal bins (a window spans
    # 16 frames of a slowly changing clip) times the spatial grid of the 2-D STViTSwin plans,
    # 2x2 for Swin-T (1 unit) and the official 3x3 for Swin-S/B (3 units). Backbone GMACs at
    # 32x224x224 (tools/get_flops.py): T 62.86 vs Video Swin-T 87.76 (0.716x; 2x3x3 tokens would
    # give 0.732x, 4x3x3 0.762x: the window and recovery blocks dominate a unit's cost),
    # S 95.15 vs 165.68 (0.574x; 2x2x2 0.549x, 4x3x3 0.622x).
    arch_family = 'video-swin'
    arch_defaults = dict(units=units_in_deepest_stage, pool_size=(2, 2, 2), neighbourhood=None)
    stock_arguments = tuple(VIDEO_SWIN_STOCK_ARGS)

    def __init__(self, arch: Union[str, dict] = 'tiny', recovery: bool = True,
                 in_channels: int = 3, patch_size: Sequence[int] = (2, 4, 4),
                 window_size: Sequence[int] = (8, 7, 7),
                 pool_size: Optional[Sequence[int]] = None,
                 neighbourhood: Optional[Sequence[int]] = None,
                 neighbourhood_inside: bool = False, layer2_scope: str = 'local',
                 recovery_scope: str = 'local', window_neighbours: int = 3,
                 semantic_layers: Sequence[str] = SEMANTIC_SCOPES, gen_shortcut: bool = True,
                 global_centres: bool = True, layer_scale_init: Optional[float] = 1e-5,
                 mlp_ratio: float = 4.0, qkv_bias: bool = True, drop_rate: float = 0.0,
                 drop_path_rate: float = 0.1, out_indices: Sequence[int] = (3, ),
                 out_type: Optional[str] = None, frozen_stages: int = -1, with_cp: bool = False,
                 init_cfg: Optional[Union[dict, List[dict]]] = None,
                 convention: Optional[str] = None, **stock) -> None:
        stock = StockArgs('STViTVideoSwin', VIDEO_SWIN_STOCK_ARGS, stock)
        convention = resolve_convention('STViTVideoSwin', convention)
        init_cfg = stock.init_cfg(init_cfg)
        pretrained, pretrained2d = stock['pretrained'], stock['pretrained2d']
        super().__init__(init_cfg=init_cfg)
        arch = self._resolve_arch(arch)
        self.patch_size = _triple(patch_size, 'patch_size')
        self.window_size = window = _triple(window_size, 'window_size')
        stock.check(arch)
        if pool_size is None:  # spatial sizes are stated for 7x7 windows
            pt, ph, pw = _triple(arch['pool_size'], 'pool_size')
            pool_size = (min(pt, window[0]), pool_size_for_window(ph, window[1]),
                         pool_size_for_window(pw, window[2]))
        pool = _triple(pool_size, 'pool_size')
        if neighbourhood is None:
            neighbourhood = arch['neighbourhood'] or (
                window[0], neighbourhood_for_window(window[1]),
                neighbourhood_for_window(window[2]))
        near = _triple(neighbourhood, 'neighbourhood')
        if out_type is None:  # mmaction2's convention: one output is the tensor itself
            out_type = 'tensor' if convention == 'mmaction' and len(out_indices) == 1 else 'tuple'
        self.convention = convention
        if any(p > w for p, w in zip(pool, window)):
            raise ValueError(f'STViTVideoSwin: semantic grid per window (pool_size) {pool} is '
                             f'larger than the window {window}; use at most the window')
        if out_type not in OUT_TYPES:
            raise ValueError(f'STViTVideoSwin: out_type must be one of {OUT_TYPES}, got '
                             f'{out_type!r}')
        dims = [arch['embed_dims'] * 2**i for i in range(len(arch['depths']))]
        self._check_out_indices(out_indices, len(dims))
        if out_type == 'tensor' and len(out_indices) != 1:
            raise ValueError(f"STViTVideoSwin: out_type='tensor' needs exactly one out index, "
                             f'got {tuple(out_indices)}')
        self.arch_settings, self.recovery = arch, recovery
        self.pool_size, self.neighbourhood = pool, near
        self.in_channels, self.out_indices = in_channels, tuple(out_indices)
        self.out_type, self.frozen_stages = out_type, frozen_stages
        self.pretrained, self.pretrained2d = pretrained, pretrained2d
        self.num_features = dims
        unit_cfg = dict(pool_size=pool, neighbourhood=near,
                        semantic_layers=tuple(semantic_layers),
                        layer_scale_init=layer_scale_init, gen_shortcut=gen_shortcut,
                        global_centres=global_centres, neighbourhood_inside=neighbourhood_inside,
                        layer2_scope=layer2_scope, recovery_scope=recovery_scope,
                        window_neighbours=window_neighbours)
        self.patch_embed = PatchEmbed3D(in_channels, dims[0], self.patch_size)
        self.drop_after_pos = nn.Dropout(drop_rate)
        # Video Swin's window rule: a dim no larger than the window is one unshifted window
        self._build_stages(arch, window, unit_cfg, recovery, mlp_ratio, qkv_bias, drop_rate,
                           drop_path_rate, with_cp, fit_window=True)

        init_transformer_weights(self)
        self._install_checkpoint_hooks()
        self._freeze_stages()

    # ------------------------------------------------------------------ checkpoints

    def _inflate(self, key: str, value: Tensor, target: Tensor) -> Optional[Tuple[Tensor, str]]:
        """A 2-D image tensor -> ``target``'s 3-D shape (Video Swin's inflation), or None.

        Patch embedding: the kernel is repeated over the ``T`` patch frames and
        divided by ``T``, so a static clip embeds like the image. Relative
        position bias: a (2h-1)(2w-1) table (bicubic-resized first if its
        window differs) is repeated for every temporal offset, so a static
        clip attends like the image. Global centres G of a 2-D unit with the
        same spatial semantic grid: repeated for every temporal bin.
        """
        if key == 'patch_embed.proj.weight' and value.ndim == 4 and target.ndim == 5:
            if value.shape[:2] != target.shape[:2] or value.shape[2:] != target.shape[3:]:
                return None
            frames = target.shape[2]
            return (value.unsqueeze(2).repeat(1, 1, frames, 1, 1) / frames,
                    f'2-D kernel repeated over {frames} frames and divided by {frames}')
        if key.endswith(POOLED_GRID) and value.numel() == 2 and target.numel() == 3:
            # the record of a 2-D generator's pool size: its grid must be ours in space
            if not torch.equal(value.cpu(), target.cpu()[1:]):
                raise_plan_mismatch('STViTVideoSwin', (
                    f'{key} pools each window to {"x".join(map(str, value.tolist()))} in the '
                    f'2-D checkpoint, {"x".join(map(str, target.tolist()))} (T x H x W) in the '
                    'model'))
            return target.clone(), 'the 2-D grid per window with the model\'s temporal bins'
        if key.endswith('generator.centres') and value.ndim == 3 and target.ndim == 3:
            pt, ph, pw = self.pool_size
            if value.shape[1] != ph * pw or target.shape[1] != pt * ph * pw:
                return None
            return (value.repeat(1, pt, 1),
                    f'{ph}x{pw} centres repeated for {pt} temporal bins')
        if key.endswith('attn.relative_position_bias_table') and value.ndim == 2:
            rows, heads = value.shape
            wt, wh, ww = self.window_size
            side = round(rows**0.5)
            if heads != target.shape[1] or side * side != rows or rows == target.shape[0]:
                return None
            spatial = (2 * wh - 1, 2 * ww - 1)
            how = ''
            if (side, side) != spatial:
                value = F.interpolate(value.t().reshape(1, heads, side, side), size=spatial,
                                      mode='bicubic', align_corners=False)
                value = value.reshape(heads, -1).t()
                how = f'bicubic-resized {side}x{side} -> {spatial[0]}x{spatial[1]}, '
            table = value.repeat(2 * wt - 1, 1)
            if table.shape != target.shape:
                return None
            return table, how + f'2-D table repeated for {2 * wt - 1} temporal offsets'
        return None

    def _fit_to_model(self, conv: Conversion, layout: Optional[str]) -> Dict[str, str]:
        """Inflate 2-D tensors (:meth:`_inflate`); drop what still does not fit, with a reason.

        A checkpoint in our own 3-D layout passes untouched (strict loading
        keeps its meaning): nothing is inflated and nothing dropped.
        """
        target = self.state_dict()
        inflated = {}
        for key, value in list(conv.tensors.items()):
            if key in target and value.shape != target[key].shape:
                result = self._inflate(key, value, target[key])
                if result is not None:
                    conv.tensors[key], inflated[key] = result
        if layout is None and not inflated:
            return {}
        for key, value in list(conv.tensors.items()):
            if key not in target:
                conv.drop(key, 'no such tensor in this model')
            elif value.shape != target[key].shape:
                conv.drop(key, f'shape {tuple(value.shape)} does not fit '
                          f'{tuple(target[key].shape)}')
            else:
                continue
            del conv.tensors[key]
        return inflated

    def _load_report(self, layout: Optional[str], conv: Conversion,
                     adapted: Dict[str, str]) -> dict:
        """The shared report plus what was inflated and the dims of the source (2 or 3)."""
        return dict(super()._load_report(layout, conv, adapted), inflated=adapted,
                    source_dims=2 if adapted else 3)

    def init_weights(self) -> None:
        super().init_weights()
        if self.pretrained is not None and self.pretrained2d is not None:
            report = self.last_load_report
            dims = report['source_dims'] if report else 3
            if dims != (2 if self.pretrained2d else 3):
                raise ValueError(f'STViTVideoSwin: pretrained2d={self.pretrained2d} but '
                                 f'{self.pretrained} holds a {dims}-D model')

    # ------------------------------------------------------------------ forward

    def _check_input(self, x: Tensor) -> None:
        check_input(x, 'STViTVideoSwin', self.in_channels, 'NCTHW')

    def forward(self, x: Tensor) -> Union[Tuple[Tensor, ...], Tensor]:
        """Clips (B, C, T, H, W) -> (B, C_i, T_i, H_i, W_i) per ``out_indices``.

        A tuple, or with ``out_type='tensor'`` the single output.
        """
        self._check_input(x)
        outs = self.forward_stages(*self.patch_embed(x))
        return outs[0] if self.out_type == 'tensor' else tuple(outs)
