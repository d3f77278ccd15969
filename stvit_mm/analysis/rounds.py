"""Interleaved timing rounds and their spread: the figures of the GPU suite and the zoo.

Each round times every callable in turn (the order alternates between rounds), so a
disturbance hits all of them alike; CUDA work is timed with CUDA events and
synchronised, CPU work with ``time.perf_counter``. A figure is the median of the rounds,
reported with its min, max and the number of rounds (:func:`spread`).
"""
import statistics
import time
from typing import Any, Callable, Dict, List, Sequence, Union

import torch

TIMING_METHOD = ('median of {rounds} interleaved rounds (calls of each model in turn, order '
                 'alternating), {iters} calls per round, {warmup} warm-up calls excluded; '
                 'CUDA: events around the calls and a synchronise; CPU: perf_counter')


def spread(values: Sequence[float]) -> Dict[str, Any]:
    """``median``, ``min``, ``max`` and ``rounds`` of per-round values."""
    if not values:
        raise ValueError('spread: no rounds')
    return dict(median=statistics.median(values), min=min(values), max=max(values),
                rounds=len(values))


def time_calls(fn: Callable[[], Any], iters: int,
               device: Union[str, torch.device] = 'cpu') -> float:
    """Mean seconds per call of ``fn`` over ``iters`` calls, synchronised on CUDA."""
    device = torch.device(device)
    if device.type == 'cuda':
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize(device)
        start.record()
        for _ in range(iters):
            fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1000 / iters
    begin = time.perf_counter()
    for _ in range(iters):
        fn()
    return (time.perf_counter() - begin) / iters


def calls_per_round(fn: Callable[[], Any], min_time: float,
                    device: Union[str, torch.device] = 'cpu', limit: int = 1000) -> int:
    """Calls that take at least ``min_time`` seconds (from one timed call), at most ``limit``."""
    if min_time <= 0:
        return 1
    once = max(time_calls(fn, 1, device), 1e-6)
    return int(min(limit, max(1, -(-min_time // once))))


def time_rounds(fns: Sequence[Callable[[], Any]], rounds: int, iters: Sequence[int],
                device: Union[str, torch.device] = 'cpu') -> List[List[float]]:
    """Seconds per call of each of ``fns`` in each round: ``out[i][r]``.

    ``iters[i]`` calls of ``fns[i]`` per round; even rounds go first to last, odd
    rounds last to first, so no callable always runs right after another one.
    """
    out: List[List[float]] = [[] for _ in fns]
    order = list(range(len(fns)))
    for r in range(rounds):
        for i in (order if r % 2 == 0 else order[::-1]):
            out[i].append(time_calls(fns[i], iters[i], device))
    return out


def ratio_rounds(reference: Sequence[float], other: Sequence[float]) -> List[float]:
    """Per-round speed-up ``reference / other`` of per-call times of the same rounds."""
    return [a / b for a, b in zip(reference, other)]


__all__ = ['TIMING_METHOD', 'calls_per_round', 'ratio_rounds', 'spread', 'time_calls',
           'time_rounds']
