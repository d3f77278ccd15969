# Short path: the config is configs/video/video_stvit_r_swin_t_synthetic.py.
_base_ = './video/video_stvit_r_swin_t_synthetic.py'
