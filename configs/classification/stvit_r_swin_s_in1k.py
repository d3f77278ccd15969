# STViT-R-Swin-S on ImageNet-1k, as the official STViT-R-Swin-S checkpoint was trained: the stock
# mmpretrain Swin-S recipe (AdamW, 300 epochs, Mixup/CutMix, label smoothing) with the backbone
# swapped. The preset below is the official code's settings, so an official checkpoint loads
# whole through `load_from=PATH` (backbone converted, official `head` onto `head.fc`: the
# ForeignCheckpointHook below), its backbone alone through
# `model.backbone.init_cfg=dict(type='Pretrained', checkpoint=PATH)`. Neck (GAP) and head stay
# stock.
_base_ = 'mmpretrain::swin_transformer/swin-small_16xb64_in1k.py'
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
        arch='small',  # stage-4 channels 768 = head in_channels of the stock config
        recovery=True,  # the official classification models are STViT-R (recovery in each unit)
        out_indices=(3, ),  # stage 4 only (normalised), pooled by the stock GAP neck
        drop_path_rate=0.3,  # official STViT-R-Swin-S
        # the official STViT-R-Swin's settings (conv stem, no generator shortcut or global
        # centres, global layer-2/recovery scopes, official borders, unshifted 7x7 stage 4),
        # defined once in stvit_mm/models/backbones/presets.py
        preset='official'))
