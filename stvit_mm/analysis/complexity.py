"""Parameters, multiply-adds, throughput and memory of models built from OpenMMLab configs.

FLOPs are reported as **multiply-adds (MACs)**, the convention of the STViT
paper and of the OpenMMLab model zoos (DeiT-S at 224x224 = 4.6 G). They are
counted by ``torch.utils.flop_counter.FlopCounterMode``, which reports 2 FLOPs
per multiply-add (we halve it) and counts 0 for the CPU fused-attention kernel
and for ``nn.MultiheadAttention``'s fast path: formulas for those are added
here, so fused attention (SDPA) is never skipped. Only matmul-like work is
counted (linear, matmul/bmm, convolution, attention); norms, activations,
softmax, pooling and element-wise ops are not.

Supported configs, by model kind, and the forward that is measured:

- ``classifier`` (mmpretrain ``ImageClassifier``): ``model(x, mode='tensor')``,
  x of shape (B, 3, H, W); the backbone gets the same x.
- ``detector`` (mmdet ``BaseDetector``): ``model(x, data_samples,
  mode='tensor')``, x of shape (B, 3, H', W') with H x W padded up to the data
  preprocessor's ``pad_size_divisor``; the backbone gets the same padded x.
  Tensor mode is the whole network without post-processing (mmdet's own
  convention for FLOPs): for two-stage detectors the RPN proposals feed the
  RoI heads, so head FLOPs depend on the number of proposals; weights are
  initialised with a fixed seed to keep that number reproducible.
- ``segmentor`` (mmseg ``BaseSegmentor``, e.g. ``EncoderDecoder``): ``model(x,
  data_samples, mode='tensor')``, x of shape (B, 3, H', W'), H x W padded only
  where the data preprocessor pads test images (its ``test_cfg``; stock UperNet
  configs do not); the backbone gets the same x. Tensor mode is the decode
  head's logits at its own resolution (no resize to the input, no auxiliary
  head: mmseg's own convention for FLOPs).
- ``recognizer3d`` (mmaction ``Recognizer3D``): ``model(x, mode='tensor',
  stage='head')``, x of shape (B, 1, 3, T, H, W) (one view per sample); the
  backbone gets (B, 3, T, H, W).

Pretrained weights are dropped from the config and ``init_weights`` is never
called, so nothing is downloaded; the numbers do not depend on weights.
"""
import contextlib
import copy
import math
import os
import statistics
import sys
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, TextIO, Tuple, Union

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .. import compat  # noqa: F401  (shims before any mm* import)
from ..utils import config as utils_config

aten = torch.ops.aten

DEFAULT_SHAPES: Dict[str, Tuple[int, int]] = {
    'classifier': (224, 224), 'detector': (800, 1333), 'segmentor': (512, 512),
    'recognizer3d': (224, 224)}
DEFAULT_CLIP_LEN = 32  # frames of the Kinetics-400 Video Swin test clips
FLOP_NOTE = ('FLOPs are multiply-adds (MACs) of linear, matmul, convolution and attention '
             '(fused SDPA included); norms, activations, softmax and pooling are not counted')
MEMORY_METHODS = {
    'cpu': 'torch.profiler(profile_memory=True) over one forward: peak of the running sum of '
           'allocations minus frees (memory held before the forward excluded)',
    'cuda': 'torch.cuda.max_memory_allocated() during one forward minus the memory allocated '
            'before it',
}
MIB = 2**20
# Warnings that building (not training) a stock model prints: mmseg's loss builders.
_BUILD_NOISE = ('``build_loss`` would be deprecated', 'Default ``avg_non_ignore`` is False')

# What each model kind feeds its forward, and the class that identifies it.
_KINDS = (
    ('classifier', 'mmpretrain.models.classifiers', 'ImageClassifier'),
    ('detector', 'mmdet.models.detectors', 'BaseDetector'),
    ('segmentor', 'mmseg.models.segmentors', 'BaseSegmentor'),
    ('recognizer3d', 'mmaction.models.recognizers', 'Recognizer3D'),
)


class ConfigError(ValueError):
    """Bad user input (missing config, unsupported model, bad shape); tools print it in one line."""


# --------------------------------------------------------------------------- configs and models


def resolve_config_path(config: str) -> str:
    """The file behind ``config`` (a path or ``pkg::rel``); :class:`ConfigError` if missing."""
    try:
        return utils_config.resolve_config_path(config)
    except (FileNotFoundError, ValueError) as err:
        raise ConfigError(str(err)) from None


