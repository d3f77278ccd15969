"""The stock OpenMMLab Swin backbones' keyword arguments, read by STViTSwin / STViTVideoSwin.

So that ``dict(type='STViTSwin')`` alone swaps the backbone of any stock mmdet / mmseg /
mmpretrain Swin config (and ``dict(type='STViTVideoSwin')`` of an mmaction2 one): the merged
backbone dict keeps the stock keys, each of which is honoured here, accepted as meaningless
for us (image sizes of absolute position embeddings, ``interpolate_mode``,
``convert_weights``: the backbones' docstrings say why), or refused in one line when it asks
for something we cannot do.
"""
from typing import Optional, Sequence


def check_unsupported(owner: str, qk_scale: Optional[float] = None, patch_norm: bool = True,
                      attn_drop_rate: float = 0.0, use_abs_pos_embed: bool = False,
                      act_cfg: Optional[dict] = None, norm_cfg: Optional[dict] = None,
                      out_after_downsample: bool = False, stage_cfgs: Optional[dict] = None,
                      patch_cfg: Optional[dict] = None, head_dim: Optional[int] = None) -> None:
    """Raise ValueError, one line each, for stock Swin options this backbone cannot honour."""
    def refuse(what: str, why: str) -> None:
        raise ValueError(f'{owner}: {what} cannot be honoured ({why}); remove it from the '
                         'backbone config')

    if qk_scale is not None and (head_dim is None or abs(qk_scale - head_dim**-0.5) > 1e-12):
        refuse(f'qk_scale={qk_scale}', 'attention scales by head_dim ** -0.5 (SDPA)')
    if not patch_norm:
        refuse('patch_norm=False', 'the patch embedding is always normalised, as in every '
               'released Swin')
    if attn_drop_rate:
        refuse(f'attn_drop_rate={attn_drop_rate}', 'attention has no dropout; use drop_rate '
               'or drop_path_rate')
    if use_abs_pos_embed:
        refuse('use_abs_pos_embed=True', 'STViT-R windows use relative position bias only')
    if act_cfg is not None and dict(act_cfg) != {'type': 'GELU'}:
        refuse(f'act_cfg={dict(act_cfg)}', 'the MLPs use GELU')
    norm = dict(norm_cfg or {'type': 'LN'})
    if norm.get('type') != 'LN' or norm.get('eps', 1e-5) != 1e-5 or set(norm) - {
            'type', 'eps', 'requires_grad'}:
        refuse(f'norm_cfg={norm}', 'the blocks use LayerNorm(eps=1e-5)')
    if out_after_downsample:
        refuse('out_after_downsample=True', 'outputs are taken before patch merging')
    if stage_cfgs and stage_window(stage_cfgs) is None:
        refuse(f'stage_cfgs={stage_cfgs}', 'per-stage block settings other than the window '
               'size of every block are not supported')
    if patch_cfg:
        refuse(f'patch_cfg={patch_cfg}', 'the patch embedding is a conv of patch_size and '
               'LayerNorm')


def stage_window(stage_cfgs: Optional[dict]) -> Optional[int]:
    """The window of mmpretrain's ``stage_cfgs=dict(block_cfgs=dict(window_size=W))`` (its
    384-pixel configs), or None when ``stage_cfgs`` says anything else."""
    block_cfgs = dict(stage_cfgs or {}).get('block_cfgs')
    if set(dict(stage_cfgs or {})) != {'block_cfgs'} or not isinstance(block_cfgs, dict):
        return None
    if set(block_cfgs) != {'window_size'} or not isinstance(block_cfgs['window_size'], int):
        return None
    return block_cfgs['window_size']


def check_strides(owner: str, strides: Optional[Sequence[int]], patch_size: int,
                  num_stages: int) -> None:
    """mmdet/mmseg ``strides``: the patch, then 2 per stage (patch merging)."""
    expected = (patch_size, ) + (2, ) * (num_stages - 1)
    if strides is not None and tuple(strides) != expected:
        raise ValueError(f'{owner}: strides={tuple(strides)} cannot be honoured (stages '
                         f'downsample by patch merging: {expected}); remove strides or use '
                         'these')
