"""Where a backbone's forward spends its time: time and op / kernel count per part.

:func:`instrument` marks the parts of a built backbone from outside (no model code
changes): it wraps the forward (or method) of the modules that make each part in a
``torch.profiler.record_function`` range, found by class and attribute name in ours
(STViT, STViTSwin, STViTVideoSwin) and in the stock OpenMMLab Swins and ViTs.
:func:`attribute` then walks the profiler's event tree: every top-level op counts for
the innermost range around it, data-movement ops inside attention and the generator
count as copies or the neighbourhood gather (:func:`classify`), and the time between
ops goes to the range it falls in, so the parts add up to the forward's total.
"""
import contextlib
import functools
import re
from collections import Counter
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile, record_function

PREFIX = 'stvit_part::'
TOTAL = 'total'
TOP_OPS = 6
PARTS = ('attention (window / image tokens)', 'padding and partition copies',
         'generator neighbourhood gather', 'generator layers', 'semantic blocks', 'recovery',
         'everything else')
ATTENTION, COPIES, GATHER, GENERATOR, SEMANTIC, RECOVERY, OTHER = PARTS
# Ops that only move or lay out data (views, copies, padding, gathers, dtype casts).
LAYOUT_OPS = frozenset('aten::' + name for name in (
    'index_select index gather cat stack pad constant_pad_nd roll copy_ clone contiguous '
    'repeat expand reshape view permute transpose flatten unflatten slice narrow select '
    'chunk split unsqueeze squeeze to _to_copy unfold as_strided t new_ones new_zeros zeros '
    'ones empty fill_ _unsafe_view').split())
GATHER_OPS = frozenset(('aten::index', 'aten::cat'))
# Stock window attention modules (mmdet / mmseg / mmpretrain Swin, mmaction Video Swin) and
# the stock ViT attention (mmpretrain): the whole module is the attention part.
_STOCK_ATTENTION = ('ShiftWindowMSA', 'ShiftWindowMSA3D', 'WindowMSA', 'WindowAttention3D',
                    'MultiheadAttention')
_IMAGE_BLOCK_ATTN = re.compile(r'(^|\.)(blocks|layers)\.\d+\.attn$')


def classify(op: str, context: str) -> str:
    """The part an op belongs to, given the part of the innermost range around it."""
    if context == ATTENTION and op in LAYOUT_OPS:
        return COPIES
    if context == GENERATOR:
        if op in GATHER_OPS:
            return GATHER
        return COPIES if op in LAYOUT_OPS else GENERATOR
    return context


def _parts_of(backbone: nn.Module) -> List[Tuple[nn.Module, str, str]]:
    """(module, attribute to wrap, part) for every marked piece of ``backbone``."""
    from ..models.layers.unit import WindowedDumbbellUnit
    from ..models.layers.window import WindowBlock
    marks = []
    for name, module in backbone.named_modules():
        if isinstance(module, WindowBlock):
            marks.append((module, 'window_attention', ATTENTION))
        elif isinstance(module, WindowedDumbbellUnit):
            marks += [(module, 'generate', GENERATOR), (module, 'recover_locally', RECOVERY)]
        elif type(module).__name__ in _STOCK_ATTENTION or _IMAGE_BLOCK_ATTN.search(name):
            marks.append((module, 'forward', ATTENTION))
        leaf = name.rsplit('.', 1)[-1]
        if leaf == 'generator':
            marks.append((module, 'forward', GENERATOR))
        elif leaf == 'recovery' and module is not None:
            marks.append((module, 'forward', RECOVERY))
        elif leaf == 'semantic_blocks':
            marks += [(block, 'forward', SEMANTIC) for block in module]
    # outermost only: a stock ShiftWindowMSA holds a WindowMSA (same part, one range)
    return [m for i, m in enumerate(marks)
            if not any(m[0] is other[0] and m[1] == other[1] for other in marks[:i])]


@contextlib.contextmanager
def instrument(backbone: nn.Module) -> Iterator[int]:
    """Mark the parts of ``backbone`` with profiler ranges inside the block; yields how many
    pieces were marked. The wrappers are instance attributes, removed on exit."""
    marked = []
    for module, attr, part in _parts_of(backbone):
        if attr in vars(module):  # already wrapped (one module reached twice)
            continue
        original = getattr(module, attr)

        def wrapped(*args, _original: Callable = original, _part: str = part, **kwargs):
            with record_function(PREFIX + _part):
                return _original(*args, **kwargs)
        setattr(module, attr, functools.update_wrapper(wrapped, original))
        marked.append((module, attr))
    try:
        yield len(marked)
    finally:
        for module, attr in marked:
            delattr(module, attr)


