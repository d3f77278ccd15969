"""Whether a checkpoint was trained with this model's plan: a load pre-hook on every backbone.

:func:`check_checkpoint_fits` runs after a backbone's converting pre-hook (``load_hook.py``),
so it sees the checkpoint in our names, whatever the loading path (``init_cfg`` Pretrained,
``load_checkpoint``, ``load_from``/resume, ``load_state_dict``). What it needs of a model it
reads from the state dicts: layer kinds from key names, and the plan records below.
"""
from typing import Dict, Optional

import torch
from torch import Tensor, nn

PLAN_FIX = ('build the backbone as the checkpoint was trained (its arch depths and units, '
            "recovery, semantic_layers, pool_size; official STViT-R-Swin files: preset='official', "
            "the authors' COCO detectors: preset='official-det'), "
            'or initialise it from the plain Swin/DeiT checkpoint the other one started from')
POOLED_GRID = 'pooled_grid'  # the generators' record of their pool size (layers/semantic.py)
FORK_PLAN_RECORD = 'fork_key_sides'  # the detection fork's units' record (layers/fork_unit.py)
# Buffers that record a plan in our checkpoints; converted files get the model's own.
PLAN_RECORDS = (POOLED_GRID, FORK_PLAN_RECORD)


def raise_plan_mismatch(owner: str, difference: str) -> None:
    """One line for a checkpoint of another sparsification plan, with the fix."""
    raise ValueError(f'{owner}: the checkpoint has another sparsification plan than this model: '
                     f'{difference}; {PLAN_FIX}')


def _layer_kinds(keys) -> Dict[str, str]:
    """{layer path: kind} of a state dict in our names (every block and layer has a norm1)."""
    keys = list(keys)  # in the state dict's order: the model's own is its module order
    present = set(keys)
    kinds = {}
    for key in keys:
        if key.endswith('.norm1.weight'):
            path = key[:-len('.norm1.weight')]
            kinds[path] = ('cross-attention layer' if f'{path}.attn.q.weight' in present else
                           'window block' if f'{path}.attn.relative_position_bias_table' in present
                           else 'self-attention block')
    return kinds


def plan_difference(own: Dict[str, Tensor], given: Dict[str, Tensor]) -> Optional[str]:
    """The first difference in plan between a checkpoint in our names and the model, or None.

    Compared: which layers exist (units per stage, recovery, semantic blocks,
    plain blocks) and their kind, and the generators' pooled grids. A grid of
    fewer dims than the model's (a 2-D checkpoint inflated to 3-D windows) is
    compared with the model's trailing (spatial) dims.
    """
    fork = _fork_plan_difference(own, given)
    if fork:
        return fork
    for key, grid in own.items():
        if key.endswith(POOLED_GRID) and key in given:
            theirs = given[key].reshape(-1).cpu()
            if not torch.equal(theirs, grid.reshape(-1).cpu()[-theirs.numel():]):
                return (f'{key[:-len(POOLED_GRID) - 1]} pools each window to '
                        f'{"x".join(map(str, theirs.tolist()))} semantic tokens in the '
                        f'checkpoint, {"x".join(map(str, grid.tolist()))} in the model')
    ours, theirs = _layer_kinds(own), _layer_kinds(given)
    if not theirs:
        return None
    for path, kind in ours.items():
        if path not in theirs:
            return f'the checkpoint has no {path} (a {kind} of the model)'
        if theirs[path] != kind:
            return f'{path} is a {theirs[path]} in the checkpoint and a {kind} in the model'
    extra = next((path for path in theirs if path not in ours), None)
    if extra is not None:
        return f'the checkpoint has {extra} (a {theirs[extra]}), the model has none'
    return None


def _fork_plan_difference(own: Dict[str, Tensor], given: Dict[str, Tensor]) -> Optional[str]:
    """Whether the units of the checkpoint and of the model compute the same way: the
    detection fork's units record their plan (``FORK_PLAN_RECORD``), windowed ones do not."""
    if not any('.units.' in key for key in given):
        return None  # no unit in the checkpoint: nothing it could have been trained as

    def plan(state: Dict[str, Tensor]) -> str:
        record = next((v for k, v in state.items() if k.endswith(FORK_PLAN_RECORD)), None)
        if record is None:
            return "unit_plan='windowed'"
        return (f"unit_plan='detection-fork' (keys {'/'.join(map(str, record.tolist()))}, "
                "preset='official-det')")

    theirs, ours = plan(given), plan(own)
    if theirs != ours:
        return f'its units compute with {theirs}, the model\'s with {ours}'
    return None


def check_checkpoint_fits(module: nn.Module, state_dict: dict, prefix: str, *args) -> None:
    """Load pre-hook: raise ValueError if the checkpoint is of another model.

    Tensors whose names match but whose shapes do not (another arch, window or
    pool size) would be skipped with only a warning by mmengine's non-strict
    loading and leave those weights random; a checkpoint sharing no name with
    the backbone would leave all of them random; a checkpoint of another
    sparsification plan (:func:`plan_difference`) would load its layers into
    layers of other roles. Missing or extra keys alone are legitimate (new
    layers, classifier heads) and left to the loaders' reports. A checkpoint
    without the generators' pooled-grid record (converted from Swin/DeiT, or
    older) gets the model's own.
    """
    owner = type(module).__name__
    own = module.state_dict()
    given = {key[len(prefix):]: value for key, value in state_dict.items()
             if key.startswith(prefix)}
    if not given:
        return
    difference = plan_difference(own, given)  # first: it explains any shape differences
    if difference:
        raise_plan_mismatch(owner, difference)
    wrong = [f'{key} {tuple(value.shape)} vs {tuple(own[key].shape)}'
             for key, value in given.items()
             if key in own and hasattr(value, 'shape') and value.shape != own[key].shape]
    if wrong:
        more = f' and {len(wrong) - 1} more' if len(wrong) > 1 else ''
        raise ValueError(f'{owner}: checkpoint tensors do not fit this model: {wrong[0]} '
                         f'(checkpoint vs model){more}; the checkpoint was made with another '
                         'arch/window/pool size: configure the backbone as the checkpoint was '
                         'trained, or drop those keys from the checkpoint')
    if not any(key in own for key in given):
        example = next(iter(given))
        raise ValueError(f'{owner}: none of the {len(given)} checkpoint tensors (e.g. '
                         f'{prefix}{example!r}) belongs to this backbone; load a checkpoint of '
                         f'this backbone (for a whole-model checkpoint, give init_cfg '
                         "prefix='backbone.')")
    for key, grid in own.items():  # the records are the model's from here on
        if key.endswith(PLAN_RECORDS):
            state_dict[prefix + key] = grid.clone()


def register_checkpoint_check(module: nn.Module) -> None:
    """Install :func:`check_checkpoint_fits` as ``module``'s last load pre-hook.

    Call it after the backbone registers its converting pre-hook (hooks run in
    registration order).
    """
    module._register_load_state_dict_pre_hook(check_checkpoint_fits, with_module=True)
