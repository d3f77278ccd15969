# Short path: the config is configs/segmentation/upernet_stvit_r_swin_t_synthetic.py.
_base_ = './segmentation/upernet_stvit_r_swin_t_synthetic.py'
