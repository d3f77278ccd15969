"""Swin checkpoints (mmdet/mmpretrain, official Swin, official STViT-R-Swin) -> STViTSwin.

Every layout is first brought to the official Swin naming ("canonical":
``layers.{i}.blocks.{j}.{param}``), then each block is placed by its role in
our stages: plain window block, or a unit's window block, generator layer,
semantic block or recovery block. Swin blocks feed the unit layers at the
same depth (a cross-attention layer splits ``qkv`` into ``q`` and ``kv``), so
an ImageNet Swin checkpoint initialises all of STViT-R-Swin.
"""
import re
from typing import Dict, Optional, Tuple

import torch
from torch import Tensor

from .conversion import Conversion

SWIN_LAYOUTS = ('openmmlab', 'official', 'official-stvit-r')

_OPENMMLAB_BLOCK = {'attn.w_msa.qkv': 'attn.qkv', 'attn.w_msa.proj': 'attn.proj',
                    'attn.w_msa.relative_position_bias_table':
                    'attn.relative_position_bias_table',
                    'ffn.layers.0.0': 'mlp.fc1', 'ffn.layers.1': 'mlp.fc2'}
_BLOCK_KEY = re.compile(r'^(?:layers|stages)\.(\d+)\.blocks\.(\d+)\.(.+)$')
_RECOMPUTED = ('relative_position_index', 'attn_mask')


def detect_swin_layout(state_dict: Dict[str, object]) -> Optional[str]:
    """One of :data:`SWIN_LAYOUTS`, or None for our own layout / not a Swin checkpoint."""
    keys = set(state_dict)
    if any('.w_msa.' in k for k in keys):
        return 'openmmlab'
    if any(k.startswith('layers.') and '.blocks.' in k for k in keys):
        stvit = any(re.match(r'layers\.\d+\.blocks\.\d+\.attn\.q\.weight$', k) for k in keys)
        return 'official-stvit-r' if stvit else 'official'
    return None


def _unfold_to_swin_order(value: Tensor) -> Tensor:
    """Patch-merging weights from nn.Unfold channel order (mmdet/mmpretrain) to Swin's.

    Unfold lays out channel-major (c * 4 + kernel position (0,0),(0,1),(1,0),(1,1));
    Swin concatenates position blocks (0,0),(1,0),(0,1),(1,1) of C channels each.
    """
    order = [0, 2, 1, 3]
    if value.ndim == 1:
        return value.reshape(-1, 4)[:, order].t().reshape(-1)
    out_dim = value.shape[0]
    return value.reshape(out_dim, -1, 4)[:, :, order].transpose(1, 2).reshape(out_dim, -1)


def to_canonical(state_dict: Dict[str, Tensor],
                 layout: str) -> Tuple[Dict[str, Tensor], Dict[str, str], Dict[str, str]]:
    """Rename any supported layout to official Swin names; drop recomputed buffers.

    Returns:
        (canonical tensors, {source key: why dropped}, {canonical key: source key}).
    """
    if layout not in SWIN_LAYOUTS:
        raise ValueError(f'unknown Swin layout {layout!r}; expected one of {SWIN_LAYOUTS}')
    # the official classifier's final `norm` normalises the last stage's output
    stages = [int(m.group(1)) for m in map(_BLOCK_KEY.match, state_dict) if m]
    final_norm = f'norm{max(stages, default=3)}.'
    canonical, dropped, source_of = {}, {}, {}
    for key, value in state_dict.items():
        if key.endswith(_RECOMPUTED):
            dropped[key] = 'buffer recomputed from the window size'
            continue
        if layout == 'openmmlab':
            name, value = _openmmlab_to_canonical(key, value)
        else:
            name = final_norm + key[len('norm.'):] if key.startswith('norm.') else key
        canonical[name] = value
        source_of[name] = key
    return canonical, dropped, source_of


def _openmmlab_to_canonical(key: str, value: Tensor) -> Tuple[str, Tensor]:
    """One mmdet/mmpretrain Swin key (and its tensor) in official Swin naming."""
    match = _BLOCK_KEY.match(key)
    if match:
        name = match.group(3)
        for old, new in _OPENMMLAB_BLOCK.items():
            if name == old or name.startswith(old + '.'):
                name = new + name[len(old):]
        return f'layers.{match.group(1)}.blocks.{match.group(2)}.{name}', value
    if re.match(r'^stages\.\d+\.downsample\.', key):
        return 'layers' + key[len('stages'):], _unfold_to_swin_order(value)
    if key.startswith('patch_embed.projection.'):
        return 'patch_embed.proj.' + key[len('patch_embed.projection.'):], value
    return key, value


