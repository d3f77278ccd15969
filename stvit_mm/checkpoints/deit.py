"""DeiT / ViT checkpoints (mmpretrain or official DeiT / timm layout) -> STViT.

DeiT's 12 blocks map onto STViT's 12 layers in order: the first blocks stay
full-token blocks, the next two become the generator layers, then semantic
blocks, then the recovery block. A cross-attention layer takes its ``q`` from
the first third of the block's ``qkv`` and ``kv`` from the rest (PyTorch
order: q, k, v), so every pretrained matrix is reused.
"""
import math
import re
from typing import Dict, Optional

from torch import Tensor

from .conversion import Conversion

DEIT_LAYOUTS = ('mmpretrain', 'timm')

# Block-internal renames into our (timm-style) names.
_MMPRETRAIN_BLOCK = {'ln1': 'norm1', 'ln2': 'norm2', 'ffn.layers.0.0': 'mlp.fc1',
                     'ffn.layers.1': 'mlp.fc2', 'attn.qkv': 'attn.qkv', 'attn.proj': 'attn.proj'}
_TIMM_BLOCK = {n: n for n in ('norm1', 'norm2', 'mlp.fc1', 'mlp.fc2', 'attn.qkv', 'attn.proj')}
_LAYOUT = {
    'mmpretrain': dict(block=re.compile(r'^layers\.(\d+)\.(.+)\.(weight|bias)$'),
                       renames=_MMPRETRAIN_BLOCK, patch='patch_embed.projection.',
                       final_norm='ln1.'),
    'timm': dict(block=re.compile(r'^blocks\.(\d+)\.(.+)\.(weight|bias)$'), renames=_TIMM_BLOCK,
                 patch='patch_embed.proj.', final_norm='norm.'),
}
# Keys that exist in DeiT but have no counterpart in STViT, and why.
_NO_COUNTERPART = {
    'cls_token': 'STViT has no class token (global average pooling of semantic tokens)',
    'dist_token': 'STViT has no distillation token',
}
_CROSS_LAYERS = ('generator.layer1', 'generator.layer2', 'recovery')


def detect_deit_layout(state_dict: Dict[str, Tensor]) -> Optional[str]:
    """'mmpretrain', 'timm' or None (not a DeiT checkpoint) from the key names."""
    if 'layers.0.attn.qkv.weight' in state_dict and 'layers.0.ln1.weight' in state_dict:
        return 'mmpretrain'
    if 'blocks.0.attn.qkv.weight' in state_dict and 'blocks.0.norm1.weight' in state_dict:
        return 'timm'
    return None


def resize_pos_embed(pos_embed: Tensor, model, num_extra_tokens: int = 0) -> Tensor:
    """(1, extra + h*w, C) square-grid position embedding -> the model's (1, H*W, C) without
    extras, resized by the model (``resize_position_table``)."""
    grid_embed = pos_embed[:, num_extra_tokens:]
    side = math.isqrt(grid_embed.shape[1])
    if side * side != grid_embed.shape[1]:
        raise ValueError(f'pos_embed has {grid_embed.shape[1]} grid positions after '
                         f'{num_extra_tokens} class/distillation tokens: not a square grid')
    return model.resize_position_table(grid_embed, (side, side))


def _layer_targets(num_full_layers: int, num_semantic_layers: int,
                   recovery: bool) -> Dict[int, str]:
    """DeiT block index -> our layer path, in depth order."""
    gen = num_full_layers
    targets = {i: f'blocks.{i}' for i in range(num_full_layers)}
    targets.update({gen: 'generator.layer1', gen + 1: 'generator.layer2'})
    targets.update({gen + 2 + j: f'semantic_blocks.{j}' for j in range(num_semantic_layers)})
    if recovery:
        targets[gen + 2 + num_semantic_layers] = 'recovery'
    return targets


def convert_deit(state_dict: Dict[str, Tensor], layout: str, model) -> Conversion:
    """Convert a DeiT backbone state dict (no prefix) for ``model`` (an STViT).

    Args:
        state_dict: DeiT backbone tensors.
        layout: one of :data:`DEIT_LAYOUTS`.
        model: the target; its plan (``num_full_layers``, ``num_semantic_layers``,
            ``recovery_enabled``) places the blocks, its ``pos_grid`` sizes ``pos_embed``.

    Returns:
        every source key converted, dropped by design or unmapped (:class:`Conversion`).
    """
    if layout not in _LAYOUT:
        raise ValueError(f'unknown DeiT layout {layout!r}; expected one of {DEIT_LAYOUTS}')
    spec = _LAYOUT[layout]
    targets = _layer_targets(model.num_full_layers, model.num_semantic_layers,
                             model.recovery_enabled)
    conv = Conversion()
    depth = 1 + max((int(m.group(1)) for m in map(spec['block'].match, state_dict) if m),
                    default=-1)
    if depth != len(targets):
        # blocks are placed by index: another depth would shift every role
        conv.plan_mismatch = (f'the checkpoint has {depth} blocks and the model {len(targets)} '
                              'layers (num_full_layers + 2 + num_semantic_layers + recovery)')
    num_extra = sum(k in state_dict for k in ('cls_token', 'dist_token'))
    for key, value in state_dict.items():
        match = spec['block'].match(key)
        if match:
            index, name, kind = int(match.group(1)), match.group(2), match.group(3)
            if index not in targets:
                conv.reject(key, f'STViT has no layer {index} in this plan')
            elif name not in spec['renames']:
                conv.reject(key, f'unknown DeiT block parameter {name!r}')
            elif targets[index] in _CROSS_LAYERS and name == 'attn.qkv':
                dim = value.shape[0] // 3  # PyTorch order q, k, v: q first, then kv
                conv.put(f'{targets[index]}.attn.q.{kind}', value[:dim], key)
                conv.put(f'{targets[index]}.attn.kv.{kind}', value[dim:], key)
            else:
                conv.put(f'{targets[index]}.{spec["renames"][name]}.{kind}', value, key)
        elif key.startswith(spec['patch']):
            conv.put('patch_embed.proj.' + key[len(spec['patch']):], value, key)
        elif key.startswith(spec['final_norm']):
            conv.put('norm.' + key[len(spec['final_norm']):], value, key)
        elif key == 'pos_embed':
            conv.put('pos_embed', resize_pos_embed(value, model, num_extra), key)
        elif key in _NO_COUNTERPART:
            conv.drop(key, _NO_COUNTERPART[key])
        elif key.startswith(('head.', 'head_dist.')):
            conv.drop(key, 'classifier head (not part of the backbone)')
        else:
            conv.reject(key, 'not a key of a DeiT backbone')
    return conv


def deit_new_parameter(key: str, layout: Optional[str] = None) -> Optional[str]:
    """Why our STViT parameter ``key`` cannot come from a DeiT checkpoint, or None.

    These are what STViT adds to DeiT's blocks: the global centres G and the
    layer scales of the generator and recovery layers (the same for every DeiT ``layout``).
    """
    if key == 'generator.centres':
        return 'global centres G (STViT only)'
    if re.match(r'^(generator\.layer\d|recovery)\.ls[12]\.gamma$', key):
        return 'layer scale of an STViT layer (DeiT blocks have none)'
    return None
