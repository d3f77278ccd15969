"""Attention primitives shared by every STViT block.

All attention goes through :func:`attention`, which runs PyTorch's fused
``scaled_dot_product_attention`` (SDPA) or an explicit softmax path, chosen by
one process-wide switch. FLOP counting and the token visualiser use the
explicit path (it exposes the attention weights); tests compare both.
"""
import os
from contextlib import contextmanager
from typing import Callable, Iterator, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

_fused_attn = os.environ.get('STVIT_FUSED_ATTN', '1') not in ('0', 'false', 'False')

# Hook called with the softmax weights (B, heads, Nq, Nk) of every explicit
# attention; the visualiser installs one through `record_attention`.
_weights_hook: Optional[Callable[[Tensor], None]] = None


def use_fused_attn() -> bool:
    """Whether :func:`attention` currently dispatches to SDPA."""
    return _fused_attn


def set_fused_attn(enable: bool) -> None:
    """Choose SDPA (True) or the explicit softmax path (False) for all blocks."""
    global _fused_attn
    _fused_attn = bool(enable)


@contextmanager
def fused_attn(enable: bool) -> Iterator[None]:
    """Temporarily switch the attention path (restored on exit)."""
    previous = use_fused_attn()
    set_fused_attn(enable)
    try:
        yield
    finally:
        set_fused_attn(previous)


@contextmanager
def record_attention(hook: Callable[[Tensor], None]) -> Iterator[None]:
    """Call ``hook(weights)`` for every attention, forcing the explicit path."""
    global _weights_hook
    previous = _weights_hook
    _weights_hook = hook
    try:
        with fused_attn(False):
            yield
    finally:
        _weights_hook = previous


def merge_bias_and_mask(bias: Optional[Tensor], mask: Optional[Tensor],
                        dtype: torch.dtype) -> Optional[Tensor]:
    """Turn an additive bias and a boolean keep-mask into one additive bias.

    Masked logits get a large finite negative value instead of -inf: a query
    whose keys are all masked (a query on padding) then averages its values
    instead of producing NaN, which would leak through ``0 * NaN`` later.
    The mask becomes -0.0 (kept; ``bias + -0.0`` is ``bias`` bit for bit) or
    that value at its own, smaller shape before one broadcasting add, cheaper
    than filling the bias broadcast to every window (docs/speed.md).
    """
    if mask is None:
        return None if bias is None else bias.to(dtype)
    blocked = (~mask).to(dtype).mul_(torch.finfo(dtype).min / 2)
    return blocked if bias is None else bias.to(dtype) + blocked


def attention(q: Tensor, k: Tensor, v: Tensor, bias: Optional[Tensor] = None,
              mask: Optional[Tensor] = None) -> Tensor:
    """Scaled dot-product attention.

    Args:
        q: queries (B, heads, Nq, d).
        k, v: keys and values (B, heads, Nk, d).
        bias: additive logit bias broadcastable to (B, heads, Nq, Nk), e.g. a
            relative position bias.
        mask: boolean, True where a query may attend a key, broadcastable to
            (B, heads, Nq, Nk), e.g. a key padding or shifted-window mask.
            ``bias`` and ``mask`` may also lead with B / r (r divides B): they
            are then tiled r times, e.g. one mask per window for all images of
            a batch of windows laid out image-major.

    Returns:
        (B, heads, Nq, d).
    """
    attn_bias = merge_bias_and_mask(bias, mask, q.dtype)
    if attn_bias is not None and attn_bias.shape[0] not in (1, q.shape[0]):
        # one mask per window, shared by the images of a (B * windows) batch: tile it
        attn_bias = attn_bias.repeat(q.shape[0] // attn_bias.shape[0], 1, 1, 1)
    if _fused_attn and _weights_hook is None:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_bias)
    logits = (q * q.shape[-1]**-0.5) @ k.transpose(-2, -1)
    if attn_bias is not None:
        logits = logits + attn_bias
    weights = logits.softmax(dim=-1)
    if _weights_hook is not None:
        _weights_hook(weights)
    return weights @ v


def _split_heads(x: Tensor, num_heads: int) -> Tensor:
    """(B, N, C) -> (B, heads, N, C // heads)."""
    B, N, C = x.shape
    return x.reshape(B, N, num_heads, C // num_heads).transpose(1, 2)


def _merge_heads(x: Tensor) -> Tensor:
    """(B, heads, N, d) -> (B, N, heads * d)."""
    B, H, N, d = x.shape
    return x.transpose(1, 2).reshape(B, N, H * d)


class Attention(nn.Module):
    """Multi-head self-attention with a fused ``qkv`` projection.

    Args:
        dim: token channels.
        num_heads: attention heads; must divide ``dim``.
        qkv_bias: bias in the ``qkv`` projection.
        proj_drop: dropout after ``proj``.
    """

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True,
                 proj_drop: float = 0.0) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f'Attention: dim {dim} is not divisible by num_heads {num_heads}; '
                             'choose num_heads that divides the embedding dims')
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def attend_qkv(self, qkv: Tensor, bias: Optional[Tensor] = None,
                   mask: Optional[Tensor] = None) -> Tensor:
        """Projected qkv (B, N, 3C) -> attention output (B, N, C), before ``proj``.

        Lets callers project real tokens only and pad/partition the result.
        """
        q, k, v = _split_heads(qkv, self.num_heads * 3).chunk(3, dim=1)
        return _merge_heads(attention(q, k, v, bias, mask))

    def forward(self, x: Tensor, bias: Optional[Tensor] = None,
                mask: Optional[Tensor] = None) -> Tensor:
        """x: (B, N, C) -> (B, N, C); ``bias``/``mask`` as in :func:`attention`."""
        return self.proj_drop(self.proj(self.attend_qkv(self.qkv(x), bias, mask)))


class CrossAttention(nn.Module):
    """Multi-head attention whose queries and keys come from different tokens.

    Separate ``q`` and ``kv`` projections (k is the first ``dim`` outputs of
    ``kv``), as in the official STViT-R. Keys/values can be projected once with
    :meth:`project_kv` and then gathered into neighbourhoods by the caller, so
    each image token is projected once however many windows see it.
    """

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True,
                 proj_drop: float = 0.0) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f'CrossAttention: dim {dim} is not divisible by num_heads '
                             f'{num_heads}; choose num_heads that divides the embedding dims')
        self.num_heads = num_heads
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.kv = nn.Linear(dim, dim * 2, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def project_kv(self, x: Tensor) -> Tensor:
        """(..., C) -> (..., 2C): keys then values, before any gathering."""
        return self.kv(x)

    def attend_q(self, q: Tensor, kv: Tensor, bias: Optional[Tensor] = None,
                 mask: Optional[Tensor] = None) -> Tensor:
        """Projected q (B, Nq, C) and kv (B, Nk, 2C) -> (B, Nq, C), before ``proj``."""
        k, v = _split_heads(kv, self.num_heads * 2).chunk(2, dim=1)
        return _merge_heads(attention(_split_heads(q, self.num_heads), k, v, bias, mask))