def _block_targets(model) -> Dict[Tuple[int, int], Tuple[str, str]]:
    """(stage, canonical block index) -> (our module path, role) from the model's plan."""
    targets = {}
    for i, stage in enumerate(model.stages):
        j = 0
        for b in range(len(stage.blocks)):
            targets[(i, j)] = (f'stages.{i}.blocks.{b}', 'window')
            j += 1
        for u, unit in enumerate(stage.units):
            base = f'stages.{i}.units.{u}'
            layers = [('window_block', 'window'), ('generator.layer1', 'cross'),
                      ('generator.layer2', 'cross')]
            layers += [(f'semantic_blocks.{s}', 'semantic')
                       for s in range(len(unit.semantic_blocks))]
            if unit.recovery is not None:
                layers.append(('recovery', 'cross'))
            for name, role in layers:
                targets[(i, j)] = (f'{base}.{name}', role)
                j += 1
    return targets


# What an official STViT-R-Swin block is, from its tensors: the new layers carry separate q/kv.
_SWIN_BLOCK, _STVIT_LAYER = 'Swin window block', 'STViT-R layer (q/kv, layer scale)'
# The official STViT-R-Swin pools every 7x7 window to 3x3 (its sample_window_size, never set).
OFFICIAL_POOL_SIZE = (3, 3)
_ROLE_NAMES = {'window': 'window block', 'cross': 'generator/recovery layer',
               'semantic': 'semantic block'}


def plan_mismatch(canonical: Dict[str, Tensor], layout: str, model,
                  targets: Dict[Tuple[int, int], Tuple[str, str]]) -> Optional[str]:
    """The first way a canonical checkpoint's structure differs from ``model``'s, or None.

    Blocks are placed by index, so a checkpoint with another number of blocks
    in a stage, or (official STViT-R-Swin) with its new layers at other
    indices or another pool size, would load into layers of other roles. A
    plain Swin checkpoint initialises any plan of the same depths.
    """
    kinds: Dict[Tuple[int, int], str] = {}
    for key in canonical:
        match = _BLOCK_KEY.match(key)
        if match:
            where = (int(match.group(1)), int(match.group(2)))
            if match.group(3).startswith(('attn.q.', 'attn.kv.', 'layer_scale_')):
                kinds[where] = _STVIT_LAYER
            else:
                kinds.setdefault(where, _SWIN_BLOCK)
    for stage in sorted({i for i, _ in kinds} | {i for i, _ in targets}):
        theirs = 1 + max([j for i, j in kinds if i == stage], default=-1)
        ours = 1 + max([j for i, j in targets if i == stage], default=-1)
        if theirs != ours:
            return (f'stage {stage} has {theirs} blocks in the checkpoint and {ours} layers in '
                    'the model (another depth)')
    if layout != 'official-stvit-r':
        return None
    for (stage, j), (path, role) in sorted(targets.items()):
        wanted = _SWIN_BLOCK if role == 'window' else _STVIT_LAYER
        if kinds[(stage, j)] != wanted:
            return (f'stage {stage} block {j} is a {kinds[(stage, j)]} in the checkpoint but a '
                    f'{_ROLE_NAMES[role]} ({path}) in the model (another units/recovery plan)')
    for stage in model.stages:
        for unit in stage.units:
            if tuple(unit.pool_size[-2:]) != OFFICIAL_POOL_SIZE:
                return (f'the official STViT-R-Swin pools each window to 3x3 semantic tokens, '
                        f'the model to {"x".join(map(str, unit.pool_size))} (pool_size)')
    return None


def _place(name: str, value: Tensor, role: str, source_key: str,
           conv: Conversion) -> Dict[str, Tensor]:
    """One canonical block parameter as our parameter(s) of a block in ``role``.

    Returns {our name in the block: tensor}; empty (and the reason recorded in
    ``conv``) when the parameter has no place. ``_weight.q``-style names are
    halves of a ``qkv`` still to be joined.
    """
    kind = name.split('.')[-1]
    if name.startswith('layer_scale_'):
        if role == 'window':
            conv.reject(source_key, 'Swin window blocks have no layer scale')
            return {}
        return {f'ls{name[-1]}.gamma': value}
    if name.startswith('attn.relative_position_bias_table'):
        if role != 'window':
            conv.drop(source_key, 'only window blocks have a relative position bias')
            return {}
        return {name: value}
    if name.startswith('attn.qkv.') and role == 'cross':
        dim = value.shape[0] // 3  # PyTorch order q, k, v: q first, then kv
        return {f'attn.q.{kind}': value[:dim], f'attn.kv.{kind}': value[dim:]}
    if name.startswith(('attn.q.', 'attn.kv.')) and role != 'cross':
        part = 'q' if name.startswith('attn.q.') else 'kv'
        return {f'_{kind}.{part}': value}  # a self-attention block: q and kv become one qkv
    return {name: value}


