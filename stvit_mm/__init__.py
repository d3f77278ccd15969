"""stvit-mm: STViT / STViT-R backbones for OpenMMLab 2.x."""
from . import compat  # noqa: F401  (shims must run before any mm* import)

__version__ = '0.1.0'
