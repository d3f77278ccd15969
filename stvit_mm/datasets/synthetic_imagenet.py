"""A tiny ImageNet-format classification set (one folder per class).

The classes are texture/shape patterns a small ViT learns within minutes on a
CPU, with random colours, positions and noise so memorising pixels is not
enough. Output layout (read by mmpretrain's ``CustomDataset``)::

    root/train/<class>/<class>_<i>.png
    root/val/<class>/<class>_<i>.png
"""
import os
from typing import Callable, Dict

import numpy as np
from PIL import Image

Painter = Callable[[np.random.Generator, int], np.ndarray]


def _stripes(axis: int) -> Painter:
    def paint(rng: np.random.Generator, size: int) -> np.ndarray:
        period = int(rng.integers(4, 9))
        phase = int(rng.integers(0, period))
        line = ((np.arange(size) + phase) // (period // 2)) % 2
        mask = np.repeat(line[:, None], size, 1) if axis == 0 else np.repeat(
            line[None, :], size, 0)
        return mask.astype(bool)
    return paint


def _disc(rng: np.random.Generator, size: int) -> np.ndarray:
    radius = rng.uniform(0.15, 0.3) * size
    cy, cx = rng.uniform(radius, size - radius, 2)
    yy, xx = np.mgrid[:size, :size]
    return (yy - cy)**2 + (xx - cx)**2 <= radius**2


def _checker(rng: np.random.Generator, size: int) -> np.ndarray:
    cell = int(rng.integers(5, 10))
    yy, xx = np.mgrid[:size, :size] + rng.integers(0, cell, 2)[:, None, None]
    return ((yy // cell + xx // cell) % 2).astype(bool)


SYNTHETIC_CLASSES: Dict[str, Painter] = {
    'horizontal_stripes': _stripes(0),
    'vertical_stripes': _stripes(1),
    'disc': _disc,
    'checkerboard': _checker,
}


def _render(rng: np.random.Generator, painter: Painter, size: int) -> np.ndarray:
    mask = painter(rng, size)
    fg, bg = rng.integers(0, 256, (2, 3))
    while np.abs(fg - bg).sum() < 120:  # keep the pattern visible
        fg, bg = rng.integers(0, 256, (2, 3))
    image = np.where(mask[..., None], fg, bg).astype(np.float32)
    image += rng.normal(0, 12, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def make_imagenet_style(root: str, train_per_class: int = 48, val_per_class: int = 16,
                        size: int = 64, seed: int = 0) -> Dict[str, int]:
    """Write the set under ``root`` (idempotent: same seed, same bytes).

    Returns:
        Number of images written per split.
    """
    rng = np.random.default_rng(seed)
    counts = {}
    for split, per_class in (('train', train_per_class), ('val', val_per_class)):
        for name, painter in SYNTHETIC_CLASSES.items():
            folder = os.path.join(root, split, name)
            os.makedirs(folder, exist_ok=True)
            for i in range(per_class):
                Image.fromarray(_render(rng, painter, size)).save(
                    os.path.join(folder, f'{name}_{i:04d}.png'))
        counts[split] = per_class * len(SYNTHETIC_CLASSES)
    return counts