def _join_qkv_halves(path: str, params: Dict[str, Tuple[Tensor, str]], conv: Conversion) -> None:
    """Put one block's parameters into ``conv``, joining ``q`` and ``kv`` halves into ``qkv``."""
    for kind in ('weight', 'bias'):
        q, kv = params.pop(f'_{kind}.q', None), params.pop(f'_{kind}.kv', None)
        if q is not None and kv is not None:
            conv.put(f'{path}.attn.qkv.{kind}', torch.cat([q[0], kv[0]], 0), q[1], kv[1])
        elif q is not None or kv is not None:
            conv.reject((q or kv)[1], 'q and kv must both be present to form a qkv')
    for name, (value, source_key) in params.items():
        conv.put(f'{path}.{name}', value, source_key)


def _convert_centres(key: str, source_key: str, value: Tensor, model, conv: Conversion) -> None:
    """Official centres G (``layers.{i}.semantic_token2``) -> every unit's, if shaped alike."""
    stage = int(key.split('.')[1])
    units = model.stages[stage].units if stage < len(model.stages) else []
    centres = units[0].generator.centres if len(units) else None
    if centres is not None and centres.shape == value.shape:
        for u in range(len(units)):
            conv.put(f'stages.{stage}.units.{u}.generator.centres', value, source_key)
    else:
        conv.drop(source_key, 'official centres G are tied to 224x224 inputs (one per semantic '
                  'token); ours are per window position')


def convert_swin(state_dict: Dict[str, Tensor], layout: str, model) -> Conversion:
    """Convert a Swin-family backbone state dict (no prefix) for ``model`` (STViTSwin).

    Every source key ends up converted, dropped by design or unmapped; see
    :class:`Conversion`.
    """
    canonical, dropped, source_of = to_canonical(state_dict, layout)
    conv = Conversion(dropped=dropped)
    targets = _block_targets(model)
    conv.plan_mismatch = plan_mismatch(canonical, layout, model, targets)
    blocks: Dict[str, Dict[str, Tuple[Tensor, str]]] = {}
    for key, value in canonical.items():
        source_key = source_of[key]
        match = _BLOCK_KEY.match(key)
        if match:
            where = (int(match.group(1)), int(match.group(2)))
            if where not in targets:
                conv.reject(source_key, f'no layer {where[1]} in stage {where[0]} of this model')
                continue
            path, role = targets[where]
            placed = _place(match.group(3), value, role, source_key, conv)
            blocks.setdefault(path, {}).update(
                {name: (tensor, source_key) for name, tensor in placed.items()})
        elif re.match(r'^layers\.\d+\.downsample\.', key):
            conv.put('stages' + key[len('layers'):], value, source_key)
        elif re.match(r'^layers\.\d+\.semantic_token2$', key):
            _convert_centres(key, source_key, value, model, conv)
        elif re.match(r'^norm\d+\.', key):
            if int(key[4:key.index('.')]) in model.out_indices:
                conv.put(key, value, source_key)
            else:
                conv.drop(source_key, f'stage {key[4:key.index(".")]} is not in out_indices')
        elif key.startswith('patch_embed.'):
            conv.put(key, value, source_key)
        elif key.startswith('head.'):
            conv.drop(source_key, 'classifier head (not part of the backbone)')
        else:
            conv.reject(source_key, 'not a key of a Swin backbone')
    for path, params in blocks.items():
        _join_qkv_halves(path, params, conv)
    return conv


def swin_new_parameter(key: str, layout: str) -> Optional[str]:
    """Why our backbone parameter ``key`` cannot come from a ``layout`` checkpoint, or None.

    These are the parameters STViT-R adds to Swin (layer scales of the new
    layers, global centres G), and output norms of stages a classifier does
    not normalise; any other parameter must be in the checkpoint.
    """
    if re.search(r'(^|\.)generator\.centres$', key):
        return ('global centres G (the official ones are per 224x224 token, ours per window '
                'position)' if layout == 'official-stvit-r' else 'global centres G (STViT-R only)')
    if re.search(r'\.ls[12]\.gamma$', key) and layout != 'official-stvit-r':
        return 'layer scale of an STViT-R layer (Swin blocks have none)'
    norm = re.match(r'^norm(\d+)\.', key)
    # official classifiers normalise stage 3 (the last of four) only; mmdet/mmpretrain files
    # hold the norms of their own out_indices
    if norm and (layout == 'openmmlab' or int(norm.group(1)) < 3):
        return f'output norm of stage {norm.group(1)} (the source returns no such output)'
    return None
