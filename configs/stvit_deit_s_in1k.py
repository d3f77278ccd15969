# Short path: the config is configs/classification/stvit_deit_s_in1k.py.
_base_ = './classification/stvit_deit_s_in1k.py'
