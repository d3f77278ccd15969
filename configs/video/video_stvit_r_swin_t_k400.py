# Video STViT-R-Swin-T on Kinetics-400: mmaction2's Video Swin-T config with only the backbone
# swapped. I3D head, data pipelines (32x2x1 clips, 224x224), AdamW + AMP schedule and runtime are
# mmaction2's, unchanged. Stage 3 (6 blocks) is one dumbbell unit: each 8x7x7 window -> 2x2x2
# semantic tokens; backbone 62.9 vs 87.8 GMACs at 32x224x224 (tools/get_flops.py).
#
# Data: the stock paths, relative to the working directory, are
#   data/kinetics400/videos_train, data/kinetics400/videos_val       (videos, decord)
#   data/kinetics400/kinetics400_{train,val}_list_videos.txt         (lines "<video> <label>")
# Prepare them with mmaction2's tools/data/kinetics (or link your copy there), or point the
# dataloaders elsewhere, e.g.
#   --cfg-options train_dataloader.dataset.ann_file=/k400/train.txt \
#                 train_dataloader.dataset.data_prefix.video=/k400/train
# For raw frames (faster decoding, e.g. from tools/data/build_rawframes.py) use
# dataset type 'RawframeDataset', data_prefix=dict(img=...), list lines
# "<frame dir> <total frames> <label>", and RawFrameDecode instead of DecordInit + DecordDecode
# in the pipelines (see video_stvit_r_swin_t_synthetic.py).
_base_ = 'mmaction::recognition/swin/swin-tiny-p244-w877_in1k-pre_8xb8-amp-32x2x1-30e_kinetics400-rgb.py'  # noqa: E501
custom_imports = dict(imports=['stvit_mm.models', 'stvit_mm.engine'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='STViTVideoSwin',
        arch='tiny',  # stage-4 channels 768 = cls_head.in_channels of the stock config
        recovery=True,  # STViT-R: stage-3 image tokens restored at full resolution
        patch_size=(2, 4, 4),  # stock Video Swin values from here on
        window_size=(8, 7, 7),
        drop_path_rate=0.1,
        out_indices=(3, ),
        out_type='tensor',  # I3DHead pools one NCTHW tensor (not a tuple)
        # Microsoft Swin-T ImageNet-1k weights (the stock `pretrained`), inflated to 3-D on load
        # (patch kernel over 2 frames, position bias over temporal offsets); the new STViT-R
        # modules (generator, semantic blocks, recovery) start from code init.
        pretrained={{_base_.model.backbone.pretrained}},
        pretrained2d=True))
