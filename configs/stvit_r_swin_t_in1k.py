# Short path: the config is configs/classification/stvit_r_swin_t_in1k.py.
_base_ = './classification/stvit_r_swin_t_in1k.py'
