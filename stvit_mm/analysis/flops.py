"""Multiply-adds (MACs) and parameters of a module or of any call.

FLOPs are reported as **multiply-adds (MACs)**, the convention of the STViT
paper and of the OpenMMLab model zoos (DeiT-S at 224x224 = 4.6 G). They are
counted by ``torch.utils.flop_counter.FlopCounterMode``, which reports 2 FLOPs
per multiply-add (we halve it) and counts 0 for the CPU fused-attention kernel
and for ``nn.MultiheadAttention``'s fast path: formulas for those are added
here, so fused attention (SDPA) is never skipped. Only matmul-like work is
counted (linear, matmul/bmm, convolution, attention); norms, activations,
softmax, pooling and element-wise ops are not.
"""
import math
from typing import Any, Callable, Dict, Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

aten = torch.ops.aten

FLOP_NOTE = ('FLOPs are multiply-adds (MACs) of linear, matmul, convolution and attention '
             '(fused SDPA included); norms, activations, softmax and pooling are not counted')


def _attention_macs(query: Sequence[int], key: Sequence[int], value: Sequence[int]) -> int:
    """softmax(q k^T) v for shapes (..., L, d): q k^T and weights @ v, heads broadcast (GQA)."""
    batch = math.prod(query[:-2])
    queries, dim = query[-2:]
    return batch * queries * key[-2] * (dim + value[-1])


def _fused_attention_flop(query: Sequence[int], key: Sequence[int], value: Sequence[int],
                          *args: Any, out_shape: Any = None, **kwargs: Any) -> int:
    """FlopCounterMode formula (2 FLOPs per MAC) for the CPU SDPA kernel.

    A mask or ``is_causal`` does not change the count: the kernel computes
    the full score matrix.
    """
    return 2 * _attention_macs(query, key, value)


def _native_mha_flop(query: Sequence[int], key: Sequence[int], value: Sequence[int],
                     embed_dim: int, num_heads: int, *args: Any, out_shape: Any = None,
                     **kwargs: Any) -> int:
    """FlopCounterMode formula for ``nn.MultiheadAttention``'s fast path (one fused op).

    Inputs are (B, L, E) (the fast path requires ``batch_first``): q, k, v
    and output projections plus the attention itself.
    """
    batch, queries, dim = query
    keys = key[-2]
    projections = batch * queries * dim * dim * 2 + batch * keys * dim * dim * 2
    attention = 2 * batch * queries * keys * dim
    return 2 * (projections + attention)


# Ops FlopCounterMode counts as 0. The top-level ``aten.scaled_dot_product_attention``
# is left out on purpose: the counter decomposes it into one of the kernels
# below (or, for the math fallback, into bmm), so mapping it would count twice.
_EXTRA_FLOP_FORMULAS = {
    aten._scaled_dot_product_flash_attention_for_cpu: _fused_attention_flop,
    aten._native_multi_head_attention: _native_mha_flop,
}


def count_flops(model_or_fn: Callable[..., Any], inputs: Any = ()) -> Dict[str, Any]:
    """Multiply-adds of one call ``model_or_fn(*inputs)`` (no grad).

    Args:
        model_or_fn: a module or any callable.
        inputs: one tensor or a tuple of positional arguments.

    Returns:
        ``flops`` (MACs, int), ``by_module`` ({module path: MACs}, paths as
        torch's module tracker names them, root first) and ``by_op``
        ({aten op: MACs}).
    """
    args = inputs if isinstance(inputs, tuple) else (inputs, )
    counter = FlopCounterMode(display=False, custom_mapping=_EXTRA_FLOP_FORMULAS)
    with torch.no_grad(), counter:
        model_or_fn(*args)
    counts = counter.get_flop_counts()
    # FlopCounterMode counts 2 FLOPs per multiply-add in every formula.
    return dict(
        flops=counter.get_total_flops() // 2,
        by_module={name: sum(ops.values()) // 2
                   for name, ops in counts.items() if name != 'Global'},
        by_op={str(op): flops // 2 for op, flops in counts.get('Global', {}).items()},
    )


def count_params(module: nn.Module) -> int:
    """Number of parameters (trainable or not)."""
    return sum(p.numel() for p in module.parameters())


def flops_by_child(by_module: Dict[str, int], root: str, total: int) -> Dict[str, int]:
    """{child name: MACs} for the direct children of the root module, plus ``other``.

    ``by_module`` and ``total`` as :func:`count_flops` returns them. Torch's
    module tracker sees modules entered through ``__call__`` only; work of a
    child called as ``child.forward(...)`` (mmdet's two-stage detectors do this
    with ``roi_head`` in tensor mode) lands in ``other``.
    """
    prefix = root + '.'
    children = {name[len(prefix):]: flops for name, flops in by_module.items()
                if name.startswith(prefix) and '.' not in name[len(prefix):]}
    rest = total - sum(children.values())
    return {**children, 'other': rest} if rest else children


__all__ = ['FLOP_NOTE', 'count_flops', 'count_params', 'flops_by_child']
