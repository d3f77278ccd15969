# STViT-R-Swin-B on ImageNet-1k, as the official STViT-R-Swin-B checkpoint was trained: the
# STViT-R-Swin-S config (see there) at Swin-B width on the stock mmpretrain Swin-B recipe.
_base_ = 'mmpretrain::swin_transformer/swin-base_16xb64_in1k.py'
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
        arch='base',  # stage-4 channels 1024 = head in_channels of the stock config
        recovery=True,
        out_indices=(3, ),
        drop_path_rate=0.4,  # official STViT-R-Swin-B (stock Swin-B: 0.5)
        # the official STViT-R-Swin's settings (conv stem, no generator shortcut or global
        # centres, global layer-2/recovery scopes, official borders, unshifted 7x7 stage 4),
        # defined once in stvit_mm/models/backbones/presets.py
        preset='official'))
