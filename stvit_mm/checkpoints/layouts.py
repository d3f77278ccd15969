"""The one conversion entry point: any supported source layout -> our names, for one model.

Layout names are unique across the families, so a layout alone says which
converter runs:

===================  ======  ==========================================================
layout               family  files
===================  ======  ==========================================================
'openmmlab'          swin    mmdet / mmpretrain / mmseg Swin (``stages.*.w_msa``)
'official'           swin    Microsoft Swin releases (``layers.*.blocks.*``)
'official-stvit-r'   swin    changsn/STViT-R-Swin releases (``attn.q`` / ``attn.kv``)
'mmpretrain'         deit    mmpretrain VisionTransformer (``layers.*.ln1``)
'timm'               deit    official DeiT / timm ViT (``blocks.*.norm1``)
===================  ======  ==========================================================
"""
from typing import Callable, Dict, Iterable, NamedTuple, Optional

from torch import Tensor

from .conversion import Conversion
from .deit import DEIT_LAYOUTS, convert_deit, deit_new_parameter, detect_deit_layout
from .swin import SWIN_LAYOUTS, convert_swin, detect_swin_layout, swin_new_parameter


class Family(NamedTuple):
    """One family of source checkpoints and the backbones they initialise."""
    layouts: tuple
    detect: Callable[[Dict[str, object]], Optional[str]]
    convert: Callable[[Dict[str, Tensor], str, object], Conversion]
    new_parameter: Callable[[str, str], Optional[str]]


FAMILIES: Dict[str, Family] = {
    'swin': Family(SWIN_LAYOUTS, detect_swin_layout, convert_swin, swin_new_parameter),
    'deit': Family(DEIT_LAYOUTS, detect_deit_layout, convert_deit, deit_new_parameter),
}
LAYOUTS: Dict[str, str] = {layout: name for name, family in FAMILIES.items()
                           for layout in family.layouts}


def is_our_layout(keys: Iterable[str]) -> bool:
    """Keys of an STViT model (generator or unit layers): nothing to convert.

    Needed before detection: our STViT's ``blocks.{i}.norm1`` look like timm's.
    """
    return any(k.startswith('generator.') or '.units.' in k for k in keys)


def detect_layout(state_dict: Dict[str, object], family: Optional[str] = None) -> Optional[str]:
    """The source layout of a backbone state dict (no prefix), or None for ours / unknown.

    Args:
        state_dict: key -> anything (only the keys are read).
        family: 'swin' or 'deit' to look for that family's layouts only.
    """
    if is_our_layout(state_dict):
        return None
    names = [family] if family else list(FAMILIES)
    for name in names:
        layout = FAMILIES[name].detect(state_dict)
        if layout is not None:
            return layout
    return None


def family_of(layout: str) -> str:
    """'swin' or 'deit', the family a layout belongs to."""
    if layout not in LAYOUTS:
        raise ValueError(f'unknown checkpoint layout {layout!r}; expected one of {sorted(LAYOUTS)}')
    return LAYOUTS[layout]


def convert(state_dict: Dict[str, Tensor], layout: str, model) -> Conversion:
    """Convert a backbone state dict (no prefix) in ``layout`` for ``model``.

    ``model`` is the target backbone (STViT for DeiT layouts; STViTSwin or
    STViTVideoSwin for Swin layouts): its plan decides where every block goes.
    The result says what became of every source key; ``plan_mismatch`` is set
    when the source was made for another plan (callers refuse it).
    """
    return FAMILIES[family_of(layout)].convert(state_dict, layout, model)


def new_parameter(key: str, layout: str) -> Optional[str]:
    """Why our backbone parameter ``key`` cannot come from a ``layout`` checkpoint, or None."""
    return FAMILIES[family_of(layout)].new_parameter(key, layout)
