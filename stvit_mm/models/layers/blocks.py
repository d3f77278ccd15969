"""Pre-norm transformer blocks on one base (:class:`PreNormResidual`); ``window.py`` adds
the Swin window block.

Parameter names (``norm1, attn, ls1, norm2, mlp, ls2``) follow timm and the
official STViT-R code, so checkpoint converters stay rename tables.
"""
from typing import Callable, Optional, Tuple, Type

import torch
from torch import Tensor, nn

from .attention import Attention, CrossAttention
from .layer_scale import DropPath, LayerScale, layer_scale_or_identity
from .mlp import Mlp


class PreNormResidual(nn.Module):
    """What every block shares: ``x + attention(norm1(x))`` then ``x + mlp(norm2(x))``, each
    branch with layer scale and stochastic depth. Subclasses compute the attention branch."""

    def __init__(self, dim: int, make_attn: Callable[[], nn.Module], mlp_ratio: float,
                 drop: float, drop_path: float, layer_scale_init: Optional[float],
                 norm_layer: Type[nn.Module], act_layer: Type[nn.Module]) -> None:
        super().__init__()
        self.norm1 = norm_layer(dim)
        self.attn = make_attn()
        self.ls1 = layer_scale_or_identity(dim, layer_scale_init)
        self.drop_path1 = DropPath(drop_path)
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=act_layer, drop=drop)
        self.ls2 = layer_scale_or_identity(dim, layer_scale_init)
        self.drop_path2 = DropPath(drop_path)

    def residuals(self, x: Tensor, attn_out: Tensor) -> Tensor:
        """Add the attention branch output (before layer scale) to ``x``, then the MLP branch."""
        return self.mlp_residual(x + self.drop_path1(self.ls1(attn_out)))

    def mlp_residual(self, x: Tensor) -> Tensor:
        return x + self.drop_path2(self.ls2(self.mlp(self.norm2(x))))


class Block(PreNormResidual):
    """Self-attention block: the plain ViT block and the block on semantic tokens.

    Args:
        dim: token channels.
        num_heads: attention heads.
        mlp_ratio: hidden width of the MLP relative to ``dim``.
        qkv_bias: bias in the ``qkv`` projection.
        drop: dropout after attention/MLP projections.
        drop_path: stochastic depth rate of both residual branches.
        layer_scale_init: initial ``gamma`` of layer scale; ``None`` disables it
            (stock ViT/Swin blocks).
        norm_layer, act_layer: normalisation and MLP activation classes.
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0,
                 qkv_bias: bool = True, drop: float = 0.0, drop_path: float = 0.0,
                 layer_scale_init: Optional[float] = None,
                 norm_layer: Type[nn.Module] = nn.LayerNorm,
                 act_layer: Type[nn.Module] = nn.GELU) -> None:
        super().__init__(dim, lambda: Attention(dim, num_heads, qkv_bias=qkv_bias,
                                                proj_drop=drop),
                         mlp_ratio, drop, drop_path, layer_scale_init, norm_layer, act_layer)

    def forward(self, x: Tensor, bias: Optional[Tensor] = None,
                mask: Optional[Tensor] = None) -> Tensor:
        """x: (B, N, C) -> (B, N, C)."""
        return self.residuals(x, self.attn(self.norm1(x), bias, mask))


class CrossBlock(PreNormResidual):
    """Queries attend to other tokens: the generator and recovery layers.

    One ``norm1`` normalises both queries and keys/values (they live in the
    same feature space; official STViT-R). ``shortcut=False`` drops the
    attention residual, as in the official STViT-R-Swin runs' first
    generator layer (``SHORTCUT=False``); the MLP residual is always kept.
    Without the shortcut ``drop_path`` applies to the MLP branch only.

    Args:
        dim, num_heads, mlp_ratio, qkv_bias, drop, drop_path, norm_layer,
        act_layer: as in :class:`Block`.
        layer_scale_init: initial ``gamma``; STViT's new blocks use 1e-5.
        shortcut: add the queries back after attention.
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0,
                 qkv_bias: bool = True, drop: float = 0.0, drop_path: float = 0.0,
                 layer_scale_init: Optional[float] = 1e-5, shortcut: bool = True,
                 norm_layer: Type[nn.Module] = nn.LayerNorm,
                 act_layer: Type[nn.Module] = nn.GELU) -> None:
        super().__init__(dim, lambda: CrossAttention(dim, num_heads, qkv_bias=qkv_bias,
                                                     proj_drop=drop),
                         mlp_ratio, drop, drop_path, layer_scale_init, norm_layer, act_layer)
        self.shortcut = shortcut

    def project_kv(self, x_kv: Tensor) -> Tensor:
        """Normalise and project key/value tokens once: (..., C) -> (..., 2C)."""
        return self.attn.project_kv(self.norm1(x_kv))

    def forward_projected(self, x_q: Tensor, kv: Tensor, bias: Optional[Tensor] = None,
                          mask: Optional[Tensor] = None,
                          regroup: Optional[Tuple[Callable, Callable]] = None) -> Tensor:
        """Like :meth:`forward` with keys/values from :meth:`project_kv`.

        x_q: (B, Nq, C); kv: (B', Nk, 2C) -> (B, Nq, C). ``regroup`` is an
        optional pair of functions mapping projected queries (B, Nq, C) to
        kv's groups (B', n, C) and back, e.g. windows: queries are projected,
        and the residual and MLP run, on the real tokens only.
        """
        q = self.attn.q(self.norm1(x_q))
        if regroup is None:
            out = self.attn.attend_q(q, kv, bias, mask)
        else:
            out = regroup[1](self.attn.attend_q(regroup[0](q), kv, bias, mask))
        out = self.attn.proj_drop(self.attn.proj(out))
        if self.shortcut:
            return self.residuals(x_q, out)
        # Without the shortcut the attention output is the layer's whole output (official:
        # x = layer_scale_1 * attn), so stochastic depth never drops it.
        return self.mlp_residual(self.ls1(out))

    def forward(self, x_q: Tensor, x_kv: Tensor, bias: Optional[Tensor] = None,
                mask: Optional[Tensor] = None) -> Tensor:
        """x_q: (B, Nq, C), x_kv: (B, Nk, C) -> (B, Nq, C)."""
        return self.forward_projected(x_q, self.project_kv(x_kv), bias, mask)


def init_transformer_weights(module: nn.Module) -> None:
    """Trunc-normal(0.02) linears with zero bias, LayerNorm 1/0, layer scale reset.

    The ViT/Swin convention; applied by backbones before any pretrained weights.
    """
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, LayerScale):
            m.reset_parameters()


def drop_path_rates(rate: float, depth: int) -> list:
    """Stochastic depth increasing linearly from 0 to ``rate`` over ``depth`` blocks."""
    return [float(r) for r in torch.linspace(0, rate, depth)] if depth else []
