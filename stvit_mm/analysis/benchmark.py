"""Throughput, batch-1 latency and peak memory of several configs, side by side in one process.

The measurements themselves are :mod:`stvit_mm.analysis.measure`'s; which
forward each model kind runs is :mod:`stvit_mm.analysis.forward`'s.
``tools/benchmark.py`` is a command line over :func:`benchmark_configs`.
"""
import statistics
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn

from ..utils.config import ConfigError, load_config
from ..utils.model_builder import build_model
from .flops import count_params
from .forward import (
    DEFAULT_CLIP_LEN,
    ForwardCase,
    check_positive,
    check_shape,
    first_call,
    make_forward,
)
from .measure import MEMORY_METHODS, peak_memory_mb, time_forward, training_step


@dataclass
class _Entry:
    """A model under benchmark and what was measured so far."""
    config: str
    model: nn.Module
    case: ForwardCase
    single: ForwardCase  # batch 1, for latency
    train: bool = False  # time training steps (forward + backward) instead of forwards
    predict: bool = False  # whole model with post-processing (mode='predict')
    throughputs: List[float] = field(default_factory=list)
    latencies: List[float] = field(default_factory=list)


def _forward_fn(entry: _Entry, case: ForwardCase, backbone_only: bool) -> Callable[[], Any]:
    forward = (case.run_backbone if backbone_only else
               case.run_predict if entry.predict else case.run)
    return training_step(forward, entry.model) if entry.train else forward


def _describe_device(device: torch.device) -> str:
    if device.type == 'cuda':
        return f'cuda ({torch.cuda.get_device_name(device)})'
    return f'cpu ({torch.get_num_threads()} threads)'


def _check_settings(shape: Optional[Sequence[int]], batch_size: int, device: str, warmup: int,
                    repeats: int, iters: int, min_time: float, backbone_only: bool,
                    train: bool, mode: str) -> Tuple[Optional[Tuple[int, int]], torch.device]:
    """The checked shape and device; :class:`ConfigError` for settings that cannot work."""
    for name, value in (('batch size', batch_size), ('repeats', repeats), ('iters', iters)):
        check_positive(name, value)
    if warmup < 0 or min_time < 0:
        raise ConfigError(f'bad warmup {warmup} / min time {min_time}: expected >= 0')
    if shape is not None:
        shape = check_shape(shape)
    if mode not in ('tensor', 'predict'):
        raise ConfigError(f"bad mode {mode!r}: expected 'tensor' or 'predict'")
    if mode == 'predict' and (backbone_only or train):
        raise ConfigError("mode 'predict' times whole-model inference: not with backbone only "
                          'or training steps')
    torch_device = torch.device(device)
    if torch_device.type == 'cuda' and not torch.cuda.is_available():
        raise ConfigError('--device cuda: CUDA is not available on this machine')
    if torch_device.type not in MEMORY_METHODS:
        raise ConfigError(f'unsupported device {device!r}: expected cpu or cuda')
    return shape, torch_device


def benchmark_configs(configs: Sequence[str], shape: Optional[Sequence[int]] = None,
                      batch_size: int = 32, device: str = 'cpu', warmup: int = 2,
                      repeats: int = 3, iters: int = 3, min_time: float = 0.0,
                      backbone_only: bool = False, clip_len: int = DEFAULT_CLIP_LEN,
                      cfg_options: Optional[dict] = None, train: bool = False,
                      mode: str = 'tensor',
                      log: Callable[[str], None] = lambda message: None) -> Dict[str, Any]:
    """Throughput, batch-1 latency and peak forward memory of several configs, in one process.

    All models are built first; each repeat then times every model in turn,
    so a disturbance (another process, thermal drift) hits all models alike
    instead of biasing the ratio. Forwards run in eval mode under
    ``torch.inference_mode()``; with ``train``, training steps (:func:`training_step`:
    forward with autograd in train mode, backward) are timed and their peak memory measured.

    Args:
        configs: paths or ``pkg::rel``; the first one is the reference of ``ratio``.
        shape: image (H, W); default per model kind.
        batch_size: images (clips) per forward for throughput and memory.
        device: 'cpu' or 'cuda'.
        warmup: untimed forwards per model and batch size before timing.
        repeats: timed repeats per model; medians are reported.
        iters: forwards per repeat (at least; see ``min_time``).
        min_time: minimum seconds per repeat.
        backbone_only: time ``model.backbone`` on the input it gets in the model.
        clip_len: frames per clip for video recognizers.
        cfg_options: overrides applied to every config.
        train: time training steps instead of inference forwards.
        mode: 'tensor' (the network's outputs) or 'predict' (detectors and segmentors:
            the whole model as ``tools/test.py`` runs it, post-processing included).
        log: progress messages (e.g. print to stderr).

    Returns:
        A JSON-ready dict with ``results`` (one per config: ``images_per_s`` or
        ``clips_per_s``, ``throughput``, ``unit``, ``latency_ms``,
        ``peak_mem_mb``, ``ratio`` = throughput / first config's, ...) and
        the settings (``device``, ``batch_size``, ``shape``, methods).
    """
    if not configs:
        raise ConfigError('no config given')
    shape, torch_device = _check_settings(shape, batch_size, device, warmup, repeats, iters,
                                          min_time, backbone_only, train, mode)
    entries = [_build_entry(config, shape, batch_size, clip_len, cfg_options, torch_device, log)
               for config in configs]
    for entry in entries:
        if mode == 'predict' and entry.case.run_predict is None:
            raise ConfigError(f"{entry.config}: mode 'predict' is for detectors and "
                              f"segmentors (a {entry.case.kind}'s tensor mode is its "
                              'prediction up to a softmax)')
        entry.train, entry.predict = train, mode == 'predict'
        entry.model.train(train)  # (mmdet's Swin returns None from train(): no chaining)
    with torch.enable_grad() if train else torch.inference_mode():
        _warm_up(entries, warmup, backbone_only, torch_device, log)
        _time_interleaved(entries, repeats, iters, min_time, backbone_only, torch_device, log)
        results = [_entry_result(entry, backbone_only, torch_device) for entry in entries]
    calls = 'training steps' if train else 'forwards'
    reference = results[0]
    for result in results:
        result['ratio'] = result['throughput'] / reference['throughput']
        result['latency_speedup'] = reference['latency_ms'] / result['latency_ms']
        # the same repeat of both models ran back to back: its ratio is one paired sample
        result['ratio_repeats'] = [ours / ref for ours, ref in zip(
            result['throughput_repeats'], reference['throughput_repeats'])]
        result['paired_ratio'] = statistics.median(result['ratio_repeats'])
        result['paired_ratio_min'] = min(result['ratio_repeats'])
        result['paired_ratio_max'] = max(result['ratio_repeats'])
    return dict(
        results=results,
        device=_describe_device(torch_device),
        batch_size=batch_size,
        shape=list(entries[0].case.input_shape[-2:]),
        clip_len=clip_len if any(e.case.kind == 'recognizer3d' for e in entries) else None,
        measure='backbone' if backbone_only else 'model',
        mode=mode,
        step='training step (forward + backward)' if train else 'inference forward',
        threads=torch.get_num_threads(),
        torch=torch.__version__,
        warmup=warmup, repeats=repeats, iters=iters, min_time=min_time,
        timing_method=(f'median over {repeats} repeats of >= {iters} {calls} each (models '
                       f'interleaved per repeat, {warmup} warm-up {calls} excluded); latency: '
                       f'median of single batch-1 {calls}'
                       + (f' (the same {calls})' if batch_size == 1 else '')),
        memory_method=MEMORY_METHODS[torch_device.type].replace(
            'the forward', f'the {calls[:-1]}').replace('one forward', f'one {calls[:-1]}'),
    )


