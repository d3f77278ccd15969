# Short path: the config is configs/detection/mask_rcnn_stvit_r_deit_s_simple_pyramid.py.
_base_ = './detection/mask_rcnn_stvit_r_deit_s_simple_pyramid.py'
