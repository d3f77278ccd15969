# Short path: the config is configs/detection/cascade_mask_rcnn_stvit_r_swin_b_3x.py.
_base_ = './detection/cascade_mask_rcnn_stvit_r_swin_b_3x.py'
