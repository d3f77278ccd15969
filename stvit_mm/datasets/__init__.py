"""Deterministic generators of small datasets in the formats OpenMMLab reads."""
from .synthetic_coco import SYNTHETIC_COCO_CLASSES, make_coco_instance
from .synthetic_imagenet import SYNTHETIC_CLASSES, make_imagenet_style

__all__ = ['SYNTHETIC_CLASSES', 'SYNTHETIC_COCO_CLASSES', 'make_coco_instance',
           'make_imagenet_style']
