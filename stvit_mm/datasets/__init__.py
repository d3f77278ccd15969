"""Deterministic generators of small datasets in the formats OpenMMLab reads."""
from .synthetic_imagenet import SYNTHETIC_CLASSES, make_imagenet_style

__all__ = ['SYNTHETIC_CLASSES', 'make_imagenet_style']
