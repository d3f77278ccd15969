"""Time and peak memory of one call, and the training step whose time and memory are measured.

Each function measures any callable; :mod:`stvit_mm.analysis.benchmark`
applies them to models built from configs.
"""
import contextlib
import os
import sys
import time
from typing import Any, Callable, Iterator, List, Union

import torch
from torch import nn

MEMORY_METHODS = {
    'cpu': 'torch.profiler(profile_memory=True) over one forward: peak of the running sum of '
           'allocations minus frees (memory held before the forward excluded)',
    'cuda': 'torch.cuda.max_memory_allocated() during one forward minus the memory allocated '
            'before it',
}
MIB = 2**20


def _synchronize(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def time_forward(fn: Callable[[], Any], iters: int, device: Union[str, torch.device] = 'cpu',
                 min_time: float = 0.0) -> List[float]:
    """Seconds of each call of ``fn``: at least ``iters`` calls and ``min_time`` seconds.

    CUDA work is synchronised around every call, so each time is complete.
    """
    device = torch.device(device)
    durations: List[float] = []
    _synchronize(device)
    while len(durations) < iters or sum(durations) < min_time:
        start = time.perf_counter()
        fn()
        _synchronize(device)
        durations.append(time.perf_counter() - start)
    return durations


def _peak_of_cpu_allocations(prof: Any) -> int:
    """Peak of the running sum of CPU allocation (+) and free (-) events, in bytes.

    The raw kineto events hold one ``[memory]`` event per allocation and
    free; ``prof.events()`` folds them into the enclosing ops and loses the
    order inside an op.
    """
    from torch.autograd import DeviceType
    events = sorted((event.start_ns(), event.nbytes())
                    for event in prof.profiler.kineto_results.events()
                    if event.name() == '[memory]' and event.device_type() == DeviceType.CPU)
    running = peak = 0
    for _, nbytes in events:
        running += nbytes
        peak = max(peak, running)
    return peak


def peak_memory_mb(fn: Callable[[], Any], device: Union[str, torch.device] = 'cpu') -> float:
    """Peak memory (MiB) that one call of ``fn`` adds; method in ``MEMORY_METHODS``."""
    device = torch.device(device)
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        baseline = torch.cuda.memory_allocated(device)
        fn()
        torch.cuda.synchronize(device)
        return (torch.cuda.max_memory_allocated(device) - baseline) / MIB
    from torch.profiler import ProfilerActivity, profile
    prof = profile(activities=[ProfilerActivity.CPU], profile_memory=True)
    with _silenced_stderr():
        prof.start()
    try:
        fn()
    finally:
        with _silenced_stderr():
            prof.stop()
    return _peak_of_cpu_allocations(prof) / MIB


@contextlib.contextmanager
def _silenced_stderr() -> Iterator[None]:
    """Hide what native code writes to fd 2 (kineto logs every profiler start and stop,
    and a failed GPU probe on machines without one)."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _output_tensors(output: Any) -> Iterator[torch.Tensor]:
    """Every tensor in a (nested) tuple / list / dict output."""
    if isinstance(output, torch.Tensor):
        yield output
    elif isinstance(output, (tuple, list)):
        for item in output:
            yield from _output_tensors(item)
    elif isinstance(output, dict):
        for item in output.values():
            yield from _output_tensors(item)


def training_step(forward: Callable[[], Any], model: nn.Module) -> Callable[[], None]:
    """One training step's compute: ``forward`` with autograd, the backward of a proxy loss
    (the sum of every output tensor's mean, so every output feeds the gradients), gradients
    released. The same for every model kind, whatever its loss; no optimizer update."""
    def step() -> None:
        loss = sum(t.float().mean() for t in _output_tensors(forward()) if t.is_floating_point())
        loss.backward()
        model.zero_grad(set_to_none=True)
    return step


__all__ = ['MEMORY_METHODS', 'MIB', 'peak_memory_mb', 'time_forward', 'training_step']
