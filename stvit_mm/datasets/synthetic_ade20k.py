"""A tiny semantic segmentation set in ADE20K's layout, and its majority-class baseline.

Every image is a textured ``ground`` with 2-4 overlapping regions (ellipses and
rectangles) of four other stuff classes. Each class has its own texture
(smooth gradient, oriented stripes, checks, dots, grain) and its own colour
family, both randomised per region, so a UperNet trained from scratch on a CPU
learns to label pixels within a few hundred steps, while the class boundaries
still have to be found from context. As in ADE20K, label 0 is "unlabelled":
a ring of about two pixels along every region boundary, where a rasterised
label would be ambiguous. Used with ``reduce_zero_label=True``, label 0
becomes mmseg's ignore index (255) and classes 1..5 become 0..4.

Output layout (read by mmseg's ``BaseSegDataset`` / ``ADE20KDataset`` layout)::

    root/images/training/000001.jpg ...       RGB, JPEG
    root/images/validation/000001.jpg ...
    root/annotations/training/000001.png ...  uint8 labels, 0 = unlabelled
    root/annotations/validation/000001.png ...

The same arguments always produce the same files.
"""
import os
from typing import Callable, Dict, Sequence, Tuple

import numpy as np
from PIL import Image

# Label i + 1 in the PNGs (0 is unlabelled); index i after reduce_zero_label.
SYNTHETIC_ADE20K_CLASSES: Tuple[str, ...] = ('ground', 'stripes', 'checks', 'dots', 'grain')
SYNTHETIC_ADE20K_PALETTE = [(120, 100, 70), (60, 90, 220), (220, 60, 60), (60, 190, 80),
                            (230, 200, 50)]
SPLITS = ('training', 'validation')

# Colour family of each class (RGB ranges of its base colour).
_COLOURS: Dict[str, Tuple[Tuple[int, int], ...]] = {
    'ground': ((90, 150), (70, 120), (40, 90)),     # browns / greys
    'stripes': ((30, 90), (60, 130), (160, 240)),   # blues
    'checks': ((160, 240), (30, 90), (30, 90)),     # reds
    'dots': ((30, 90), (140, 220), (40, 100)),      # greens
    'grain': ((190, 250), (170, 230), (30, 90)),    # yellows
}
_SHAPE_SIZE = (0.3, 0.65)  # region extent as a fraction of the shorter image side
_MAX_REGIONS = 4

Texture = Callable[[np.random.Generator, int, int], np.ndarray]


def _grid(height: int, width: int) -> Tuple[np.ndarray, np.ndarray]:
    return np.mgrid[:height, :width].astype(np.float32)


