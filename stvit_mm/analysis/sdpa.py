"""Which fused-attention (SDPA) backend each attention call of a forward uses, and why not another.

:class:`SdpaRecorder` intercepts ``torch.nn.functional.scaled_dot_product_attention``
calls (a ``TorchFunctionMode``) and asks PyTorch's own selector (``torch._fused_sdp_choice``)
which kernel runs them: flash, memory-efficient, cuDNN or math. On CUDA, the reasons
that flash and memory-efficient attention were refused are PyTorch's own debug
messages (``torch.backends.cuda.can_use_*(..., debug=True)``), once per kind of call.
Attention computed explicitly (matmul + softmax, e.g. mmdet's Swin) makes no SDPA call:
its softmax calls are counted instead. Eager forwards only (not under ``torch.compile``).
"""
import contextlib
import os
import re
import tempfile
import warnings
from collections import Counter
from typing import Any, Dict, Iterator, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

BACKENDS = {-1: 'error', 0: 'math', 1: 'flash', 2: 'memory-efficient', 3: 'cudnn',
            4: 'overrideable'}
_SOFTMAX = (F.softmax, torch.softmax, torch.Tensor.softmax)
_WARNING = re.compile(r'Warning: (.*?)(?: \(function \w+\))?$')


@contextlib.contextmanager
def _captured_stderr() -> Iterator[List[str]]:
    """Lines native code writes to fd 2 inside the block (PyTorch's TORCH_WARN messages)."""
    lines: List[str] = []
    with tempfile.TemporaryFile(mode='w+') as capture:
        saved = os.dup(2)
        os.dup2(capture.fileno(), 2)
        try:
            yield lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            lines.extend(line.rstrip() for line in capture)


def _autocast(tensors: Tuple[Optional[torch.Tensor], ...]) -> Tuple[Optional[torch.Tensor], ...]:
    """The tensors as autocast hands them to SDPA (cast to its dtype when it is enabled)."""
    device = next(t for t in tensors if t is not None).device.type
    if not torch.is_autocast_enabled(device):
        return tensors
    dtype = torch.get_autocast_dtype(device)
    return tuple(t if t is None or not t.is_floating_point() else t.to(dtype) for t in tensors)


def refusal_reasons(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                    mask: Optional[torch.Tensor]) -> Dict[str, List[str]]:
    """{backend: PyTorch's reasons it cannot run this call}, for flash and memory-efficient
    attention on CUDA; empty on other devices (the CPU has one fused kernel, or math)."""
    if q.device.type != 'cuda':
        return {}
    from torch.backends.cuda import SDPAParams, can_use_efficient_attention, can_use_flash_attention
    params = SDPAParams(q, k, v, mask, 0.0, False, False)
    out = {}
    for name, check in (('flash', can_use_flash_attention),
                        ('memory-efficient', can_use_efficient_attention)):
        with _captured_stderr() as lines, warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            usable = check(params, True)
        lines += [f'Warning: {w.message}' for w in caught]
        if not usable:
            out[name] = [m.group(1) for m in map(_WARNING.search, lines) if m] or ['refused']
    return out


class SdpaRecorder(TorchFunctionMode):
    """Counts the SDPA backend of every attention call inside the ``with`` block.

    Attributes:
        backends: Counter of backend names over SDPA calls.
        calls: one entry per kind of call (backend, dtype, mask or not, mask needing a
            gradient or not, head dim): its
            count and, on CUDA, why flash / memory-efficient attention were refused.
        softmax_calls: softmax calls (explicit attention, and any other softmax).
    """

    def __init__(self) -> None:
        super().__init__()
        self.backends: Counter = Counter()
        self.calls: Dict[Tuple, Dict[str, Any]] = {}
        self.softmax_calls = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is F.scaled_dot_product_attention:
            self._record(*args, **kwargs)
        elif func in _SOFTMAX:
            self.softmax_calls += 1
        return func(*args, **kwargs)

    def _record(self, q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None,
                **kwargs) -> None:
        q, k, v, mask = _autocast((q, k, v, attn_mask))
        extra = {'enable_gqa': kwargs['enable_gqa']} if 'enable_gqa' in kwargs else {}
        choice = int(torch._fused_sdp_choice(q, k, v, attn_mask=mask, dropout_p=dropout_p,
                                             is_causal=is_causal, scale=scale, **extra))
        backend = BACKENDS.get(choice, str(choice))
        self.backends[backend] += 1
        mask_grad = mask is not None and mask.requires_grad  # e.g. a learned position bias
        key = (backend, str(q.dtype), mask is not None, mask_grad, q.shape[-1])
        if key not in self.calls:
            self.calls[key] = dict(backend=backend, dtype=str(q.dtype).replace('torch.', ''),
                                   mask=mask is not None, mask_grad=mask_grad,
                                   head_dim=q.shape[-1], count=0,
                                   refused=refusal_reasons(q, k, v, mask))
        self.calls[key]['count'] += 1

    def summary(self) -> Dict[str, Any]:
        """JSON-ready: ``sdpa_calls``, ``backends`` {name: calls}, ``kinds`` (see ``calls``)
        and ``softmax_calls``."""
        return dict(sdpa_calls=sum(self.backends.values()), backends=dict(self.backends),
                    kinds=list(self.calls.values()), softmax_calls=self.softmax_calls)


def record_sdpa(fn) -> Dict[str, Any]:
    """:meth:`SdpaRecorder.summary` of one call of ``fn``."""
    recorder = SdpaRecorder()
    with recorder:
        fn()
    return recorder.summary()


__all__ = ['BACKENDS', 'SdpaRecorder', 'record_sdpa', 'refusal_reasons']