def load_config(config: Union[str, Any], cfg_options: Optional[dict] = None) -> Any:
    """Load a config (path, ``pkg::rel`` or an mmengine ``Config``, which is copied).

    Args:
        config: what to load.
        cfg_options: overrides as from ``--cfg-options`` (``{'a.b': value}``).
    """
    from mmengine.config import Config
    cfg = (copy.deepcopy(config) if isinstance(config, Config)
           else Config.fromfile(resolve_config_path(config)))
    try:
        utils_config.apply_options(cfg, cfg_options)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    if not isinstance(cfg.get('model'), dict):
        raise ConfigError(f'config {cfg.filename} has no model dict')
    return cfg


def _without_pretrained_init(init_cfg: Any) -> Any:
    """``init_cfg`` minus ``Pretrained`` entries (a dict, a list of them, or None)."""
    def is_pretrained(item: Any) -> bool:
        return isinstance(item, dict) and item.get('type') == 'Pretrained'

    if isinstance(init_cfg, (list, tuple)):
        kept = [item for item in init_cfg if not is_pretrained(item)]
        return kept or None
    return None if is_pretrained(init_cfg) else init_cfg


def _drop_pretrained(node: Any) -> Any:
    """Copy of a model config with pretrained weights removed at every level.

    Some backbones download in ``__init__`` (``pretrained=True``/a URL), the
    rest in ``init_weights``, which we never call; clearing both keeps builds
    offline and fast.
    """
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == 'pretrained' and value:
                value = None if isinstance(value, str) else False
            elif key == 'init_cfg':
                value = _without_pretrained_init(value)
            out[key] = _drop_pretrained(value)
        return out
    if isinstance(node, (list, tuple)):
        return type(node)(_drop_pretrained(item) for item in node)
    return node


def build_model(cfg: Any, device: Union[str, torch.device] = 'cpu', seed: int = 0) -> nn.Module:
    """Build ``cfg.model`` in eval mode, honouring ``custom_imports`` and ``default_scope``.

    Weights are random (seeded, without touching the caller's RNG state);
    pretrained weights are never loaded.
    """
    from mmengine.config import ConfigDict
    from mmengine.registry import MODELS, init_default_scope
    from mmengine.utils import import_modules_from_strings

    if cfg.get('custom_imports'):
        import_modules_from_strings(**cfg.custom_imports)
    init_default_scope(cfg.get('default_scope', 'mmengine'))
    # ConfigDict: models read sub-configs as attributes (train_cfg.rpn).
    model_cfg = ConfigDict(_drop_pretrained(cfg.model.to_dict()))
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        # mmseg warns about its loss construction on every build; nothing here trains
        for message in _BUILD_NOISE:
            warnings.filterwarnings('ignore', message=message)
        torch.manual_seed(seed)
        model = MODELS.build(model_cfg)
    model.to(device)
    model.eval()  # not chained: mmdet's SwinTransformer.train() returns None
    return model


def model_kind(model: nn.Module) -> str:
    """'classifier', 'detector' or 'recognizer3d'; :class:`ConfigError` otherwise."""
    for kind, module_name, class_name in _KINDS:
        # A model can only be an instance of a class that is already imported.
        module = sys.modules.get(module_name)
        if module is not None and isinstance(model, getattr(module, class_name)):
            return kind
    raise ConfigError(f'unsupported model type {type(model).__name__}: expected an mmpretrain '
                      'ImageClassifier, an mmdet detector, an mmseg segmentor or an mmaction '
                      'Recognizer3D')


# --------------------------------------------------------------------------- inputs


@dataclass
class ForwardCase:
    """One forward of a model (and of its backbone alone) on generated inputs.

    Attributes:
        kind: model kind, see :func:`model_kind`.
        unit: what one batch element is, 'images' or 'clips'.
        batch_size: batch elements per forward.
        input_shape: shape of the tensor the model gets.
        backbone_input_shape: shape of the tensor the backbone gets.
        run: calls the whole model (``mode='tensor'``: the network, no post-processing).
        run_backbone: calls ``model.backbone`` on what the model would give it.
        run_predict: calls the whole model as ``tools/test.py`` does (``mode='predict'``:
            post-processing included: NMS and mask pasting, logits resized to the image);
            None where not built (classifiers and recognizers: see ``make_forward``).
    """
    kind: str
    unit: str
    batch_size: int
    input_shape: Tuple[int, ...]
    backbone_input_shape: Tuple[int, ...]
    run: Callable[[], Any] = field(repr=False)
    run_backbone: Callable[[], Any] = field(repr=False)
    run_predict: Optional[Callable[[], Any]] = field(default=None, repr=False)


