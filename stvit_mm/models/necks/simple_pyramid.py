"""Simple feature pyramid from one stride-16 map (ViTDet, Li et al. 2022, Sec. 3) for STViT-R."""
from typing import List, Optional, Sequence, Tuple, Union

import torch.nn.functional as F
from mmengine.model import BaseModule
from mmengine.registry import MODELS
from torch import Tensor, nn


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of an NCHW map (ViTDet's norm; no batch statistics)."""

    def forward(self, x: Tensor) -> Tensor:  # (B, C, H, W)
        # contiguous NCHW again: mmcv's CPU RoIAlign misreads channels-last strides
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2).contiguous()


def _conv_norm(in_channels: int, out_channels: int, kernel_size: int) -> nn.Sequential:
    # No conv bias: the LayerNorm right after it has one.
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False),
        LayerNorm2d(out_channels))


@MODELS.register_module()
class STViTSimplePyramid(BaseModule):
    """Strides 4/8/16/32 (+ extra levels) from the single stride-16 map of a plain ViT.

    The plain-ViT backbone (:class:`STViT` with ``recovery=True``) returns one
    stride-16 map; this neck builds the multi-scale maps that mmdet's RPN and
    RoI heads expect, as ViTDet does: two 2x2 stride-2 deconvolutions (with
    LayerNorm2d + GELU between them) for stride 4, one for stride 8, the map
    itself for stride 16, 2x2 max pooling for stride 32. Each level then gets
    a 1x1 conv and a 3x3 conv to ``out_channels``, each followed by
    :class:`LayerNorm2d` (channel LayerNorm, as ViTDet: independent of the
    batch size, so it trains with 1-2 images per GPU where BatchNorm fails).
    Levels beyond the fourth are max pooled (kernel 1, stride 2) from the
    previous output, as mmdet's ``FPN`` does for ``num_outs=5``: Mask R-CNN's
    RPN anchors use strides [4, 8, 16, 32, 64].

    Odd map sizes work: downsampling rounds up (``ceil_mode``), so level ``i``
    has ``ceil(H * 16 / stride_i)`` rows, as the FPN extra level does.

    Args:
        in_channels: channels of the backbone map (384 for DeiT-S).
        out_channels: channels of every output level (256 for mmdet heads).
        num_outs: output levels, at least 4 (strides 4, 8, 16, 32, then 64, ...).
        init_cfg: mmengine init config; default Xavier-uniform convs, as
            mmdet's ``FPN``.
    """
    num_main_levels = 4  # strides 4, 8, 16, 32

    def __init__(self, in_channels: int, out_channels: int = 256, num_outs: int = 5,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        if init_cfg is None:
            init_cfg = dict(type='Xavier', layer=['Conv2d', 'ConvTranspose2d'],
                            distribution='uniform')
        super().__init__(init_cfg=init_cfg)
        if num_outs < self.num_main_levels:
            raise ValueError(f'STViTSimplePyramid: num_outs={num_outs}, need at least '
                             f'{self.num_main_levels} (strides 4, 8, 16, 32)')
        self.in_channels, self.out_channels, self.num_outs = in_channels, out_channels, num_outs
        half, quarter = in_channels // 2, in_channels // 4
        self.scales = nn.ModuleList([
            nn.Sequential(  # stride 16 -> 4
                nn.ConvTranspose2d(in_channels, half, 2, stride=2), LayerNorm2d(half),
                nn.GELU(), nn.ConvTranspose2d(half, quarter, 2, stride=2)),
            nn.ConvTranspose2d(in_channels, half, 2, stride=2),  # 16 -> 8
            nn.Identity(),  # 16
            nn.MaxPool2d(2, stride=2, ceil_mode=True),  # 16 -> 32
        ])
        level_channels = (quarter, half, in_channels, in_channels)
        self.lateral_convs = nn.ModuleList(
            [_conv_norm(c, out_channels, 1) for c in level_channels])
        self.output_convs = nn.ModuleList(
            [_conv_norm(out_channels, out_channels, 3) for _ in level_channels])

    def _check_input(self, inputs: Sequence[Tensor]) -> Tensor:
        if not isinstance(inputs, (tuple, list)) or len(inputs) != 1:
            got = (f'a {type(inputs).__name__} of {len(inputs)}'
                   if isinstance(inputs, (tuple, list)) else f'a {type(inputs).__name__}')
            raise ValueError(f'STViTSimplePyramid: expected a 1-tuple with one stride-16 map '
                             f'(backbone STViT with recovery=True), got {got}')
        x = inputs[0]
        if not isinstance(x, Tensor) or x.ndim != 4:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f'STViTSimplePyramid: expected a (B, C, H, W) map, got {shape}')
        if x.shape[1] != self.in_channels:
            raise ValueError(f'STViTSimplePyramid: expected {self.in_channels} input channels, '
                             f'got {x.shape[1]}; set neck in_channels to the backbone width')
        return x

    def forward(self, inputs: Sequence[Tensor]) -> Tuple[Tensor, ...]:
        """(stride-16 map,) -> ``num_outs`` maps (B, out_channels, H_i, W_i), strides 4, 8, ..."""
        x = self._check_input(inputs)
        outs = [out_conv(lateral(scale(x))) for scale, lateral, out_conv in
                zip(self.scales, self.lateral_convs, self.output_convs)]
        for _ in range(self.num_outs - self.num_main_levels):
            outs.append(F.max_pool2d(outs[-1], 1, stride=2))  # as mmdet FPN's extra levels
        return tuple(outs)
