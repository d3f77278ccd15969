# Short path: the config is configs/classification/stvit_deit_t_synthetic.py.
_base_ = './classification/stvit_deit_t_synthetic.py'
