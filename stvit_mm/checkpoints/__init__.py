"""Everything that happens when a checkpoint is read. Start here.

1. ``safe_loading``: files are read with weights only plus known types; installed by our
   entry points, ``import stvit_mm.engine`` and a backbone's ``init_weights``.
2. ``layouts`` (``detect_layout``, ``convert``), ``swin``, ``deit``: recognise a backbone
   state dict's layout and rename it to ours, for the model it is loaded into.
3. ``load_hook``: the backbones' load pre-hook (every loading path converts), with a report
   (``report``); ``plans``: the pre-hook after it, refusing another sparsification plan.
4. ``whole_checkpoint`` (tools/convert_checkpoint.py), ``whole_model`` and ``runner_hook``
   (``ForeignCheckpointHook``, ``load_from``): whole detector / classifier files.

Nothing here imports a backbone: what it needs of a model it receives (the model a state
dict is converted for) or reads from a small description (registry type names).
"""
from .conversion import Conversion, ConversionError, unwrap_checkpoint, unwrap_release_file
from .deit import DEIT_LAYOUTS
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
           'new_parameter', 'unwrap_checkpoint', 'unwrap_release_file']