def _check_shape(shape: Sequence[int]) -> Tuple[int, int]:
    values = tuple(shape)
    if len(values) != 2 or not all(isinstance(v, int) and v > 0 for v in values):
        raise ConfigError(f'bad shape {shape}: expected two positive integers H W')
    return values


def _check_positive(name: str, value: int) -> int:
    if not isinstance(value, int) or value < 1:
        raise ConfigError(f'bad {name} {value}: expected a positive integer')
    return value


def _randn(shape: Sequence[int], device: torch.device, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(tuple(shape), generator=generator).to(device)


def _detection_samples(img_shape: Tuple[int, int], pad_shape: Tuple[int, int],
                       batch_size: int) -> list:
    """What mmdet's data preprocessor would attach to unscaled images padded to ``pad_shape``."""
    from mmdet.structures import DetDataSample
    meta = dict(img_shape=img_shape, ori_shape=img_shape, pad_shape=pad_shape,
                batch_input_shape=pad_shape, scale_factor=(1.0, 1.0))
    return [DetDataSample(metainfo=meta) for _ in range(batch_size)]


def _classifier_case(model: nn.Module, size: Tuple[int, int], batch_size: int, clip_len: int,
                     seed: int, device: torch.device) -> ForwardCase:
    x = _randn((batch_size, 3, *size), device, seed)
    return ForwardCase('classifier', 'images', batch_size, tuple(x.shape), tuple(x.shape),
                       lambda: model(x, mode='tensor'), lambda: model.backbone(x))


def _detector_case(model: nn.Module, size: Tuple[int, int], batch_size: int, clip_len: int,
                   seed: int, device: torch.device) -> ForwardCase:
    # Pad like the data preprocessor, so the backbone sees what it sees in inference.
    divisor = int(getattr(model.data_preprocessor, 'pad_size_divisor', 1))
    padded = tuple(math.ceil(side / divisor) * divisor for side in size)
    x = _randn((batch_size, 3, *padded), device, seed)
    samples = _detection_samples(size, padded, batch_size)
    return ForwardCase('detector', 'images', batch_size, tuple(x.shape), tuple(x.shape),
                       lambda: model(x, samples, mode='tensor'), lambda: model.backbone(x),
                       lambda: model(x, samples, mode='predict'))


def _segmentor_case(model: nn.Module, size: Tuple[int, int], batch_size: int, clip_len: int,
                    seed: int, device: torch.device) -> ForwardCase:
    from mmseg.structures import SegDataSample
    # mmseg pads test images only when the preprocessor's test_cfg says so (size or divisor).
    test_pad = getattr(model.data_preprocessor, 'test_cfg', None) or {}
    padded = tuple(test_pad.get('size') or size)
    divisor = int(test_pad.get('size_divisor') or 1)
    padded = tuple(math.ceil(max(p, s) / divisor) * divisor for p, s in zip(padded, size))
    x = _randn((batch_size, 3, *padded), device, seed)
    meta = dict(img_shape=size, ori_shape=size, pad_shape=padded)
    samples = [SegDataSample(metainfo=meta) for _ in range(batch_size)]
    return ForwardCase('segmentor', 'images', batch_size, tuple(x.shape), tuple(x.shape),
                       lambda: model(x, samples, mode='tensor'), lambda: model.backbone(x),
                       lambda: model(x, samples, mode='predict'))


def _recognizer3d_case(model: nn.Module, size: Tuple[int, int], batch_size: int, clip_len: int,
                       seed: int, device: torch.device) -> ForwardCase:
    _check_positive('clip length', clip_len)
    x = _randn((batch_size, 1, 3, clip_len, *size), device, seed)
    clips = x.flatten(0, 1)  # what Recognizer3D.extract_feat gives the backbone
    # stage='head': tensor mode stops after the backbone by default.
    return ForwardCase('recognizer3d', 'clips', batch_size, tuple(x.shape), tuple(clips.shape),
                       lambda: model(x, mode='tensor', stage='head'),
                       lambda: model.backbone(clips))


_CASE_BUILDERS = dict(classifier=_classifier_case, detector=_detector_case,
                      segmentor=_segmentor_case, recognizer3d=_recognizer3d_case)


def make_forward(model: nn.Module, shape: Optional[Sequence[int]] = None, batch_size: int = 1,
                 clip_len: int = DEFAULT_CLIP_LEN, seed: int = 0) -> ForwardCase:
    """Generate inputs for ``model`` and wrap its forward (see the module docstring).

    Args:
        model: a built model (its device is used for the inputs).
        shape: image (H, W); default per kind, see ``DEFAULT_SHAPES``.
        batch_size: images or clips per forward.
        clip_len: frames per clip (video recognizers only).
        seed: seed of the random inputs.
    """
    kind = model_kind(model)
    size = _check_shape(shape if shape is not None else DEFAULT_SHAPES[kind])
    _check_positive('batch size', batch_size)
    device = next(model.parameters()).device
    return _CASE_BUILDERS[kind](model, size, batch_size, clip_len, seed, device)


# --------------------------------------------------------------------------- FLOPs


def _first_call(call: Callable[[], Any], config: Any, case: ForwardCase) -> Any:
    """Run the first forward of a model, turning input rejections into :class:`ConfigError`.

    Models check their input with ValueError (ours) or assert (OpenMMLab),
    e.g. sides that are not a multiple of the patch size: bad user input.
    """
    try:
        return call()
    except (ValueError, AssertionError) as error:
        reason = ' '.join(str(error).split()) or type(error).__name__
        raise ConfigError(f'{config}: the model rejects input {case.input_shape}: '
                          f'{reason}') from error


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


def _top_level_flops(by_module: Dict[str, int], root: str, total: int) -> Dict[str, int]:
    """{child name: MACs} for the direct children of the root module, plus ``other``.

    Torch's module tracker sees modules entered through ``__call__`` only;
    work of a child called as ``child.forward(...)`` (mmdet's two-stage
    detectors do this with ``roi_head`` in tensor mode) lands in ``other``.
    """
    prefix = root + '.'
    children = {name[len(prefix):]: flops for name, flops in by_module.items()
                if name.startswith(prefix) and '.' not in name[len(prefix):]}
    rest = total - sum(children.values())
    return {**children, 'other': rest} if rest else children


def complexity_from_config(config: Union[str, Any], shape: Optional[Sequence[int]] = None,
                           clip_len: int = DEFAULT_CLIP_LEN,
                           cfg_options: Optional[dict] = None) -> Dict[str, Any]:
    """Parameters and multiply-adds of a config's model and of its backbone (batch 1).

    Args:
        config: path, ``pkg::rel`` or an mmengine ``Config``.
        shape: image (H, W); default per model kind (``DEFAULT_SHAPES``).
        clip_len: frames per clip for video recognizers.
        cfg_options: config overrides.

    Returns:
        A JSON-ready dict: ``flops`` and ``backbone_flops`` (MACs), ``params``,
        ``backbone_params``, ``input_shape``, ``backbone_input_shape``,
        ``model_type``, ``backbone_type``, ``kind``, ``flops_by_module`` (direct
        children of the model), ``config``, ``flop_unit`` and ``note``.
    """
    if shape is not None:
        shape = _check_shape(shape)  # before the slow build
    _check_positive('clip length', clip_len)
    cfg = load_config(config, cfg_options)
    model = build_model(cfg)
    case = make_forward(model, shape, clip_len=clip_len)
    whole = _first_call(lambda: count_flops(case.run), config, case)
    backbone = count_flops(case.run_backbone)
    root = type(model).__name__
    return dict(
        config=config if isinstance(config, str) else cfg.filename,
        model_type=root,
        kind=case.kind,
        backbone_type=type(model.backbone).__name__,
        input_shape=list(case.input_shape),
        backbone_input_shape=list(case.backbone_input_shape),
        flops=whole['flops'],
        params=count_params(model),
        backbone_flops=backbone['flops'],
        backbone_params=count_params(model.backbone),
        flops_by_module=_top_level_flops(whole['by_module'], root, whole['flops']),
        flop_unit='multiply-adds (MACs)',
        note=FLOP_NOTE,
    )


def _giga(value: float) -> str:
    return f'{value / 1e9:.3f} G'


def _mega(value: float) -> str:
    return f'{value / 1e6:.3f} M'


def _short(value: float) -> str:
    """G above 0.1 G, M below, so small heads do not read as 0."""
    return _giga(value) if value >= 1e8 else _mega(value)


def format_complexity(result: Dict[str, Any]) -> str:
    """Human-readable table of a :func:`complexity_from_config` result."""
    rows = [('', 'input shape', 'params', 'MACs'),
            ('model', str(tuple(result['input_shape'])), _mega(result['params']),
             _giga(result['flops'])),
            ('backbone', str(tuple(result['backbone_input_shape'])),
             _mega(result['backbone_params']), _giga(result['backbone_flops']))]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    table = ['  '.join(cell.ljust(w) if i < 2 else cell.rjust(w)
                       for i, (cell, w) in enumerate(zip(row, widths))) for row in rows]
    total = max(result['flops'], 1)
    parts = ', '.join(f'{name} {_short(flops)} ({100 * flops / total:.1f}%)'
                      for name, flops in result['flops_by_module'].items())
    return '\n'.join([
        f"config:   {result['config']}",
        f"model:    {result['model_type']} ({result['kind']}), "
        f"backbone {result['backbone_type']}",
        *table,
        f'modules:  {parts}',
        f"note:     {result['note']}; G = 1e9, M = 1e6",
    ])


@contextlib.contextmanager
def json_stdout() -> Iterator[TextIO]:
    """Reserve stdout for one JSON document; anything else printed goes to stderr.

    mmengine's logger and native libraries write to file descriptor 1, so
    swapping ``sys.stdout`` is not enough: fd 1 points at stderr inside the
    block, and the yielded stream writes to the real stdout.
    """
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    stream = os.fdopen(os.dup(saved), 'w')
    try:
        yield stream
    finally:
        stream.close()
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


# --------------------------------------------------------------------------- speed and memory


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


def _forward_fn(entry: '_Entry', case: ForwardCase, backbone_only: bool) -> Callable[[], Any]:
    forward = (case.run_backbone if backbone_only else
               case.run_predict if entry.predict else case.run)
    return training_step(forward, entry.model) if entry.train else forward


def _describe_device(device: torch.device) -> str:
    if device.type == 'cuda':
        return f'cuda ({torch.cuda.get_device_name(device)})'
    return f'cpu ({torch.get_num_threads()} threads)'


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
    for name, value in (('batch size', batch_size), ('repeats', repeats), ('iters', iters)):
        _check_positive(name, value)
    if warmup < 0 or min_time < 0:
        raise ConfigError(f'bad warmup {warmup} / min time {min_time}: expected >= 0')
    if shape is not None:
        shape = _check_shape(shape)
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
            _first_call(lambda: time_forward(fn, warmup, device), entry.config, case)


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
        'peak_mem_mb': peak_memory_mb(fn, device),
    }


