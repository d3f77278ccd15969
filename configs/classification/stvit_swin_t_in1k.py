# STViT-Swin-T on ImageNet-1k (the paper's Swin classification model, no recovery): the stock
# mmpretrain Swin-T recipe with the backbone swapped, initialised from mmpretrain's Swin-T
# weights trained with that recipe. Stage 3 holds one unit (6 layers);
# each 7x7 window is summarised into 4x4 = 16 semantic tokens (paper: "16 semantic tokens in
# each window"), and the last unit hands its 8x8 semantic grid (at 224x224) on, so stage 4
# runs on 4x4 tokens instead of 7x7. Neck (GAP) and head stay stock. See STViTSwin's docstring.
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
        arch='tiny',  # stage-4 channels = head in_channels of the stock config
        recovery=False,  # STViT: the semantic tokens go on to stage 4
        out_indices=(3, ),  # stage 4 only (normalised), pooled by the stock GAP neck
        drop_path_rate=0.2,  # stock Swin-T
        # the official code's computation at 224x224 (global layer-2/recovery scopes: all
        # tokens are near in 2x2 windows; official borders; unshifted 7x7 stage 4) ...
        preset='official',
        # ... with the paper's generator (shortcut, centres G) and Swin's patch stem, so
        # that every Swin weight initialises a layer (explicit arguments win over a preset)
        stem='patch', gen_shortcut=True, global_centres=True,
        # Each Swin block initialises the layer at its depth; layer scales and centres are new.
        init_cfg=dict(
            type='Pretrained', prefix='backbone.',
            checkpoint='https://download.openmmlab.com/mmclassification/v0/swin-transformer/'
            'swin_tiny_224_b16x64_300e_imagenet_20210616_090925-66df6be6.pth')))

# The global centres G are embeddings like the relative position tables: no weight decay.
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'.centres': dict(decay_mult=0.0)}))
