"""Deterministic generators of small datasets in the formats OpenMMLab reads."""
from .synthetic_ade20k import SYNTHETIC_ADE20K_CLASSES, majority_class_baseline, make_ade20k_style
from .synthetic_coco import SYNTHETIC_COCO_CLASSES, make_coco_instance
from .synthetic_imagenet import SYNTHETIC_CLASSES, make_imagenet_style
from .synthetic_kinetics import MOTION_CLASSES, make_kinetics_rawframes

__all__ = ['MOTION_CLASSES', 'SYNTHETIC_ADE20K_CLASSES', 'SYNTHETIC_CLASSES',
           'SYNTHETIC_COCO_CLASSES', 'majority_class_baseline', 'make_ade20k_style',
           'make_coco_instance', 'make_imagenet_style', 'make_kinetics_rawframes']
