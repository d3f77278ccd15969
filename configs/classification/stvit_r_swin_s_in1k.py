# STViT-R-Swin-S on ImageNet-1k, as the official STViT-R-Swin-S checkpoint was trained: the stock
# mmpretrain Swin-S recipe (AdamW, 300 epochs, Mixup/CutMix, label smoothing) with the backbone
# swapped. The switches below are the official code's, so an official checkpoint's backbone loads
# through `model.backbone.init_cfg=dict(type='Pretrained', checkpoint=PATH)` (converted on load;
# the official `head` is not mapped onto `head.fc`). Neck (GAP) and head stay stock.
_base_ = 'mmpretrain::swin_transformer/swin-small_16xb64_in1k.py'
custom_imports = dict(imports=['stvit_mm.models', 'stvit_mm.engine'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='STViTSwin',
        arch='small',  # stage-4 channels 768 = head in_channels of the stock config
        recovery=True,  # the official classification models are STViT-R (recovery in each unit)
        out_indices=(3, ),  # stage 4 only (normalised), pooled by the stock GAP neck
        drop_path_rate=0.3,  # official STViT-R-Swin-S
        stem='conv',  # official: two 3x3 stride-2 conv+BN layers instead of the 4x4 patch conv
        gen_shortcut=False,  # official runs: no attention residual in generator layer 1
        global_centres=False,  # official runs: no global centres G
        layer2_scope='global',  # official: generator layer 2 and recovery attend to all
        recovery_scope='global',  # tokens (fine at 224x224: 14x14 stage-3 grid)
        neighbourhood_inside=True,
        fit_window=True))  # official Swin / mmpretrain: the 7x7 stage-4 map is not shifted  # official border handling of the 10x10 neighbourhoods
