from .stvit import STViT
from .stvit_swin import STViTSwin

__all__ = ['STViT', 'STViTSwin']
