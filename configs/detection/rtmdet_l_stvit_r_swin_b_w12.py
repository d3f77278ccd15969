# RTMDet-L with STViT-R-Swin-B, window 12 (Swin-B pre-trained at 384 on ImageNet-22k): mmdet's
# RTMDet-L Swin-B config with the one-word backbone swap. STViTSwin reads the stock Swin
# arguments (embed 128, depths 2-2-18-2, heads 4-32, window 12, out_indices 1-3, drop path 0.3,
# with_cp, the Swin-B 22k checkpoint in init_cfg); at window 12 each window is summarised into
# 5x5 semantic tokens from a 17x17 neighbourhood (the official 3x3 / 10x10 of 7x7 windows,
# scaled by the same share of the window).
_base_ = 'mmdet::rtmdet/rtmdet_l_swin_b_4xb32-100e_coco.py'
custom_imports = dict(imports=['stvit_mm.models'], allow_failed_imports=False)

model = dict(backbone=dict(type='STViTSwin'))
