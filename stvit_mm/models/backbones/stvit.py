"""STViT / STViT-R for plain ViT/DeiT (global semantic tokens), paper Sec. 3."""
import math
from functools import partial
from typing import Dict, Optional, Sequence, Tuple, Union

import torch
from mmengine.model import BaseModule
from mmengine.registry import MODELS
from torch import Tensor, nn

from ...archs import resolve_arch
from ...checkpoints.conversion import Conversion
from ...checkpoints.load_hook import ConvertsForeignCheckpoints
from ..layers import (
    Block,
    RecoveryBlock,
    SemanticTokenGenerator,
    drop_path_rates,
    init_transformer_weights,
)
from ..layers.grouping import tokens_to_map
from ..layers.position import resize_grid_embed
from .input_checks import check_input

# Sparsification plan of the paper (depth 12 as DeiT): 4 blocks on all tokens,
# 2 generator layers, 6 blocks on 4x4 = 16 semantic tokens. With recovery the
# last semantic block becomes the recovery block, keeping depth 12.
_PLAN = dict(num_full_layers=4, num_semantic_layers=6, pool_size=(4, 4), mlp_ratio=4.0)


@MODELS.register_module()
class STViT(ConvertsForeignCheckpoints, BaseModule):
    """STViT (token sparsification) for plain ViT/DeiT; ``recovery=True`` is STViT-R.

    Image tokens pass ``num_full_layers`` ordinary blocks, a two-layer
    :class:`SemanticTokenGenerator` summarises them into ``prod(pool_size)``
    semantic tokens, and ``num_semantic_layers`` ordinary blocks run on those
    only. Classification pools the semantic tokens (no class token). With
    ``recovery=True`` a :class:`RecoveryBlock` restores the image tokens saved
    before generation, for dense tasks.

    Any input whose sides are multiples of ``patch_size`` works: the position
    embedding is resized to the token grid, and adaptive pooling yields
    ``pool_size`` semantic tokens for any grid.

    Args:
        arch: 'tiny'/'small'/'base' (aliases 't', 'deit-t', 'deit-tiny', ...),
            or a dict with ``embed_dims``, ``num_heads`` and optionally
            ``num_full_layers``, ``num_semantic_layers``, ``pool_size``,
            ``mlp_ratio``.
        img_size: input size the position embedding is stored for.
        patch_size: patch side.
        in_channels: input channels.
        recovery: add the recovery block (STViT-R); the last semantic block
            of the plan is replaced so the depth stays the same.
        out_type: 'avg' (B, C) mean of the normalised semantic tokens, or
            'featmap' (B, C, H/p, W/p) recovered tokens (needs ``recovery``).
            Default: 'featmap' with recovery, else 'avg'.
        drop_rate: dropout after the position embedding and projections.
        drop_path_rate: stochastic depth, increasing over the layers.
        qkv_bias: bias in attention projections.
        gen_shortcut: attention residual in the first generator layer.
        global_centres: learnable global cluster centres G in the generator.
        layer_scale_init: layer scale of the new (generator, recovery) layers.
        init_cfg: mmengine init config, e.g. ``dict(type='Pretrained',
            checkpoint=...)``; DeiT checkpoints (mmpretrain or timm layout) are
            converted on load (on every loading path, see ``stvit_mm/checkpoints/load_hook.py``)
            and ``last_load_report`` says what was not loaded.
    """
    checkpoint_family = 'deit'  # DeiT / ViT checkpoints are converted on load
    out_types = ('avg', 'featmap')

    def __init__(self, arch: Union[str, dict] = 'small', img_size: Union[int, Sequence[int]] = 224,
                 patch_size: int = 16, in_channels: int = 3, recovery: bool = False,
                 out_type: Optional[str] = None, drop_rate: float = 0.0,
                 drop_path_rate: float = 0.0, qkv_bias: bool = True, gen_shortcut: bool = True,
                 global_centres: bool = True, layer_scale_init: Optional[float] = 1e-5,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.arch_settings = self._resolve_arch(arch, recovery)
        out_type = out_type or ('featmap' if recovery else 'avg')
        if out_type not in self.out_types:
            raise ValueError(f'STViT: unknown out_type {out_type!r}; expected one of '
                             f'{self.out_types}')
        if out_type == 'featmap' and not recovery:
            raise ValueError("STViT: out_type='featmap' needs recovery=True (without recovery "
                             'only the semantic tokens survive)')
        if out_type == 'avg' and recovery:
            raise ValueError("STViT: recovery=True with out_type='avg' builds a recovery block "
                             "that never runs; use out_type='featmap' or recovery=False")
        img_size = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
        if img_size[0] % patch_size or img_size[1] % patch_size:
            raise ValueError(f'STViT: img_size {img_size} is not a multiple of patch_size '
                             f'{patch_size}')
        s = self.arch_settings
        dim, heads, ratio = s['embed_dims'], s['num_heads'], s['mlp_ratio']
        self.embed_dims, self.patch_size, self.in_channels = dim, patch_size, in_channels
        self.recovery_enabled, self.out_type = recovery, out_type
        self.num_full_layers = s['num_full_layers']
        self.num_semantic_layers = s['num_semantic_layers']
        self.pos_grid = (img_size[0] // patch_size, img_size[1] // patch_size)

        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(in_channels, dim, patch_size, stride=patch_size)
        self.pos_embed = nn.Parameter(torch.zeros(1, self.pos_grid[0] * self.pos_grid[1], dim))
        self.drop_after_pos = nn.Dropout(drop_rate)

        depth = self.num_full_layers + 2 + self.num_semantic_layers + int(recovery)
        dpr = iter(drop_path_rates(drop_path_rate, depth))
        # LayerNorm eps 1e-6 as DeiT (timm, mmpretrain, official STViT): DeiT weights reproduce
        norm_layer = partial(nn.LayerNorm, eps=1e-6)
        block = dict(dim=dim, num_heads=heads, mlp_ratio=ratio, qkv_bias=qkv_bias, drop=drop_rate,
                     norm_layer=norm_layer)
        self.blocks = nn.ModuleList(
            [Block(drop_path=next(dpr), **block) for _ in range(self.num_full_layers)])
        self.generator = SemanticTokenGenerator(
            pool_size=s['pool_size'], drop_path=(next(dpr), next(dpr)),
            layer_scale_init=layer_scale_init, shortcut=gen_shortcut,
            global_centres=global_centres, **block)
        self.semantic_blocks = nn.ModuleList(
            [Block(drop_path=next(dpr), **block) for _ in range(self.num_semantic_layers)])
        self.recovery = (RecoveryBlock(drop_path=next(dpr), layer_scale_init=layer_scale_init,
                                       **block) if recovery else None)
        self.norm = norm_layer(dim)

        self._reset_parameters()
        self._install_checkpoint_hooks()

    @staticmethod
    def _resolve_arch(arch: Union[str, dict], recovery: bool) -> dict:
        settings = resolve_arch('STViT', 'deit', arch, ('embed_dims', 'num_heads'), _PLAN)
        if isinstance(arch, str) and recovery:
            settings['num_semantic_layers'] -= 1  # recovery takes the last layer
        return settings

    def _reset_parameters(self) -> None:
        init_transformer_weights(self)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        self.generator.reset_centres()

    def _fit_to_model(self, conv: Conversion, layout: Optional[str]) -> Dict[str, str]:
        """Resize a checkpoint's ``pos_embed`` (any layout) to this model's grid, silently."""
        stored = conv.tensors.get('pos_embed')
        if stored is not None and stored.shape != self.pos_embed.shape:
            side = math.isqrt(stored.shape[1])
            if side * side != stored.shape[1]:
                raise ValueError(f'STViT: checkpoint pos_embed {tuple(stored.shape)} is not a '
                                 f'square grid; cannot resize to {self.pos_grid}')
            conv.tensors['pos_embed'] = self.resize_position_table(stored, (side, side))
        return {}

    def resize_position_table(self, table: Tensor, grid: Tuple[int, int]) -> Tensor:
        """A (1, h*w, C) position table on ``grid`` -> this model's (1, H*W, C)."""
        return resize_grid_embed(table, grid, self.pos_grid)

    def _check_input(self, x: Tensor) -> None:
        check_input(x, 'STViT', self.in_channels, 'NCHW', multiple_of=self.patch_size)

    def embed(self, x: Tensor) -> Tuple[Tensor, Tuple[int, int]]:
        """Images (B, C, H, W) -> tokens (B, N, C) with position embedding, grid (h, w)."""
        self._check_input(x)
        maps = self.patch_embed.proj(x)
        grid = (maps.shape[2], maps.shape[3])
        pos = resize_grid_embed(self.pos_embed, self.pos_grid, grid)
        return self.drop_after_pos(maps.flatten(2).transpose(1, 2) + pos), grid

    def forward(self, x: Tensor) -> Tuple[Tensor]:
        """Images (B, C, H, W) -> a 1-tuple: (B, C) for 'avg', (B, C, H/p, W/p) for 'featmap'."""
        tokens, grid = self.embed(x)
        for blk in self.blocks:
            tokens = blk(tokens)
        semantic = self.generator(tokens, grid)
        for blk in self.semantic_blocks:
            semantic = blk(semantic)
        if self.out_type == 'avg':
            return (self.norm(semantic).mean(dim=1), )
        tokens = self.norm(self.recovery(tokens, semantic))
        return (tokens_to_map(tokens, grid), )
