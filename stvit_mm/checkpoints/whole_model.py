"""A whole-model checkpoint in a foreign layout, converted where it is loaded.

The backbones' load pre-hook sees only the keys under ``backbone.``. Official
Swin / DeiT / STViT-R-Swin classifier releases (and timm files, and bare
mmpretrain / mmdet Swin backbones) have no such prefix -- ``patch_embed...``,
``layers...``, ``head.weight`` -- so loaded into a whole model they fill
nothing. :func:`convert_loaded_checkpoint` recognises such a checkpoint and
replaces it by the whole-model conversion of
:func:`~.checkpoint.convert_checkpoint` (the backbone converted, the official
``head`` renamed to the model's head of its shape), the rules and errors of
tools/convert_checkpoint.py. ``stvit_mm.engine.ForeignCheckpointHook`` calls
it in the Runner (``load_from``); :func:`load_foreign_checkpoint` is the same
for a model built by hand (an inferencer's ``.model``).
"""
from typing import Dict, Optional, Sequence, Tuple

from mmengine.runner.checkpoint import load_state_dict
from torch import Tensor, nn

from .conversion import ConversionError, unwrap_checkpoint
from .layouts import LAYOUTS, detect_layout
from .whole_checkpoint import (
    BACKBONE_PREFIX,
    SOURCES,
    Result,
    convert_checkpoint,
    is_official_detector,
    load_source,
    target_from_model,
)

# layout -> the tool's --from name that reads it (the first: e.g. 'timm' -> 'deit-official')
SOURCE_OF_LAYOUT: Dict[str, str] = {
    layout: next(source for source, layouts in SOURCES.items() if layout in layouts)
    for layout in LAYOUTS}


def foreign_whole_model(checkpoint: dict) -> Optional[Tuple[Dict[str, Tensor], str]]:
    """(tensors, layout) of a checkpoint whose keys are a foreign layout without the
    ``backbone.`` prefix; None for anything else (ours, prefixed, not a state dict).

    Prefixed foreign keys (an mmpretrain Swin classifier) are left to the
    backbone's load pre-hook, which converts them; an official detector is converted
    here (its plan is checked against the model's, which its backbone alone cannot tell).
    """
    try:
        tensors = unwrap_checkpoint(checkpoint)
    except ConversionError:  # optimizer states etc. beside the weights: not ours to judge
        return None
    if is_official_detector(tensors):  # whole-model conversion: it checks the plan
        return tensors, 'official-stvit-r'
    if any(key.startswith(BACKBONE_PREFIX) for key in tensors):
        return None
    layout = detect_layout(dict.fromkeys(tensors))  # None for our layout
    return None if layout is None else (tensors, layout)


def convert_loaded_checkpoint(checkpoint: dict, model: nn.Module, ignore: Sequence[str] = (),
                              name: str = 'checkpoint') -> Optional[Result]:
    """Convert a loaded foreign whole-model checkpoint for ``model``, in place.

    Afterwards ``checkpoint['state_dict']`` holds our keys (what mmengine's
    loader and ``EMAHook`` read) and ``model`` holds them too (the conversion is
    verified by loading). Other checkpoints are left untouched.

    Args:
        checkpoint: as read from the file (``{'model': ...}``, ``{'state_dict': ...}``
            or a bare state dict).
        model: the whole model (not wrapped in DistributedDataParallel).
        ignore: regexes of keys to leave out instead of failing (the tool's ``--ignore``).
        name: how messages name the checkpoint.

    Returns:
        The conversion (its fate of every key, for a report), or None when nothing was done.

    Raises:
        ConversionError: another sparsification plan, a backbone the layout does not fit,
            or source keys with no place in the model (one message, as the tool's).
    """
    found = foreign_whole_model(checkpoint)
    if found is None:
        return None
    tensors, layout = found
    target = target_from_model(model, name)
    target.name = type(model).__name__  # messages name the file first
    try:
        result = convert_checkpoint(tensors, SOURCE_OF_LAYOUT[layout], target, ignore)
    except ConversionError as error:
        raise ConversionError(f'{name}: {error}') from None
    if all(isinstance(value, Tensor) for value in checkpoint.values()):
        checkpoint.clear()  # a bare state dict: the file held nothing else
    checkpoint.pop('model', None)  # an official release's weights, replaced
    checkpoint['state_dict'] = dict(result.state_dict)
    return result


def load_foreign_checkpoint(model: nn.Module, path: str,
                            ignore: Sequence[str] = ()) -> Optional[Result]:
    """Load a checkpoint file into a whole model, converting a foreign whole-model layout.

    For models built outside a Runner, e.g. ``ImageClassificationInferencer(cfg).model``
    (inferencers load ``weights`` without hooks). Checkpoints in our layout (or
    with ``backbone.`` keys) load as ``mmengine.runner.load_checkpoint`` loads them.

    Returns:
        The conversion, or None when the file needed none.
    """
    checkpoint = {'state_dict': load_source(path)}
    result = convert_loaded_checkpoint(checkpoint, model, ignore, name=path)
    load_state_dict(model, checkpoint['state_dict'], strict=False, logger='current')
    return result
