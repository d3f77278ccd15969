"""The forward that FLOP counting and benchmarking measure, per model kind, on generated inputs.

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

Detectors and segmentors also get ``run_predict``: the whole model as
``tools/test.py`` runs it (``mode='predict'``, post-processing included).
"""
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

import torch
from torch import nn

from ..utils.config import ConfigError
from ..utils.model_builder import model_kind

DEFAULT_SHAPES: Dict[str, Tuple[int, int]] = {
    'classifier': (224, 224), 'detector': (800, 1333), 'segmentor': (512, 512),
    'recognizer3d': (224, 224)}
DEFAULT_CLIP_LEN = 32  # frames of the Kinetics-400 Video Swin test clips


@dataclass
class ForwardCase:
    """One forward of a model (and of its backbone alone) on generated inputs.

    Attributes:
        kind: model kind, see :func:`stvit_mm.utils.model_kind`.
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


def check_shape(shape: Sequence[int]) -> Tuple[int, int]:
    """``shape`` as (H, W); :class:`ConfigError` unless two positive integers."""
    values = tuple(shape)
    if len(values) != 2 or not all(isinstance(v, int) and v > 0 for v in values):
        raise ConfigError(f'bad shape {shape}: expected two positive integers H W')
    return values


def check_positive(name: str, value: int) -> int:
    """``value``; :class:`ConfigError` naming ``name`` unless a positive integer."""
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
    check_positive('clip length', clip_len)
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
    size = check_shape(shape if shape is not None else DEFAULT_SHAPES[kind])
    check_positive('batch size', batch_size)
    device = next(model.parameters()).device
    return _CASE_BUILDERS[kind](model, size, batch_size, clip_len, seed, device)


def first_call(call: Callable[[], Any], config: Any, case: ForwardCase) -> Any:
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


__all__ = ['DEFAULT_CLIP_LEN', 'DEFAULT_SHAPES', 'ForwardCase', 'check_positive', 'check_shape',
           'first_call', 'make_forward']