def _duration_us(event: Any) -> float:
    return event.time_range.end - event.time_range.start


def _kernels(event: Any) -> Tuple[int, float]:
    """(CUDA kernels, their microseconds) launched by ``event`` and the ops inside it."""
    count = len(event.kernels)
    time_us = sum(k.duration for k in event.kernels)
    for child in event.cpu_children:
        c, t = _kernels(child)
        count, time_us = count + c, time_us + t
    return count, time_us


def attribute(events: List[Any]) -> Dict[str, Dict[str, float]]:
    """{part: {time_ms, ops, kernels, device_ms}} of the profiled forwards in ``events``.

    ``events``: ``profile.events()`` of forwards each wrapped in a ``stvit_part::total``
    range. ``time_ms`` is CPU-side wall time and adds up to the totals' time;
    ``top_ops`` lists a part's costliest ops ([name, ms]) outside the gaps between ops.
    """
    ranged = set()
    for event in events:  # events that hold a part range (ranges and their ancestors)
        if event.name.startswith(PREFIX):
            parent = event
            while parent is not None and id(parent) not in ranged:
                ranged.add(id(parent))
                parent = parent.cpu_parent
    out = {part: dict(time_ms=0.0, ops=0, kernels=0, device_ms=0.0) for part in PARTS}
    by_op: Dict[str, Counter] = {part: Counter() for part in PARTS}

    def walk(event: Any, context: str) -> None:
        if event.name.startswith(PREFIX):
            name = event.name[len(PREFIX):]
            context = OTHER if name == TOTAL else name
        if id(event) in ranged:  # a range (or an op holding one): its gaps are its context's
            inner = sum(_duration_us(child) for child in event.cpu_children)
            out[context]['time_ms'] += max(_duration_us(event) - inner, 0.0) / 1000
            for child in event.cpu_children:
                walk(child, context)
            return
        name = classify(event.name, context)
        part = out[name]
        by_op[name][event.name] += _duration_us(event) / 1000
        kernels, device_us = _kernels(event)
        part['time_ms'] += _duration_us(event) / 1000
        part['ops'] += 1
        part['kernels'] += kernels
        part['device_ms'] += device_us / 1000

    totals = [e for e in events if e.name == PREFIX + TOTAL]
    for event in totals:
        walk(event, OTHER)
    for part in PARTS:  # where each part's op time goes: its costliest ops
        out[part]['top_ops'] = [[op, ms] for op, ms in by_op[part].most_common(TOP_OPS)]
    out[TOTAL] = dict(time_ms=sum(_duration_us(e) for e in totals) / 1000,
                      ops=sum(p['ops'] for p in out.values()),
                      kernels=sum(p['kernels'] for p in out.values()),
                      device_ms=sum(p['device_ms'] for p in out.values()))
    return out


def profile_parts(backbone: nn.Module, forward: Callable[[], Any], rounds: int = 3,
                  device: Optional[torch.device] = None) -> Dict[str, Any]:
    """Per-part time and op / kernel count of ``forward`` (a call of ``backbone``),
    averaged over ``rounds`` profiled forwards (call it after warm-up)."""
    device = device or next(backbone.parameters()).device
    activities = [ProfilerActivity.CPU]
    if device.type == 'cuda':
        activities.append(ProfilerActivity.CUDA)
    with instrument(backbone) as marked, profile(activities=activities) as prof:
        for _ in range(rounds):
            with record_function(PREFIX + TOTAL):
                forward()
            if device.type == 'cuda':
                torch.cuda.synchronize(device)
    parts = attribute(list(prof.events()))
    for values in parts.values():
        for key, value in values.items():
            if key == 'top_ops':
                values[key] = [[op, ms / rounds] for op, ms in value]
            else:
                values[key] = value / rounds
    return dict(parts=parts, marked=marked, rounds=rounds)


__all__ = ['PARTS', 'attribute', 'classify', 'instrument', 'profile_parts']
