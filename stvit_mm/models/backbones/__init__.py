from .presets import OFFICIAL_PRESET, OFFICIAL_PRESET_CFG_OPTION, SWIN_PRESETS
from .stvit import STViT
from .stvit_swin import STViTSwin
from .stvit_video_swin import STViTVideoSwin

__all__ = ['OFFICIAL_PRESET', 'OFFICIAL_PRESET_CFG_OPTION', 'STViT', 'STViTSwin',
           'STViTVideoSwin', 'SWIN_PRESETS']
