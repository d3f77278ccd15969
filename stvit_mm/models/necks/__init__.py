from .simple_pyramid import STViTSimplePyramid

__all__ = ['STViTSimplePyramid']
