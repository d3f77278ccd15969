"""The speed suite: ours vs stock, side by side in one process, over a fixed list of cases.

``tools/bench_gpu.py`` (``make bench-gpu``) runs :data:`GPU_CASES` on CUDA; the same
logic runs :data:`TINY_CASES` on the CPU (tiny shapes, the tests). Per case both models
are warmed up, then timed in interleaved rounds (:mod:`.rounds`); the result holds the
median, min and max per-call time of each model over the rounds, the per-round speed-up,
peak memory and the SDPA backend of every attention call (:mod:`.sdpa`). A case that
fails records its error (one line) and the suite goes on.
"""
import contextlib
import fnmatch
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn

from ..utils.config import ConfigError, load_config
from ..utils.model_builder import build_model
from .forward import ForwardCase, first_call, make_forward
from .measure import MEMORY_METHODS, peak_memory_mb, training_step
from .rounds import TIMING_METHOD, calls_per_round, ratio_rounds, spread, time_rounds
from .sdpa import record_sdpa

PRECISIONS = {'fp32': None, 'bf16': torch.bfloat16, 'fp16': torch.float16}
MEASURES = ('model', 'backbone', 'predict', 'train', 'train_backbone')


@dataclass(frozen=True)
class Pair:
    """A stock model and ours, at the input both are compared on."""
    task: str
    stock: str
    ours: str
    shape: Tuple[int, int]
    clip_len: int = 32


@dataclass(frozen=True)
class Case:
    """One comparison: which pair, what is timed, batch, precision, compiled or not.

    ``measure``: 'model' (tensor mode), 'backbone', 'predict' (whole model as
    tools/test.py runs it), 'train' / 'train_backbone' (forward + backward).
    ``compile``: ``torch.compile`` the backbone (the part that differs).
    """
    name: str
    pair: str
    measure: str
    batch_size: int
    precision: str = 'fp32'
    compile: bool = False


PAIRS = {
    'deit_s': Pair('classification', 'mmpretrain::deit/deit-small_4xb256_in1k.py',
                   'stvit_mm::classification/stvit_deit_s_in1k.py', (224, 224)),
    'mask_rcnn_swin_t': Pair('detection', 'mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py',
                             'stvit_mm::detection/mask_rcnn_stvit_r_swin_t.py', (800, 1333)),
    'upernet_swin_t': Pair(
        'segmentation',
        'mmseg::swin/swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512.py',
        'stvit_mm::segmentation/upernet_stvit_r_swin_t_ade20k.py', (512, 512)),
    'video_swin_t': Pair(
        'video', 'mmaction::recognition/swin/swin-tiny-p244-w877_in1k-pre_8xb8-amp-32x2x1-30e_'
        'kinetics400-rgb.py', 'stvit_mm::video/video_stvit_r_swin_t_k400.py', (224, 224), 32),
}
# Tiny inputs of the same pairs: the suite's logic on a CPU in seconds.
TINY_PAIRS = {
    'deit_s': Pair(**{**asdict(PAIRS['deit_s']), 'shape': (64, 64)}),
    'mask_rcnn_swin_t': Pair(**{**asdict(PAIRS['mask_rcnn_swin_t']), 'shape': (64, 96)}),
    'upernet_swin_t': Pair(**{**asdict(PAIRS['upernet_swin_t']), 'shape': (64, 64)}),
    'video_swin_t': Pair(**{**asdict(PAIRS['video_swin_t']), 'shape': (32, 32), 'clip_len': 4}),
}


