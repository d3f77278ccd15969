"""Exact resume: random-number-generator states saved in checkpoints and restored.

mmengine saves model, optimizer, schedulers and message hub, and on resume
re-seeds every generator with the run's seed. The generators then restart
from iteration 0 instead of continuing, so a resumed run draws other
drop-path masks, RPN/RoI samples and flips than the uninterrupted one and
its losses drift apart (measured: Mask R-CNN STViT-R-Swin, loss at the first
resumed iteration 2.9872 instead of 2.9789). This hook stores the states of
Python's ``random``, NumPy's global generator, torch's CPU generator and the
CUDA generators in every checkpoint and puts them back at the point of the
resumed run where the uninterrupted run stood when it saved.
"""
import logging
import random
from typing import Any, Callable, Dict, Iterator, List, Optional

import numpy as np
import torch
from mmengine.dist import all_gather_object, get_rank, get_world_size
from mmengine.hooks import CheckpointHook, Hook
from mmengine.logging import print_log
from mmengine.registry import HOOKS
from mmengine.runner import IterBasedTrainLoop

CHECKPOINT_KEY = 'random_state'


def get_random_state() -> Dict[str, Any]:
    """States of every global generator training draws from."""
    state = dict(python=random.getstate(), numpy=np.random.get_state(),
                 torch=torch.get_rng_state())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def set_random_state(state: Dict[str, Any]) -> None:
    """Inverse of :func:`get_random_state` (tensors may come back on any device)."""
    random.setstate(state['python'])
    np.random.set_state(state['numpy'])
    torch.set_rng_state(state['torch'].cpu())
    cuda = state.get('cuda')
    if cuda is not None and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in cuda])


class _RestoreBeforeItem:
    """Iterator proxy that calls ``restore`` just before item ``skip`` is fetched.

    mmengine's ``IterBasedTrainLoop`` skips the batches of finished
    iterations by fetching them (so the sampler and workers advance exactly
    as before); the data pipeline draws random numbers while doing so. The
    states must therefore come back after the skipped batches and before the
    first new one, where no hook is called.
    """

    def __init__(self, iterator: Iterator, skip: int, restore: Callable[[], None]) -> None:
        self._iterator, self._skip, self._restore = iterator, skip, restore

    def __iter__(self) -> '_RestoreBeforeItem':
        return self

    def __next__(self):
        if self._skip == 0 and self._restore is not None:
            self._restore()
            self._restore = None
        self._skip -= 1
        return next(self._iterator)

    def __getattr__(self, name: str):
        if name.startswith('_'):
            raise AttributeError(name)
        return getattr(self._iterator, name)


@HOOKS.register_module()
class RandomStateHook(Hook):
    """Save generator states in checkpoints; restore them when resuming.

    With it, a run killed after a checkpoint and resumed from it reproduces
    the uninterrupted run's losses and weights (same seed, deterministic
    ops, same number of processes). Validation runs between saved states and
    the next training iteration, so its random draws are isolated: the
    states before validation are put back after it.

    Each process's states are saved (gathered before every save that a
    ``CheckpointHook`` makes; rank 0 writes the checkpoint). A resume with
    another number of processes restores rank 0's states on every rank and
    warns: it cannot reproduce that run anyway.
    ``tools/train.py`` adds this hook to every config.
    """
    priority = 'LOW'  # after_train_iter/epoch before CheckpointHook (VERY_LOW) saves

    def __init__(self) -> None:
        self._state: Optional[Dict[str, Any]] = None  # this rank's, for the next save
        self._gathered: Optional[List[Dict[str, Any]]] = None  # every rank's, for the next save
        self._loaded: Optional[List[Dict[str, Any]]] = None  # from the resumed checkpoint
        self._before_val: Optional[Dict[str, Any]] = None

    # ---------------------------------------------------------------- saving
    #
    # mmengine's Runner.save_checkpoint is master-only: before_save_checkpoint
    # runs on rank 0 alone, where no collective can be called. The other
    # ranks' states are therefore gathered (a collective, all ranks) in the
    # hooks that precede a save: after the train iteration/epoch on which a
    # CheckpointHook saves, and before validation when it keeps the best one.

    @staticmethod
    def _checkpoint_hooks(runner) -> List[CheckpointHook]:
        return [h for h in runner.hooks if isinstance(h, CheckpointHook)]

    def _capture(self, gather: bool) -> None:
        self._state = get_random_state()
        # every CheckpointHook decides identically on every rank, so all ranks join or skip
        self._gathered = (all_gather_object(self._state)
                          if gather and get_world_size() > 1 else None)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        self._capture(any(
            not h.by_epoch and (h.every_n_train_iters(runner, h.interval, h.save_begin)
                                or (h.save_last and h.is_last_train_iter(runner)))
            for h in self._checkpoint_hooks(runner)))

    def after_train_epoch(self, runner) -> None:
        self._capture(any(
            h.by_epoch and (h.every_n_epochs(runner, h.interval, h.save_begin)
                            or (h.save_last and h.is_last_train_epoch(runner)))
            for h in self._checkpoint_hooks(runner)))

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if get_world_size() > 1 and self._gathered is not None:
            checkpoint[CHECKPOINT_KEY] = self._gathered
        else:
            # one process, or a save no CheckpointHook announced (a custom hook):
            # rank 0's states only; a resume on more ranks restores them everywhere and warns
            checkpoint[CHECKPOINT_KEY] = [self._state if self._state is not None
                                          else get_random_state()]

    # ---------------------------------------------------------------- validation

    def before_val(self, runner) -> None:
        self._before_val = get_random_state()
        if (get_world_size() > 1 and self._state is not None  # validation during training
                and any(h.save_best for h in self._checkpoint_hooks(runner))):
            self._gathered = all_gather_object(self._state)  # for a best checkpoint

    def after_val(self, runner) -> None:
        if self._before_val is not None:
            set_random_state(self._before_val)
            self._before_val = None

    # ---------------------------------------------------------------- resuming

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self._loaded = checkpoint.get(CHECKPOINT_KEY)

    def _restore(self) -> None:
        states, self._loaded = self._loaded, None
        rank, world = get_rank(), get_world_size()
        if len(states) != world:
            print_log(f'RandomStateHook: the checkpoint holds generator states of '
                      f'{len(states)} processes, this run has {world}; restoring rank 0\'s '
                      'on every rank (the run will not repeat the original exactly)',
                      logger='current', level=logging.WARNING)
            rank = 0
        set_random_state(states[rank])

    def before_train(self, runner) -> None:
        if not self._loaded or (runner.iter == 0 and runner.epoch == 0):
            self._loaded = None  # a fresh run, or weights loaded with load_from
            return
        loop = runner.train_loop
        if isinstance(loop, IterBasedTrainLoop):
            loop.dataloader_iterator = _RestoreBeforeItem(loop.dataloader_iterator,
                                                          loop.iter, self._restore)

    def before_train_epoch(self, runner) -> None:
        # Epoch-based loops resume at an epoch boundary: the epoch's data loader
        # is iterated after this hook, as it was after the saved epoch's end.
        if self._loaded and not isinstance(runner.train_loop, IterBasedTrainLoop):
            self._restore()
