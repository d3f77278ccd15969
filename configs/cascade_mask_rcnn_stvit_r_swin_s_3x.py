# Short path: the config is configs/detection/cascade_mask_rcnn_stvit_r_swin_s_3x.py.
_base_ = './detection/cascade_mask_rcnn_stvit_r_swin_s_3x.py'
