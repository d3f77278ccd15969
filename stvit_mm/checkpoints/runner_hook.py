"""``load_from`` a foreign whole-model checkpoint: official / timm classifier files into our models.

The backbones' load pre-hook converts what reaches it under ``backbone.``; an
official Swin / DeiT / STViT-R-Swin release (``{'model': {'patch_embed...',
'layers...', 'head.weight'}}``) has no such keys, so ``load_from`` of it
would load nothing but warn of unexpected keys. mmengine's Runner reads the
file, calls the hooks' ``after_load_checkpoint`` and only then loads
``checkpoint['state_dict']`` (or the checkpoint itself) into the model; this
hook converts the checkpoint in between, with the rules and one-line errors
of tools/convert_checkpoint.py (:mod:`stvit_mm.checkpoints.whole_model`).
"""
from typing import Optional, Sequence

from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS

from .report import format_load_report
from .whole_model import convert_loaded_checkpoint


@HOOKS.register_module()  # mmengine's root registry: found under every OpenMMLab scope
class ForeignCheckpointHook(Hook):
    """Convert a ``load_from`` checkpoint in a foreign whole-model layout before it loads.

    Official Swin / DeiT / STViT-R-Swin and timm files (and bare OpenMMLab Swin
    backbones) become our keys: the backbone converted for ``runner.model``'s
    plan, the official ``head.weight/bias`` renamed to the model's head of that
    shape (``head.fc.*``; a head of another shape stays initialised, reported).
    One log line says what was converted, dropped and left new. Checkpoints in
    our layout, or with ``backbone.`` keys (converted by the backbone's own
    hook), pass untouched; so does every resume checkpoint (they are ours).

    Args:
        ignore: regexes of keys to leave out instead of failing on them (the
            tool's ``--ignore``).
        priority: before ``EMAHook`` (``ABOVE_NORMAL``), which copies
            ``checkpoint['state_dict']`` into the averaged model.

    Raises:
        ConversionError (in ``load_from``): another sparsification plan, or
            trained keys with no place in the model.
    """
    priority = 'VERY_HIGH'

    def __init__(self, ignore: Sequence[str] = (), priority: Optional[str] = None) -> None:
        self.ignore = tuple(ignore)
        if priority is not None:
            self.priority = priority

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        name = str(getattr(runner, '_load_from', None) or 'the checkpoint')  # no public name
        result = convert_loaded_checkpoint(checkpoint, model, self.ignore, name=name)
        if result is not None:
            print_log(f'{type(self).__name__}: {format_load_report(result, name)}',
                      logger='current')
