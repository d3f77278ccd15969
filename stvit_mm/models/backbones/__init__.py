from .stvit import STViT
from .stvit_swin import STViTSwin
from .stvit_video_swin import STViTVideoSwin

__all__ = ['STViT', 'STViTSwin', 'STViTVideoSwin']
