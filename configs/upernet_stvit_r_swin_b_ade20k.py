# Short path: the config is configs/segmentation/upernet_stvit_r_swin_b_ade20k.py.
_base_ = './segmentation/upernet_stvit_r_swin_b_ade20k.py'
