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


# Which codebase's conventions a backbone follows: given as ``convention=``, else from the
# registry scope building it (mmengine's ``DefaultScope``: a config's ``default_scope``).
CONVENTIONS = ('mmdet', 'mmpretrain', 'mmaction')
SCOPE_CONVENTIONS = {'mmdet': 'mmdet', 'mmseg': 'mmdet', 'mmpretrain': 'mmpretrain',
                     'mmaction': 'mmaction'}


def resolve_convention(owner: str, convention: Optional[str]) -> str:
    """``convention``, else the current registry scope's, else 'mmdet' (mmdet and mmseg)."""
    if convention is None:
        from mmengine.registry import DefaultScope
        scope = DefaultScope.get_current_instance()
        convention = SCOPE_CONVENTIONS.get(scope.scope_name if scope else None, 'mmdet')
    if convention not in CONVENTIONS:
        raise ValueError(f'{owner}: convention must be one of {CONVENTIONS}, got {convention!r}')
    return convention


# The stock backbones' own arguments and their defaults, taken by :class:`StockArgs`.
SWIN_STOCK_ARGS = dict(
    embed_dims=None, depths=None, num_heads=None, strides=None, pretrained=None, img_size=None,
    pad_small_map=None, qk_scale=None, patch_norm=True, attn_drop_rate=0.0,
    use_abs_pos_embed=False, act_cfg=None, norm_cfg=None, out_after_downsample=False,
    stage_cfgs=None, patch_cfg=None, pretrain_img_size=None, convert_weights=None,
    interpolate_mode=None)
VIDEO_SWIN_STOCK_ARGS = dict(pretrained=None, pretrained2d=None, qk_scale=None, patch_norm=True,
                             attn_drop_rate=0.0, act_cfg=None, norm_cfg=None,
                             out_after_downsample=False)


class StockArgs:
    """The stock arguments a backbone was given, with their defaults: honoured, ignored or
    refused here, so the backbone's constructor takes only what shapes our model."""

    def __init__(self, owner: str, accepted: dict, given: dict) -> None:
        unknown = sorted(set(given) - set(accepted))
        if unknown:
            raise TypeError(f"{owner}: unexpected argument '{unknown[0]}'")
        self.owner, self.values = owner, {**accepted, **given}

    def __getitem__(self, key: str):
        return self.values[key]

    def init_cfg(self, init_cfg):
        """``init_cfg``, or mmdet/mmseg's deprecated ``pretrained`` shorthand for it."""
        if self.values['pretrained'] is None:
            return init_cfg
        if init_cfg is not None:
            raise ValueError(f'{self.owner}: give either pretrained or init_cfg, not both')
        return dict(type='Pretrained', checkpoint=self.values['pretrained'])

    def sizes(self) -> dict:
        """The flat sizes given (mmdet/mmseg ``embed_dims``, ``depths``, ``num_heads``)."""
        return {k: self.values[k] for k in ('embed_dims', 'depths', 'num_heads')
                if self.values.get(k) is not None}

    def window(self, window_size: int) -> int:
        """mmpretrain's 384-pixel configs set the window in ``stage_cfgs``."""
        return stage_window(self.values.get('stage_cfgs')) or window_size

    def check(self, arch: dict, patch_size: Optional[int] = None) -> None:
        """Refuse, in one line, what cannot be honoured."""
        v = self.values
        if patch_size is not None:
            check_strides(self.owner, v['strides'], patch_size, len(arch['depths']))
        check_unsupported(self.owner, v['qk_scale'], v['patch_norm'], v['attn_drop_rate'],
                          v.get('use_abs_pos_embed', False), v['act_cfg'], v['norm_cfg'],
                          v['out_after_downsample'], v.get('stage_cfgs'), v.get('patch_cfg'),
                          head_dim=arch['embed_dims'] // arch['num_heads'][0])
