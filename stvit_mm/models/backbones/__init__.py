from .presets import OFFICIAL_PRESET, SWIN_PRESETS
from .stvit import STViT
from .stvit_swin import STViTSwin
from .stvit_video_swin import STViTVideoSwin

__all__ = ['OFFICIAL_PRESET', 'STViT', 'STViTSwin', 'STViTVideoSwin', 'SWIN_PRESETS']
