# STViT-DeiT-Base on ImageNet-1k: the stock mmpretrain DeiT-Base recipe with the backbone
# swapped. STViT keeps DeiT's arch/img_size/patch_size (and drop_path_rate) arguments, so only
# the type changes; the head's in_channels stays that of the stock config.
_base_ = 'mmpretrain::deit/deit-base_16xb64_in1k.py'
custom_imports = dict(imports=['stvit_mm.models', 'stvit_mm.engine'], allow_failed_imports=False)
# load_from may name an official / timm classifier release: converted on load, head included
# (stvit_mm/checkpoints/runner_hook.py); appended to the stock recipe's hooks (DeiT-B: EMA);
# scope named so that configs inheriting this one as `stvit_mm::...` build it under mmpretrain.
custom_hooks = _base_.get('custom_hooks', []) + [
    dict(type='ForeignCheckpointHook', _scope_='mmpretrain')]

model = dict(backbone=dict(type='STViT'))

# The global centres G are embeddings like pos_embed: no weight decay.
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'.centres': dict(decay_mult=0.0)}))