def _build_entry(config: str, shape: Optional[Tuple[int, int]], batch_size: int, clip_len: int,
                 cfg_options: Optional[dict], device: torch.device,
                 log: Callable[[str], None]) -> _Entry:
    log(f'building {config}')
    model = build_model(load_config(config, cfg_options), device)
    return _Entry(config, model, make_forward(model, shape, batch_size, clip_len),
                  make_forward(model, shape, 1, clip_len))


def _warm_up(entries: Sequence[_Entry], warmup: int, backbone_only: bool, device: torch.device,
             log: Callable[[str], None]) -> None:
    """Untimed forwards at both batch sizes (first-call allocations, kernel selection)."""
    for entry in entries:
        log(f'warming up {entry.config}')
        for case in (entry.case, entry.single):
            fn = _forward_fn(entry, case, backbone_only)
            # called at once, inside this iteration
            first_call(lambda: time_forward(fn, warmup, device), entry.config, case)  # noqa: B023


def _time_interleaved(entries: Sequence[_Entry], repeats: int, iters: int, min_time: float,
                      backbone_only: bool, device: torch.device,
                      log: Callable[[str], None]) -> None:
    """Each repeat times every model in turn: throughput at the batch size, then latency.

    At batch size 1 the throughput forwards are the latency samples: timing
    more of the same forward would only halve the samples per second spent.
    """
    for repeat in range(repeats):
        for entry in entries:
            log(f'repeat {repeat + 1}/{repeats}: {entry.config}')
            durations = time_forward(_forward_fn(entry, entry.case, backbone_only), iters,
                                     device, min_time)
            entry.throughputs.append(entry.case.batch_size * len(durations) / sum(durations))
            if entry.case.batch_size == 1:  # these forwards are batch-1 forwards already
                entry.latencies += durations
            else:
                entry.latencies += time_forward(_forward_fn(entry, entry.single, backbone_only),
                                                iters, device)


def _entry_result(entry: _Entry, backbone_only: bool, device: torch.device) -> Dict[str, Any]:
    """Medians and peak memory of one benchmarked model (memory measured here)."""
    case = entry.case
    throughput = statistics.median(entry.throughputs)
    fn = _forward_fn(entry, case, backbone_only)
    return {
        'config': entry.config,
        'model_type': type(entry.model).__name__,
        'backbone_type': type(entry.model.backbone).__name__,
        'kind': case.kind,
        'unit': case.unit,
        'input_shape': list(case.backbone_input_shape if backbone_only else case.input_shape),
        'params': count_params(entry.model.backbone if backbone_only else entry.model),
        'throughput': throughput,
        f'{case.unit}_per_s': throughput,
        'throughput_repeats': entry.throughputs,
        'latency_ms': 1000 * statistics.median(entry.latencies),
        'latency_ms_min': 1000 * min(entry.latencies),
        'latency_ms_max': 1000 * max(entry.latencies),
        'latency_samples': len(entry.latencies),
        'peak_mem_mb': peak_memory_mb(fn, device),
    }


__all__ = ['benchmark_configs']