def _smooth(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Brightness in [0, 1]: a gentle linear gradient (the ground)."""
    yy, xx = _grid(height, width)
    gy, gx = rng.uniform(-0.4, 0.4, 2) / max(height, width)
    return np.clip(0.6 + gy * yy + gx * xx, 0, 1)


def _stripes(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Stripes of any orientation, period 6-10 px."""
    yy, xx = _grid(height, width)
    angle, period = rng.uniform(0, np.pi), rng.uniform(6, 10)
    phase = np.cos(angle) * xx + np.sin(angle) * yy
    return (np.sin(2 * np.pi * phase / period) > 0).astype(np.float32)


def _checks(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Axis-aligned checkerboard, cells of 4-8 px."""
    yy, xx = _grid(height, width)
    cell = int(rng.integers(4, 9))
    oy, ox = rng.integers(0, cell, 2)
    return (((yy + oy) // cell + (xx + ox) // cell) % 2).astype(np.float32)


def _dots(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Bright dots (radius 1.5-2.5 px) on a lattice of 6-9 px."""
    yy, xx = _grid(height, width)
    period, radius = rng.uniform(6, 9), rng.uniform(1.5, 2.5)
    oy, ox = rng.uniform(0, period, 2)
    dy = (yy + oy) % period - period / 2
    dx = (xx + ox) % period - period / 2
    return (dy**2 + dx**2 <= radius**2).astype(np.float32)


def _grain(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Per-pixel random brightness (coarse sand)."""
    return rng.uniform(0, 1, (height, width)).astype(np.float32)


_TEXTURES: Dict[str, Texture] = dict(ground=_smooth, stripes=_stripes, checks=_checks,
                                     dots=_dots, grain=_grain)


def _paint(rng: np.random.Generator, name: str, height: int, width: int) -> np.ndarray:
    """(H, W, 3) float image of one class: its texture between a dark and a light shade."""
    base = np.array([rng.uniform(*r) for r in _COLOURS[name]], dtype=np.float32)
    pattern = _TEXTURES[name](rng, height, width)[..., None]
    contrast = 0.35 if name == 'ground' else 0.5
    return base * (1 - contrast + 2 * contrast * pattern)


def _region(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Boolean mask of an ellipse or an axis-aligned rectangle, partly inside the image."""
    yy, xx = _grid(height, width)
    side = min(height, width)
    ry, rx = rng.uniform(*_SHAPE_SIZE, 2) * side / 2
    cy, cx = rng.uniform(0, height), rng.uniform(0, width)
    if rng.random() < 0.5:
        return ((yy - cy) / ry)**2 + ((xx - cx) / rx)**2 <= 1
    return (np.abs(yy - cy) <= ry) & (np.abs(xx - cx) <= rx)


def _boundaries(labels: np.ndarray) -> np.ndarray:
    """Pixels with a 4-neighbour of another label (both sides of every boundary)."""
    edge = np.zeros(labels.shape, dtype=bool)
    vertical = labels[1:] != labels[:-1]
    horizontal = labels[:, 1:] != labels[:, :-1]
    edge[1:] |= vertical
    edge[:-1] |= vertical
    edge[:, 1:] |= horizontal
    edge[:, :-1] |= horizontal
    return edge


def render_sample(rng: np.random.Generator, height: int,
                  width: int) -> Tuple[np.ndarray, np.ndarray]:
    """One (H, W, 3) uint8 image and its (H, W) uint8 label map (0 = unlabelled)."""
    image = _paint(rng, 'ground', height, width)
    labels = np.ones((height, width), dtype=np.uint8)  # label 1: ground
    for _ in range(int(rng.integers(2, _MAX_REGIONS + 1))):
        cls = int(rng.integers(1, len(SYNTHETIC_ADE20K_CLASSES)))  # any class but ground
        mask = _region(rng, height, width)
        image[mask] = _paint(rng, SYNTHETIC_ADE20K_CLASSES[cls], height, width)[mask]
        labels[mask] = cls + 1  # later regions occlude earlier ones
    labels[_boundaries(labels)] = 0
    image += rng.normal(0, 6, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8), labels


def make_ade20k_style(root: str, num_train: int = 160, num_val: int = 32,
                      image_size: Sequence[int] = (128, 160), seed: int = 0) -> Dict[str, object]:
    """Write the set under ``root`` (deterministic: same arguments, same files).

    Args:
        root: output folder (created).
        num_train, num_val: images per split.
        image_size: (height, width) of every image.
        seed: seed of all randomness.

    Returns:
        ``training`` / ``validation``: images written, ``classes``,
        ``palette``, ``image_size`` (H, W).
    """
    height, width = (int(s) for s in image_size)
    if min(num_train, num_val) < 1 or min(height, width) < 16:
        raise ValueError('make_ade20k_style: need >= 1 image per split and sides >= 16 '
                         f'(got {num_train}, {num_val}, {height}x{width})')
    rng = np.random.default_rng(seed)
    for split, count in zip(SPLITS, (num_train, num_val)):
        image_dir = os.path.join(root, 'images', split)
        label_dir = os.path.join(root, 'annotations', split)
        os.makedirs(image_dir, exist_ok=True)
        os.makedirs(label_dir, exist_ok=True)
        for i in range(1, count + 1):
            image, labels = render_sample(rng, height, width)
            Image.fromarray(image).save(os.path.join(image_dir, f'{i:06d}.jpg'), quality=95)
            Image.fromarray(labels, mode='L').save(os.path.join(label_dir, f'{i:06d}.png'))
    return dict(training=num_train, validation=num_val, classes=SYNTHETIC_ADE20K_CLASSES,
                palette=SYNTHETIC_ADE20K_PALETTE, image_size=(height, width))


def majority_class_baseline(root: str, num_classes: int, split: str = 'validation',
                            reduce_zero_label: bool = True) -> Dict[str, object]:
    """mIoU of predicting the split's most frequent class at every pixel, as mmseg scores it.

    The label maps go through what mmseg's ``LoadAnnotations`` does
    (``reduce_zero_label``: 0 -> 255 ignored, others - 1), and mmseg's
    ``IoUMetric`` functions give the per-class IoU over the whole split (summed
    areas; classes absent from both are NaN and left out of the mean). The most
    frequent class is the best constant prediction: its IoU is its pixel share,
    every other class scores 0.

    Returns:
        ``mIoU`` (in %, as IoUMetric prints it), ``class`` (index after the
        reduction) and ``pixel_share`` of that class.
    """
    import torch

    from ..utils.extras import import_task_module
    IoUMetric = import_task_module('mmseg.evaluation',
                                   'majority_class_baseline (mmseg IoUMetric)').IoUMetric

    label_dir = os.path.join(root, 'annotations', split)
    files = sorted(f for f in os.listdir(label_dir) if f.endswith('.png'))
    if not files:
        raise FileNotFoundError(f'majority_class_baseline: no .png labels in {label_dir}')
    maps = []
    for name in files:
        labels = np.array(Image.open(os.path.join(label_dir, name)), dtype=np.int64)
        if reduce_zero_label:
            labels = np.where(labels == 0, 255, labels - 1)
        maps.append(torch.from_numpy(labels))
    counts = torch.bincount(torch.cat([m[m != 255] for m in maps]), minlength=num_classes)
    majority = int(counts.argmax())
    areas = [IoUMetric.intersect_and_union(torch.full_like(m, majority), m, num_classes, 255)
             for m in maps]
    totals = [sum(area[i] for area in areas) for i in range(4)]
    iou = IoUMetric.total_area_to_metrics(*totals, metrics=['mIoU'])['IoU']
    return {'mIoU': float(np.nanmean(iou) * 100), 'class': majority,
            'pixel_share': float(counts[majority] / counts.sum())}
