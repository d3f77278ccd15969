"""A tiny COCO-format instance segmentation set of coloured shapes.

Built so that a Mask R-CNN trained from scratch on a CPU for a few minutes
reaches a clearly non-zero COCO mAP: three categories that differ both in
shape and in colour family, 1-4 large objects per image that barely touch,
and a plain, lightly noisy background. Masks are exact polygons (a disc is a
24-gon), so the ``segmentation``, ``bbox`` and ``area`` fields agree with the
rendered pixels up to rasterisation. Output layout (read by mmdet's
``CocoDataset`` and pycocotools)::

    root/train/000001.png ...
    root/val/000001.png ...
    root/annotations/instances_train.json
    root/annotations/instances_val.json

The same arguments always produce byte-identical files.
"""
import json
import math
import os
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np
from PIL import Image, ImageDraw

SYNTHETIC_COCO_CLASSES: Tuple[str, ...] = ('square', 'disc', 'triangle')

# One colour family per class (RGB ranges), far apart so colour alone already
# separates the classes; the shape makes the masks differ as well.
_COLOUR_RANGES: Dict[str, Tuple[Tuple[int, int], ...]] = {
    'square': ((170, 255), (20, 90), (20, 90)),    # reds
    'disc': ((20, 90), (150, 235), (20, 90)),      # greens
    'triangle': ((20, 90), (40, 120), (170, 255)),  # blues
}
_DISC_SIDES = 24
# Object size as a fraction of the shorter image side.
_SIZE_RANGE = (0.2, 0.45)
_MAX_OBJECTS = 4
# Bounding boxes of two objects may overlap by at most this many pixels in
# each direction: the shapes touch at most at their corners, never occlude.
_MAX_OVERLAP = 4.0
_MARGIN = 2.0  # keep polygons strictly inside the image
_PLACEMENT_TRIES = 50

Polygon = List[float]  # flat [x0, y0, x1, y1, ...] as COCO stores it


def _shape_polygon(name: str, cx: float, cy: float, size: float) -> Polygon:
    """Vertices of an axis-aligned square, a disc or an upright triangle of
    extent ``size`` centred at (cx, cy), rounded to 0.01 px so that the json
    and the rendered image describe exactly the same polygon."""
    half = size / 2
    if name == 'square':
        points = [(cx - half, cy - half), (cx + half, cy - half),
                  (cx + half, cy + half), (cx - half, cy + half)]
    elif name == 'disc':
        points = [(cx + half * math.cos(2 * math.pi * k / _DISC_SIDES),
                   cy + half * math.sin(2 * math.pi * k / _DISC_SIDES))
                  for k in range(_DISC_SIDES)]
    elif name == 'triangle':
        points = [(cx, cy - half), (cx + half, cy + half), (cx - half, cy + half)]
    else:
        raise ValueError(f'unknown shape {name!r}; expected one of {SYNTHETIC_COCO_CLASSES}')
    return [round(v, 2) for point in points for v in point]


def _polygon_area(polygon: Polygon) -> float:
    """Shoelace formula: the exact area of the polygon the json stores."""
    xs, ys = np.asarray(polygon[0::2]), np.asarray(polygon[1::2])
    return float(abs(np.dot(xs, np.roll(ys, -1)) - np.dot(ys, np.roll(xs, -1))) / 2)


def _polygon_bbox(polygon: Polygon) -> List[float]:
    """COCO ``[x, y, w, h]`` of the polygon's extent."""
    xs, ys = polygon[0::2], polygon[1::2]
    x0, y0 = min(xs), min(ys)
    return [x0, y0, round(max(xs) - x0, 2), round(max(ys) - y0, 2)]


def _overlaps(box: Sequence[float], others: Sequence[Sequence[float]]) -> bool:
    x, y, w, h = box
    for ox, oy, ow, oh in others:
        if (min(x + w, ox + ow) - max(x, ox) > _MAX_OVERLAP
                and min(y + h, oy + oh) - max(y, oy) > _MAX_OVERLAP):
            return True
    return False


