# STViT-R-Swin-T on ImageNet-1k (not in the paper; no official checkpoint): the stock mmpretrain
# Swin-T recipe with the backbone swapped, built like the official STViT-R-Swin-S/B models (same
# switches as stvit_r_swin_s_in1k.py) so the three sizes differ only in width, depth and drop
# path. Stage 3 (6 blocks) is one dumbbell unit of 2x2 semantic tokens per window.
_base_ = 'mmpretrain::swin_transformer/swin-tiny_16xb64_in1k.py'
custom_imports = dict(imports=['stvit_mm.models', 'stvit_mm.engine'], allow_failed_imports=False)
# load_from may name an official / timm classifier release: converted on load, head included
# (stvit_mm/checkpoints/runner_hook.py); appended to the stock recipe's hooks (DeiT-B: EMA);
# scope named so that configs inheriting this one as `stvit_mm::...` build it under mmpretrain.
custom_hooks = _base_.get('custom_hooks', []) + [
    dict(type='ForeignCheckpointHook', _scope_='mmpretrain')]

model = dict(
    backbone=dict(
        _delete_=True,
        type='STViTSwin',
        arch='tiny',  # stage-4 channels 768 = head in_channels of the stock config
        recovery=True,
        out_indices=(3, ),
        drop_path_rate=0.2,  # stock Swin-T
        # the official STViT-R-Swin's settings (conv stem, no generator shortcut or global
        # centres, global layer-2/recovery scopes, official borders, unshifted 7x7 stage 4),
        # defined once in stvit_mm/models/backbones/presets.py
        preset='official'))
