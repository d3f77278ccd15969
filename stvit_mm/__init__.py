"""stvit-mm: STViT / STViT-R backbones for OpenMMLab 2.x."""
from . import compat  # noqa: F401  (shims must run before any mm* import)
from .config_scope import register_config_scope

__version__ = '0.1.0'

register_config_scope()  # `_base_ = 'stvit_mm::...'` in users' configs