def _render_image(rng: np.random.Generator, width: int, height: int,
                  image_id: int, first_ann_id: int
                  ) -> Tuple[np.ndarray, List[Dict[str, Any]]]:
    """Draw one image and return it with its COCO annotations."""
    # Neutral grey background with light noise: no class colour leaks into it.
    background = int(rng.integers(90, 171))
    canvas = Image.new('RGB', (width, height), (background,) * 3)
    draw = ImageDraw.Draw(canvas)
    short_side = min(width, height)
    annotations: List[Dict[str, Any]] = []
    boxes: List[List[float]] = []
    for _ in range(int(rng.integers(1, _MAX_OBJECTS + 1))):
        label = int(rng.integers(len(SYNTHETIC_COCO_CLASSES)))
        name = SYNTHETIC_COCO_CLASSES[label]
        colour = tuple(int(rng.integers(lo, hi + 1)) for lo, hi in _COLOUR_RANGES[name])
        # Rejection sampling for a free spot; a crowded image just gets fewer
        # objects (always at least one: the first placement cannot collide).
        for _ in range(_PLACEMENT_TRIES):
            size = float(rng.uniform(*_SIZE_RANGE)) * short_side
            half = size / 2 + _MARGIN
            cx = float(rng.uniform(half, width - half))
            cy = float(rng.uniform(half, height - half))
            polygon = _shape_polygon(name, cx, cy, size)
            bbox = _polygon_bbox(polygon)
            if not _overlaps(bbox, boxes):
                break
        else:
            continue
        boxes.append(bbox)
        draw.polygon(list(zip(polygon[0::2], polygon[1::2])), fill=colour)
        annotations.append(dict(
            id=first_ann_id + len(annotations), image_id=image_id, category_id=label + 1,
            segmentation=[polygon], area=round(_polygon_area(polygon), 2), bbox=bbox,
            iscrowd=0))
    pixels = np.asarray(canvas, dtype=np.float32)
    pixels = pixels + rng.normal(0, 6, pixels.shape)
    return np.clip(np.rint(pixels), 0, 255).astype(np.uint8), annotations


def _write_split(rng: np.random.Generator, root: str, split: str, num_images: int,
                 width: int, height: int) -> Dict[str, int]:
    image_dir = os.path.join(root, split)
    os.makedirs(image_dir, exist_ok=True)
    images, annotations = [], []
    for image_id in range(1, num_images + 1):
        file_name = f'{image_id:06d}.png'
        pixels, anns = _render_image(rng, width, height, image_id, len(annotations) + 1)
        # PNG is lossless, so the files (and any metric on them) are reproducible.
        Image.fromarray(pixels).save(os.path.join(image_dir, file_name))
        images.append(dict(id=image_id, file_name=file_name, width=width, height=height))
        annotations.extend(anns)
    coco = dict(
        info=dict(description=f'stvit_mm synthetic shapes ({split})', version='1.0'),
        licenses=[],
        images=images,
        annotations=annotations,
        categories=[dict(id=i + 1, name=name, supercategory='shape')
                    for i, name in enumerate(SYNTHETIC_COCO_CLASSES)])
    with open(os.path.join(root, 'annotations', f'instances_{split}.json'), 'w') as f:
        json.dump(coco, f)
    return dict(images=len(images), annotations=len(annotations))


def make_coco_instance(root: str, num_train: int = 64, num_val: int = 16,
                       image_size: Tuple[int, int] = (256, 192), seed: int = 0
                       ) -> Dict[str, Any]:
    """Write the train and val splits under ``root`` (same arguments, same bytes).

    Args:
        root: output folder; created if missing, existing files are overwritten.
        num_train: number of training images.
        num_val: number of validation images.
        image_size: ``(width, height)`` of every image.
        seed: seed of the single random stream both splits are drawn from.

    Returns:
        ``{'train': {'images': n, 'annotations': m}, 'val': {...},
        'classes': SYNTHETIC_COCO_CLASSES}``.
    """
    width, height = image_size
    if min(width, height) < 32:
        raise ValueError(f'image_size {image_size} is too small: objects would be a few pixels')
    os.makedirs(os.path.join(root, 'annotations'), exist_ok=True)
    rng = np.random.default_rng(seed)
    result: Dict[str, Any] = {}
    for split, num_images in (('train', num_train), ('val', num_val)):
        result[split] = _write_split(rng, root, split, num_images, width, height)
    result['classes'] = SYNTHETIC_COCO_CLASSES
    return result
