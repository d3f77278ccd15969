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
    canonical, dropped, source_of = {}, {}, {}
    for key, value in state_dict.items():
        before = set(canonical)
        if key.endswith(_RECOMPUTED):
            dropped[key] = 'buffer recomputed from the window size'
            continue
        if layout == 'openmmlab':
            match = _BLOCK_KEY.match(key)
            if match:
                name = match.group(3)
                for old, new in _OPENMMLAB_BLOCK.items():
                    if name == old or name.startswith(old + '.'):
                        name = new + name[len(old):]
                canonical[f'layers.{match.group(1)}.blocks.{match.group(2)}.{name}'] = value
            elif re.match(r'^stages\.\d+\.downsample\.', key):
                canonical['layers' + key[len('stages'):]] = _unfold_to_swin_order(value)
            elif key.startswith('patch_embed.projection.'):
                canonical['patch_embed.proj.' + key.split('.')[-1]] = value
            else:
                canonical[key] = value
        else:
            if key.startswith('norm.'):  # the official classifier's final norm = stage 4's
                canonical['norm3.' + key[len('norm.'):]] = value
            else:
                canonical[key] = value
        source_of.update({new_key: key for new_key in set(canonical) - before})
    return canonical, dropped, source_of


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


def _place(name: str, value: Tensor, role: str, block: Dict[str, Tensor]) -> Optional[str]:
    """Put one canonical block parameter into ``block`` (our names); return why not, or None."""
    if name.startswith('layer_scale_'):
        if role == 'window':
            return 'Swin window blocks have no layer scale'
        block[f'ls{name[-1]}.gamma'] = value
    elif name.startswith('attn.relative_position_bias_table'):
        if role != 'window':
            return 'only window blocks have a relative position bias'
        block[name] = value
    elif name.startswith('attn.qkv.'):
        kind = name.split('.')[-1]
        if role == 'cross':
            dim = value.shape[0] // 3
            block[f'attn.q.{kind}'], block[f'attn.kv.{kind}'] = value[:dim], value[dim:]
        else:
            block[name] = value
    elif name.startswith(('attn.q.', 'attn.kv.')):
        if role == 'cross':
            block[name] = value
        else:  # a self-attention block: q and kv become one qkv
            kind = name.split('.')[-1]
            part = 'q' if name.startswith('attn.q.') else 'kv'
            block.setdefault(f'_{kind}', {})[part] = value
    else:
        block[name] = value
    return None


def convert_swin_checkpoint(state_dict: Dict[str, Tensor], layout: str,
                            model) -> Tuple[Dict[str, Tensor], Dict[str, str]]:
    """Convert a Swin-family backbone state dict (no prefix) for ``model`` (STViTSwin).

    Returns:
        (converted tensors, {source key: why it was not loaded}).
    """
    canonical, dropped, source_of = to_canonical(state_dict, layout)
    targets = _block_targets(model)
    converted: Dict[str, Tensor] = {}
    blocks: Dict[str, Dict[str, Tensor]] = {}
    for key, value in canonical.items():
        match = _BLOCK_KEY.match(key)
        if match:
            where = (int(match.group(1)), int(match.group(2)))
            if where not in targets:
                dropped[source_of[key]] = f'no layer {where[1]} in stage {where[0]} of this model'
                continue
            path, role = targets[where]
            why = _place(match.group(3), value, role, blocks.setdefault(path, {}))
            if why:
                dropped[source_of[key]] = why
        elif re.match(r'^layers\.\d+\.downsample\.', key):
            converted['stages' + key[len('layers'):]] = value
        elif re.match(r'^layers\.\d+\.semantic_token2$', key):
            stage = int(key.split('.')[1])
            units = model.stages[stage].units if stage < len(model.stages) else []
            centres = units[0].generator.centres if len(units) else None
            if centres is not None and centres.shape == value.shape:
                for u in range(len(units)):
                    converted[f'stages.{stage}.units.{u}.generator.centres'] = value
            else:
                dropped[source_of[key]] = ('official centres G are tied to 224x224 inputs (one per '
                                'semantic token); ours are per window position')
        elif key.startswith(('patch_embed.', 'norm')) and not key.startswith('norm.'):
            if re.match(r'^norm(\d+)\.', key) and int(key[4]) not in model.out_indices:
                dropped[source_of[key]] = f'stage {key[4]} is not in out_indices'
            else:
                converted[key] = value
        else:
            dropped[source_of[key]] = 'not part of a Swin backbone (classifier head or unknown)'
    for path, params in blocks.items():
        for kind in ('weight', 'bias'):
            halves = params.pop(f'_{kind}', None)
            if halves:
                params[f'attn.qkv.{kind}'] = torch.cat([halves['q'], halves['kv']], 0)
        converted.update({f'{path}.{name}': value for name, value in params.items()})
    return converted, dropped