def _cases(tiny: bool) -> List[Case]:
    """The suite's cases; ``tiny``: the same kinds of case at small batches."""
    cls_batches, det_batches, seg_batches = ((1, 4), (1, 2), (1, 2)) if tiny else \
        ((1, 64, 256), (1, 8), (1, 8))
    low = 'bf16'
    cases = []
    for precision in ('fp32', low):
        cases += [Case(f'deit_s/model/b{b}/{precision}', 'deit_s', 'model', b, precision)
                  for b in cls_batches]
        for b in det_batches:
            cases.append(Case(f'mask_rcnn_swin_t/backbone/b{b}/{precision}', 'mask_rcnn_swin_t',
                              'backbone', b, precision))
        for b in det_batches:  # mmcv's RoI ops take fp16, not bf16
            half = 'fp16' if precision != 'fp32' else 'fp32'
            cases.append(Case(f'mask_rcnn_swin_t/predict/b{b}/{half}', 'mask_rcnn_swin_t',
                              'predict', b, half))
        cases += [Case(f'upernet_swin_t/model/b{b}/{precision}', 'upernet_swin_t', 'model', b,
                       precision) for b in seg_batches]
        cases.append(Case(f'video_swin_t/model/b1/{precision}', 'video_swin_t', 'model', 1,
                          precision))
    b_cls = cls_batches[1]
    cases += [
        Case(f'deit_s/train/b{b_cls}/fp32', 'deit_s', 'train', b_cls, 'fp32'),
        Case(f'deit_s/train/b{b_cls}/{low}', 'deit_s', 'train', b_cls, low),
        Case(f'mask_rcnn_swin_t/train_backbone/b2/{low}', 'mask_rcnn_swin_t', 'train_backbone',
             2, low),
        Case(f'deit_s/model/b{b_cls}/{low}/compiled', 'deit_s', 'model', b_cls, low, True),
        Case(f'mask_rcnn_swin_t/backbone/b1/{low}/compiled', 'mask_rcnn_swin_t', 'backbone', 1,
             low, True),
    ]
    return cases


GPU_CASES = _cases(tiny=False)
TINY_CASES = _cases(tiny=True)


def select_cases(cases: Sequence[Case], patterns: Optional[Sequence[str]]) -> List[Case]:
    """The cases whose name matches any of the shell ``patterns`` (all without patterns)."""
    if not patterns:
        return list(cases)
    chosen = [c for c in cases if any(fnmatch.fnmatch(c.name, p) for p in patterns)]
    if not chosen:
        raise ConfigError(f'--cases {" ".join(patterns)}: no case matches (names like '
                          f'{cases[0].name})')
    return chosen


def _forward(model: nn.Module, case: Case, fc: ForwardCase) -> Callable[[], Any]:
    """The call a case times: autocast (if any) around the forward only, then for training
    cases the backward of :func:`training_step` outside it (as mixed-precision training
    runs)."""
    if case.measure in ('backbone', 'train_backbone'):
        forward = fc.run_backbone
    elif case.measure == 'predict':
        if fc.run_predict is None:
            raise ConfigError(f'{case.name}: predict mode is for detectors and segmentors')
        forward = fc.run_predict
    else:
        forward = fc.run
    dtype = PRECISIONS[case.precision]
    if dtype is not None:
        device = next(model.parameters()).device.type
        plain = forward

        def forward() -> Any:
            with torch.autocast(device, dtype=dtype):
                return plain()
    return training_step(forward, model) if case.measure.startswith('train') else forward


@contextlib.contextmanager
def _compiled_backbone(models: Sequence[nn.Module], enable: bool):
    """``model.backbone`` replaced by ``torch.compile(model.backbone)`` inside the block."""
    originals = [m.backbone for m in models]
    if enable:
        for m in models:
            m.backbone = torch.compile(m.backbone)
    try:
        yield
    finally:
        for m, backbone in zip(models, originals):
            m.backbone = backbone


def _model_result(config: str, fn: Callable[[], Any], seconds: List[float], unit_batch: int,
                  device: torch.device, sdpa: Optional[dict]) -> Dict[str, Any]:
    ms = spread([1000 * s for s in seconds])
    return dict(config=config, ms=ms, ms_rounds=[1000 * s for s in seconds],
                throughput=unit_batch * 1000 / ms['median'],
                peak_mem_mb=peak_memory_mb(fn, device), sdpa=sdpa)


