"""Registers the stvit-mm models in mmengine's root MODELS registry.

Child registries (mmdet, mmpretrain, mmaction) fall back to the root, so
``custom_imports=dict(imports=['stvit_mm.models'])`` makes ``type='STViT'``
build under any of their default scopes.
"""
from .. import compat  # noqa: F401
from .backbones import STViT, STViTSwin, STViTVideoSwin
from .necks import STViTSimplePyramid

__all__ = ['STViT', 'STViTSimplePyramid', 'STViTSwin', 'STViTVideoSwin']
