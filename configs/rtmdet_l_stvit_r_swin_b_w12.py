# Short path: the config is configs/detection/rtmdet_l_stvit_r_swin_b_w12.py.
_base_ = './detection/rtmdet_l_stvit_r_swin_b_w12.py'
