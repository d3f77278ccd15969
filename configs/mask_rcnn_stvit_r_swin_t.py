# Short path: the config is configs/detection/mask_rcnn_stvit_r_swin_t.py.
_base_ = './detection/mask_rcnn_stvit_r_swin_t.py'
