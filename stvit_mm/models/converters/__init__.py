"""Checkpoint layout converters (pure functions on state dicts)."""
from .conversion import Conversion, PlanMismatchError
from .deit import DEIT_LAYOUTS, convert_deit, deit_new_parameter, deit_to_stvit, detect_deit_layout
from .swin import (SWIN_LAYOUTS, convert_swin, convert_swin_checkpoint, detect_swin_layout,
                   swin_new_parameter)


def unwrap_release_file(state_dict: dict, prefix: str) -> None:
    """Official DeiT / Swin release files wrap the weights as ``{'model': state_dict}``.

    mmengine's loader only unwraps ``'state_dict'``; unwrap ``'model'`` in place
    so that those files load through ``init_cfg=dict(type='Pretrained')`` too.
    """
    wrapped = state_dict.get(prefix + 'model')
    if isinstance(wrapped, dict):
        del state_dict[prefix + 'model']
        state_dict.update({prefix + k: v for k, v in wrapped.items()})


__all__ = ['Conversion', 'PlanMismatchError',
           'DEIT_LAYOUTS', 'SWIN_LAYOUTS', 'convert_deit', 'convert_swin',
           'convert_swin_checkpoint', 'deit_new_parameter', 'deit_to_stvit',
           'detect_deit_layout', 'detect_swin_layout', 'swin_new_parameter',
           'unwrap_release_file']
