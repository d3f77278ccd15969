"""Parameters and multiply-adds of a config's model and of its backbone (``tools/get_flops.py``).

What is counted: :mod:`stvit_mm.analysis.flops`; which forward, per model
kind: :mod:`stvit_mm.analysis.forward`. Pretrained weights are dropped from
the config and ``init_weights`` is never called, so nothing is downloaded;
the numbers do not depend on weights.
"""
from typing import Any, Dict, Optional, Sequence, Union

from ..utils.config import load_config
from ..utils.model_builder import build_model
from .flops import FLOP_NOTE, count_flops, count_params, flops_by_child
from .forward import DEFAULT_CLIP_LEN, check_positive, check_shape, first_call, make_forward


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
        shape = check_shape(shape)  # before the slow build
    check_positive('clip length', clip_len)
    cfg = load_config(config, cfg_options)
    model = build_model(cfg)
    case = make_forward(model, shape, clip_len=clip_len)
    whole = first_call(lambda: count_flops(case.run), config, case)
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
        flops_by_module=flops_by_child(whole['by_module'], root, whole['flops']),
        flop_unit='multiply-adds (MACs)',
        note=FLOP_NOTE,
    )


__all__ = ['complexity_from_config']
