"""Checkpoint layout converters: pure functions on state dicts, one entry point.

``convert(state_dict, layout, model)`` (with ``detect_layout``) is what the
backbones' load pre-hook (``backbones/foreign_checkpoint.py``) and the whole-checkpoint
conversion (:mod:`.checkpoint`, behind tools/convert_checkpoint.py) both call.
:mod:`.checkpoint` builds models, so it is imported on its own, not from here; so is
:mod:`.whole_model` (``load_foreign_checkpoint``: a foreign whole-model file into a built model).
"""
from .conversion import Conversion, ConversionError, unwrap_checkpoint, unwrap_release_file
from .deit import DEIT_LAYOUTS, resize_grid_embed
from .layouts import (
    FAMILIES,
    LAYOUTS,
    convert,
    detect_layout,
    family_of,
    is_our_layout,
    new_parameter,
)
from .report import compact_keys, format_load_report, format_report, key_patterns
from .swin import SWIN_LAYOUTS

__all__ = ['Conversion', 'ConversionError', 'DEIT_LAYOUTS', 'FAMILIES', 'LAYOUTS',
           'SWIN_LAYOUTS', 'compact_keys', 'convert', 'detect_layout', 'family_of',
           'format_load_report', 'format_report', 'is_our_layout', 'key_patterns',
           'new_parameter', 'resize_grid_embed', 'unwrap_checkpoint', 'unwrap_release_file']
