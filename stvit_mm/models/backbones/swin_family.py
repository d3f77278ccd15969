"""What STViTSwin and STViTVideoSwin share: patch merging, the stage (window blocks, then
dumbbell units), and the backbone base class (arch resolution, stages, freezing, forward)."""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.utils.checkpoint as cp
from mmengine.model import BaseModule
from torch import Tensor, nn

from ...archs import resolve_arch
from ...checkpoints.load_hook import ConvertsForeignCheckpoints
from ..layers import drop_path_rates
from ..layers.fork_unit import DetectionForkUnit
from ..layers.grouping import pad_grid, tokens_to_map
from ..layers.unit import SEMANTIC_SCOPES, WindowedDumbbellUnit
from ..layers.window import WindowBlock


class PatchMerging(nn.Module):
    """2x2 spatial neighbours -> one token with twice the channels (Swin), odd grids zero-padded.

    Merges the last two grid dims (H, W); leading dims (video frames) stay, as
    in Video Swin. Concatenation order (0,0), (1,0), (0,1), (1,1) as in the
    official Swin; mmdet/mmpretrain checkpoints (unfold order) are reordered on load.
    """

    def __init__(self, dim: int, out_dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(4 * dim)
        self.reduction = nn.Linear(4 * dim, out_dim, bias=False)

    def forward(self, x: Tensor, grid: Tuple[int, ...]) -> Tuple[Tensor, Tuple[int, ...]]:
        B, N, C = x.shape
        x, _ = pad_grid(x.reshape(B, *grid, C), (1, ) * (len(grid) - 2) + (2, 2))
        x = torch.cat([x[..., 0::2, 0::2, :], x[..., 1::2, 0::2, :], x[..., 0::2, 1::2, :],
                       x[..., 1::2, 1::2, :]], dim=-1)
        new_grid = tuple(x.shape[1:-1])
        return self.reduction(self.norm(x.reshape(B, -1, 4 * C))), new_grid


# How a unit computes: ours ('windowed', the paper's and the classification code's layers with
# masked padding) or the authors' COCO detectors' ('detection-fork', layers/fork_unit.py).
UNIT_PLANS = {'windowed': WindowedDumbbellUnit, 'detection-fork': DetectionForkUnit}


class SwinStage(nn.Module):
    """Plain (shifted) window blocks, then dumbbell units; ``downsample`` at the end.

    Serves Swin (2-D windows) and Video Swin (3-D windows, ``fit_window``).
    ``window_padding`` is the plain blocks' (see ``WindowBlock``); ``unit_plan``
    a key of :data:`UNIT_PLANS` (a 'detection-fork' unit pads as the fork does).
    """

    def __init__(self, dim: int, num_heads: int, depth: int, num_units: int,
                 window: Sequence[int], unit_cfg: dict, recover_last: bool, mlp_ratio: float,
                 qkv_bias: bool, drop: float, drop_path: List[float], out_dim: Optional[int],
                 with_cp: bool, fit_window: bool = False, window_padding: str = 'masked',
                 unit_plan: str = 'windowed') -> None:
        super().__init__()
        if unit_plan not in UNIT_PLANS:
            raise ValueError(f'unit_plan must be one of {sorted(UNIT_PLANS)}, got {unit_plan!r}')
        # window block, 2 generator layers, semantic blocks (the fork's: local, global), recovery
        unit_depth = 3 + len(unit_cfg.get('semantic_layers', SEMANTIC_SCOPES)) + 1
        plain = depth - num_units * unit_depth + (0 if recover_last or not num_units else 1)
        if plain < 0:
            raise ValueError(f'a stage of depth {depth} cannot hold {num_units} units of '
                             f'{unit_depth} layers; use fewer units or a deeper stage')
        self.window, self.with_cp = tuple(window), with_cp
        common = dict(dim=dim, num_heads=num_heads, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias,
                      fit_window=fit_window)
        shift = tuple(w // 2 for w in self.window)
        rates = iter(drop_path)
        self.blocks = nn.ModuleList([
            WindowBlock(window=self.window, shift=shift if i % 2 else None, drop=drop,
                        drop_path=next(rates), padding=window_padding, **common)
            for i in range(plain)])
        self.units = nn.ModuleList()
        for u in range(num_units):
            recovery = recover_last or u < num_units - 1
            n = unit_depth - (0 if recovery else 1)
            if unit_plan == 'windowed':
                plan_args = dict(recovery=recovery, window_padding=window_padding, **common)
            elif recovery:  # the fork's units always recover; they pad as the fork does
                plan_args = {k: v for k, v in common.items() if k != 'fit_window'}
            else:
                raise ValueError("the detection fork's units always recover: use "
                                 'recovery=True with its plan')
            self.units.append(UNIT_PLANS[unit_plan](
                window=self.window, drop=drop, drop_path=[next(rates) for _ in range(n)],
                **unit_cfg, **plan_args))
        self.downsample = PatchMerging(dim, out_dim) if out_dim else None

    def _run(self, module: nn.Module, *args):
        if self.with_cp and self.training and args[0].requires_grad:
            return cp.checkpoint(module, *args, use_reentrant=False)
        return module(*args)

    def forward(self, x: Tensor, grid: Tuple[int, int]):
        """Returns (stage output, its grid, downsampled tokens or None, their grid)."""
        for blk in self.blocks:
            x = self._run(blk, x, grid)
        for unit in self.units:
            x, grid = self._run(unit, x, grid)[:2]
        if self.downsample is None:
            return x, grid, None, None
        down, down_grid = self.downsample(x, grid)
        return x, grid, down, down_grid


class SwinFamilyBackbone(ConvertsForeignCheckpoints, BaseModule):
    """What STViTSwin and STViTVideoSwin share: arch resolution, stages, freezing, forward,
    and the converting load pre-hook (Swin-family checkpoints, ``checkpoints/load_hook.py``).

    Subclasses set ``arch_family`` (a family of :data:`~.archs.ARCHS`) and ``arch_defaults``
    (optional arch-dict keys -> default, or a callable of the depths), build
    ``patch_embed``, call :meth:`_build_stages` and :meth:`_install_checkpoint_hooks`.
    """
    checkpoint_family = 'swin'  # Swin / STViT-R-Swin checkpoints are converted on load
    arch_family = 'swin'
    arch_defaults: Dict[str, object] = {}

    @classmethod
    def _resolve_arch(cls, arch: Union[str, dict]) -> dict:
        settings = resolve_arch(cls.__name__, cls.arch_family, arch,
                                ('embed_dims', 'depths', 'num_heads'), cls.arch_defaults)
        if not len(settings['depths']) == len(settings['num_heads']) == len(settings['units']):
            raise ValueError(f'{cls.__name__}: depths, num_heads and units need one entry per '
                             'stage')
        return settings

    def __init__(self, init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(init_cfg=init_cfg)

    def _check_out_indices(self, out_indices: Sequence[int], num_stages: int) -> None:
        if not out_indices or any(not 0 <= i < num_stages for i in out_indices):
            raise ValueError(f'{type(self).__name__}: out_indices {tuple(out_indices)} must be '
                             f'non-empty and lie in 0..{num_stages - 1}')

    def _build_stages(self, arch: dict, window: Tuple[int, ...], unit_cfg: dict,
                      recovery: bool, mlp_ratio: float, qkv_bias: bool, drop_rate: float,
                      drop_path_rate: float, with_cp: bool, fit_window: bool,
                      window_padding: str = 'masked', unit_plan: str = 'windowed') -> None:
        """``stages`` (stochastic depth over all blocks) and the output norms ``norm{i}``."""
        dims = self.num_features
        last_sparse = max([i for i, u in enumerate(arch['units']) if u] or [-1])
        if not recovery and last_sparse in self.out_indices:
            raise ValueError(f'{type(self).__name__}: with recovery=False stage {last_sparse} '
                             f'hands its semantic token grid on, not a feature map; remove '
                             f'{last_sparse} from out_indices {self.out_indices} or set '
                             'recovery=True')
        rates = drop_path_rates(drop_path_rate, sum(arch['depths']))
        self.stages = nn.ModuleList()
        start = 0
        for i, (depth, heads, units) in enumerate(
                zip(arch['depths'], arch['num_heads'], arch['units'])):
            self.stages.append(SwinStage(
                dims[i], heads, depth, units, window, unit_cfg, recovery or i != last_sparse,
                mlp_ratio, qkv_bias, drop_rate, rates[start:start + depth],
                dims[i + 1] if i + 1 < len(dims) else None, with_cp, fit_window,
                window_padding, unit_plan))
            start += depth
        for i in self.out_indices:
            self.add_module(f'norm{i}', nn.LayerNorm(dims[i]))

    def _freeze_stages(self) -> None:
        """Freeze ``patch_embed`` (frozen_stages >= 0) and stages ``< frozen_stages`` with
        their output norms, as mmdet's Swin does."""
        frozen = [self.patch_embed] if self.frozen_stages >= 0 else []
        for i in range(min(self.frozen_stages, len(self.stages))):
            frozen.append(self.stages[i])
            if i in self.out_indices:
                frozen.append(getattr(self, f'norm{i}'))
        for module in frozen:
            module.eval()
            for p in module.parameters():
                p.requires_grad = False

    def train(self, mode: bool = True) -> 'SwinFamilyBackbone':
        super().train(mode)
        self._freeze_stages()
        if mode and getattr(self, 'norm_eval', False):
            for m in self.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self

    def forward_stages(self, tokens: Tensor, grid: Tuple[int, ...]) -> List[Tensor]:
        """Embedded tokens on ``grid`` -> the normalised maps of ``out_indices``."""
        tokens = self.drop_after_pos(tokens)
        outs = []
        for i, stage in enumerate(self.stages):
            out, out_grid, tokens, grid = stage(tokens, grid)
            if i in self.out_indices:
                outs.append(tokens_to_map(getattr(self, f'norm{i}')(out), out_grid))
        return outs
