"""Runner extensions, for configs that name ``stvit_mm.engine`` in ``custom_imports`` (ours do).

- ``RandomStateHook`` (registered in mmengine's root registry): exact resume.
- ``ForeignCheckpointHook`` (root registry): ``load_from`` an official / timm whole-model file
  (backbone converted, head mapped); our classification configs add it to ``custom_hooks``.
- Safe checkpoint loading (:mod:`stvit_mm.checkpoints.safe_loading`): mmengine reads local
  checkpoints with weights only plus known types. Inferencers load the checkpoint before they
  build the model, so this import (done by ``Config.fromfile``) is where it must happen.
"""
from ..checkpoints.runner_hook import ForeignCheckpointHook
from ..checkpoints.safe_loading import use_safe_checkpoint_loading
from .random_state import RandomStateHook

use_safe_checkpoint_loading()

__all__ = ['ForeignCheckpointHook', 'RandomStateHook']
