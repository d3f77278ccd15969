"""Checkpoint loading that never runs pickled code.

A ``.pth`` file is a pickle: loaded with ``weights_only=False`` it can run any
code it names (``os.system``...). We load every checkpoint with
``torch.load(weights_only=True)`` and an allow-list of exactly the non-tensor
types that the checkpoints we read hold:

- mmengine training checkpoints: the message hub's ``HistoryBuffer`` (numpy
  arrays inside; its pickled state names its statistics methods through
  ``getattr(HistoryBuffer, 'mean')``, so ``getattr`` is allowed on that class
  and those names only), numpy scalars in the runtime info;
- ``RandomStateHook``'s generator states (numpy arrays and dtypes);
- official STViT-R / Swin release files, which pickle their yacs training
  config: it is read as an ``OrderedDict`` (yacs' ``CfgNode`` is a dict
  subclass; its attributes land in the instance ``__dict__``), without importing
  yacs.

Anything else is refused with one line naming the type. For a file you trust,
``STVIT_TRUST_CHECKPOINTS=1`` (or a tool's ``--trust-checkpoint``) loads it
with ``weights_only=False``.
"""
import argparse
import os
import pickle
import re
from collections import OrderedDict
from typing import Any, List, Optional

import numpy as np
import torch

from .checkpoint_check import FIX, CheckpointReadError, check_checkpoint, load_error

TRUST_ENV = 'STVIT_TRUST_CHECKPOINTS'


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint needs a type outside the allow-list to be unpickled."""


def _numpy_reconstructors() -> List[Any]:
    try:  # numpy 2 moved the pickling helpers to numpy._core; files of numpy 1 name the old path
        from numpy._core import multiarray
    except ImportError:  # numpy 1
        from numpy.core import multiarray
    functions = [multiarray._reconstruct, multiarray.scalar]
    return functions + [(f, f'numpy.core.multiarray.{f.__name__}') for f in functions]


# HistoryBuffer's built-in statistics (its __init__ registers them; its state pickles them).
_HISTORY_BUFFER_STATISTICS = ('min', 'max', 'current', 'mean')


def _history_buffer_statistic(owner: Any, name: str) -> Any:
    """``getattr`` as the weights-only unpickler may run it: a statistics method of
    mmengine's ``HistoryBuffer``, nothing else."""
    from mmengine.logging.history_buffer import HistoryBuffer
    if owner is HistoryBuffer and name in _HISTORY_BUFFER_STATISTICS:
        return getattr(HistoryBuffer, name)
    raise UnsafeCheckpointError(f'refusing getattr({owner!r}, {name!r}) while unpickling')


def checkpoint_safe_globals() -> List[Any]:
    """The allow-list passed to ``torch.serialization.safe_globals``."""
    from mmengine.logging.history_buffer import HistoryBuffer
    dtypes = {type(np.dtype(code)) for code in '?bBhHiIlLqQefdgFDGUS'}
    return [HistoryBuffer, (_history_buffer_statistic, 'builtins.getattr'),
            (OrderedDict, 'yacs.config.CfgNode'), np.ndarray, np.dtype, *dtypes,
            *_numpy_reconstructors()]


def trusted() -> bool:
    return os.environ.get(TRUST_ENV, '') not in ('', '0')


def load_checkpoint_file(filename: str, map_location: Optional[Any] = None) -> Any:
    """``torch.load`` of a local file, weights only plus the allow-list (see module doc);
    a truncated or corrupted file raises CheckpointReadError naming it."""
    filename = os.path.expanduser(filename)
    if not os.path.isfile(filename):
        raise FileNotFoundError(f'checkpoint {filename} does not exist; check the path')
    check_checkpoint(filename)
    try:
        if trusted():
            return torch.load(filename, map_location=map_location, weights_only=False)
        with torch.serialization.safe_globals(checkpoint_safe_globals()):
            return torch.load(filename, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001  (re-raised unless it says the file is damaged)
        damage = load_error(err)
        if damage:
            raise CheckpointReadError(f'checkpoint {filename} is {damage}; {FIX}') from None
        if not isinstance(err, pickle.UnpicklingError) or trusted():
            raise
        what = _refused_item(str(err))
        raise UnsafeCheckpointError(
            f'{filename}: refusing to unpickle {what}, which a checkpoint does not need and '
            f'which could run code; if you trust this file, set {TRUST_ENV}=1 (tools: '
            '--trust-checkpoint)') from None


def _refused_item(message: str) -> str:
    """What torch's weights-only unpickler refused, from its multi-line message."""
    found = (re.search(r'GLOBAL ([\w.]+)', message) or re.search(r'refusing (.*) while', message)
             or re.search(r'WeightsUnpickler error:\s*(.+)', message))
    return found.group(1).strip() if found else 'an object outside the allow-list'


def use_safe_checkpoint_loading() -> None:
    """Make mmengine's loader of local files (``load_from``, resume, ``init_cfg``
    Pretrained, ``load_checkpoint``) use :func:`load_checkpoint_file`.

    Called by our tools and when one of our backbones is built (so inferencers and
    Runners holding our models read their checkpoints), not on import: importing stvit_mm
    leaves mmengine as it is (its own loader uses torch's ``weights_only=True`` default,
    safe too, but refuses mmengine's own training checkpoints).
    """
    from mmengine.runner.checkpoint import CheckpointLoader
    if CheckpointLoader._schemes.get('') is not _load_from_local:
        CheckpointLoader.register_scheme(prefixes='', force=True)(_load_from_local)


def _load_from_local(filename: str, map_location: Optional[Any] = None) -> Any:
    return load_checkpoint_file(filename, map_location)


class _TrustCheckpoints(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None) -> None:
        setattr(namespace, self.dest, True)
        os.environ[TRUST_ENV] = '1'  # also reaches the ranks a launcher starts from here


def add_trust_checkpoint_argument(parser: argparse.ArgumentParser) -> None:
    """``--trust-checkpoint`` for a tool: full unpickling, for files the user trusts."""
    parser.add_argument('--trust-checkpoint', nargs=0, action=_TrustCheckpoints, default=False,
                        help='unpickle checkpoints fully (can run code: only for files you '
                        'trust; default: weights and known types only)')