def run_case(case: Case, pair: Pair, models: Sequence[nn.Module], device: torch.device,
             rounds: int, warmup: int, min_time: float) -> Dict[str, Any]:
    """Time one case (stock, ours) and return its JSON record."""
    train = case.measure.startswith('train')
    fcs = [make_forward(m, pair.shape, case.batch_size, pair.clip_len) for m in models]
    for model in models:
        model.train(train)
    # torch.compile's guards reject inference tensors: compiled inference runs under no_grad
    grad = (torch.enable_grad() if train else
            torch.no_grad() if case.compile else torch.inference_mode())
    with grad, _compiled_backbone(models, case.compile):
        fns = [_forward(m, case, fc) for m, fc in zip(models, fcs)]
        for fn, config, fc in zip(fns, (pair.stock, pair.ours), fcs):
            for _ in range(max(warmup, 1)):
                first_call(fn, config, fc)
        iters = [calls_per_round(fn, min_time, device) for fn in fns]
        seconds = time_rounds(fns, rounds, iters, device)
        sdpa = [None if case.compile else record_sdpa(fn) for fn in fns]
        stock, ours = (_model_result(config, fn, s, case.batch_size, device, sd)
                       for config, fn, s, sd in zip((pair.stock, pair.ours), fns, seconds, sdpa))
    return dict(asdict(case), task=pair.task, unit=fcs[0].unit, iters=iters,
                input=list(fcs[0].backbone_input_shape if 'backbone' in case.measure
                           else fcs[0].input_shape),
                stock=stock, ours=ours,
                speedup=spread(ratio_rounds(seconds[0], seconds[1])))


def _check_device(device: str) -> torch.device:
    torch_device = torch.device(device)
    if torch_device.type == 'cuda' and not torch.cuda.is_available():
        raise ConfigError('--device cuda: CUDA is not available on this machine')
    if torch_device.type not in MEMORY_METHODS:
        raise ConfigError(f'bad --device {device!r}: expected cpu or cuda')
    return torch_device


def describe_device(device: torch.device) -> str:
    if device.type == 'cuda':
        return f'cuda ({torch.cuda.get_device_name(device)})'
    return f'cpu ({torch.get_num_threads()} threads)'


def run_suite(cases: Sequence[Case], pairs: Dict[str, Pair], device: str = 'cuda',
              rounds: int = 10, warmup: int = 3, min_time: float = 0.05,
              budget_s: float = 540.0,
              log: Callable[[str], None] = lambda message: None) -> Dict[str, Any]:
    """Run ``cases`` (models built once per pair, in order) and return the suite's JSON.

    Cases left when ``budget_s`` seconds have passed are recorded as skipped, so the
    suite ends in time; a case that fails records its error and the next one runs.
    """
    torch_device = _check_device(device)
    for name, value in (('rounds', rounds), ('warmup', warmup)):
        if not isinstance(value, int) or value < (1 if name == 'rounds' else 0):
            raise ConfigError(f'bad --{name} {value}: expected a positive integer')
    order = {name: i for i, name in enumerate(dict.fromkeys(c.pair for c in cases))}
    cases = sorted(cases, key=lambda c: order[c.pair])  # each pair built once
    start = time.perf_counter()
    built: Dict[str, List[nn.Module]] = {}
    results = []
    for case in cases:
        pair = pairs[case.pair]
        if time.perf_counter() - start > budget_s:
            results.append(dict(asdict(case), task=pair.task, skipped='time budget spent'))
            continue
        log(f'{case.name}')
        try:
            if case.pair not in built:
                built.clear()  # one pair in memory at a time
                built[case.pair] = [build_model(load_config(c), torch_device)
                                    for c in (pair.stock, pair.ours)]
            results.append(run_case(case, pair, built[case.pair], torch_device, rounds,
                                    warmup, min_time))
        except Exception as error:  # a failed case must not cost the others
            reason = ' '.join(str(error).split())[:300] or type(error).__name__
            results.append(dict(asdict(case), task=pair.task,
                                error=f'{type(error).__name__}: {reason}'))
            log(f'  failed: {results[-1]["error"]}')
        finally:
            if torch_device.type == 'cuda':
                torch.cuda.empty_cache()
    return dict(
        device=describe_device(torch_device), torch=torch.__version__,
        cuda=torch.version.cuda, threads=torch.get_num_threads(),
        rounds=rounds, warmup=warmup, min_time=min_time,
        timing_method=TIMING_METHOD.format(rounds=rounds, iters='>= 1 (enough for '
                                           f'{min_time} s)', warmup=max(warmup, 1)),
        memory_method=MEMORY_METHODS[torch_device.type],
        pairs={name: asdict(pairs[name]) for name in sorted({c.pair for c in cases})},
        elapsed_s=time.perf_counter() - start, cases=results)


__all__ = ['Case', 'GPU_CASES', 'PAIRS', 'PRECISIONS', 'Pair', 'TINY_CASES', 'TINY_PAIRS',
           'describe_device', 'run_case', 'run_suite', 'select_cases']