def format_benchmark(result: Dict[str, Any]) -> str:
    """Side-by-side table of a :func:`benchmark_configs` result."""
    header = ('config', 'model', 'throughput', 'ratio', 'latency b=1', 'speed-up b=1',
              'peak mem')
    rows = [header] + [(
        r['config'], r['backbone_type'], f"{r['throughput']:.2f} {r['unit'][:-1]}/s",
        f"{r['ratio']:.2f}x", f"{r['latency_ms']:.1f} ms", f"{r['latency_speedup']:.2f}x",
        f"{r['peak_mem_mb']:.1f} MiB") for r in result['results']]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    table = ['  '.join(cell.ljust(w) if i < 2 else cell.rjust(w)
                       for i, (cell, w) in enumerate(zip(row, widths))) for row in rows]
    measure = 'backbone only' if result['measure'] == 'backbone' else 'whole model'
    if result.get('step', '').startswith('training'):
        measure += ', training step (forward + backward)'
    if result.get('mode') == 'predict':
        measure += ", mode='predict' (post-processing included)"
    lines = [
        f"device {result['device']}, batch {result['batch_size']}, input "
        f"{'x'.join(map(str, result['shape']))}"
        + (f", {result['clip_len']} frames" if result.get('clip_len') else '')
        + f", {measure}, torch {result['torch']}",
        *table,
        "ratio: throughput / first config's; speed-up b=1: first config's latency / latency",
        f"timing: {result['timing_method']}",
        f"memory: {result['memory_method']}; MiB = 2**20 bytes",
    ]
    if result.get('command'):
        lines.append(f"command: {result['command']}")
    return '\n'.join(lines)
