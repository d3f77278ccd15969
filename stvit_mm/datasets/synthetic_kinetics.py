"""A tiny Kinetics-style action set in mmaction2's raw-frame format.

Each class is a direction of motion: a textured blob moves right, left, down
or up across a noisy background. A single frame says nothing about the class
(start positions, colours, sizes and speeds are random), so a model has to use
the temporal order of the frames. Output layout (read by mmaction's
``RawframeDataset``)::

    root/rawframes/<video>/img_00001.jpg ...
    root/train_list.txt, root/val_list.txt    lines: "<video> <total_frames> <label>"
    root/classes.txt                          one class name per line (label order)
"""
import os
from typing import Dict, Tuple

import numpy as np
from PIL import Image

# Unit motion (dy, dx) per frame of each class; the label is the index.
MOTION_CLASSES: Dict[str, Tuple[int, int]] = {
    'moving_right': (0, 1),
    'moving_left': (0, -1),
    'moving_down': (1, 0),
    'moving_up': (-1, 0),
}


def _render_video(rng: np.random.Generator, motion: Tuple[int, int], num_frames: int,
                  size: int) -> np.ndarray:
    """(num_frames, size, size, 3) uint8 frames of one blob moving along ``motion``."""
    radius = rng.uniform(0.12, 0.2) * size
    speed = rng.uniform(0.4, 0.8) * (size - 2 * radius) / max(num_frames - 1, 1)
    travel = speed * (num_frames - 1)
    dy, dx = motion
    # Start so that the whole path stays inside the frame; the cross axis is free.
    start = []
    for d in (dy, dx):
        low, high = radius, size - radius
        if d > 0:
            high -= travel
        elif d < 0:
            low += travel
        start.append(rng.uniform(low, high))
    fg, bg = rng.integers(0, 256, (2, 3))
    while np.abs(fg - bg).sum() < 150:  # keep the blob visible
        fg, bg = rng.integers(0, 256, (2, 3))
    stripe = int(rng.integers(3, 7))
    yy, xx = np.mgrid[:size, :size].astype(np.float32)
    frames = np.empty((num_frames, size, size, 3), dtype=np.uint8)
    for t in range(num_frames):
        cy, cx = start[0] + dy * speed * t, start[1] + dx * speed * t
        inside = (yy - cy)**2 + (xx - cx)**2 <= radius**2
        # A texture that moves with the blob (diagonal stripes), not a flat disc.
        texture = ((yy - cy + xx - cx) // stripe) % 2 == 0
        colour = np.where(texture[..., None], fg, (fg + bg) / 2)
        image = np.where(inside[..., None], colour, bg).astype(np.float32)
        image += rng.normal(0, 10, image.shape)
        frames[t] = np.clip(image, 0, 255).astype(np.uint8)
    return frames


def make_kinetics_rawframes(root: str, train_per_class: int = 8, val_per_class: int = 4,
                            num_frames: int = 16, size: int = 64,
                            seed: int = 0) -> Dict[str, object]:
    """Write the set under ``root`` (deterministic: same arguments, same files).

    Args:
        root: output folder (created).
        train_per_class, val_per_class: videos per class and split.
        num_frames: frames per video (JPEG files ``img_00001.jpg`` ...).
        size: frame height and width.
        seed: seed of all randomness.

    Returns:
        ``train``/``val``: videos written per split, ``classes``: class names
        in label order, ``num_frames``, ``size`` and the list files' paths.
    """
    if min(train_per_class, val_per_class) < 1 or num_frames < 2 or size < 16:
        raise ValueError('make_kinetics_rawframes: need >= 1 video per class and split, '
                         f'>= 2 frames and size >= 16 (got {train_per_class}, '
                         f'{val_per_class}, {num_frames}, {size})')
    rng = np.random.default_rng(seed)
    frames_root = os.path.join(root, 'rawframes')
    result: Dict[str, object] = dict(classes=list(MOTION_CLASSES), num_frames=num_frames,
                                     size=size)
    for split, per_class in (('train', train_per_class), ('val', val_per_class)):
        lines = []
        for label, (name, motion) in enumerate(MOTION_CLASSES.items()):
            for i in range(per_class):
                video = f'{split}_{name}_{i:03d}'
                folder = os.path.join(frames_root, video)
                os.makedirs(folder, exist_ok=True)
                for t, frame in enumerate(_render_video(rng, motion, num_frames, size)):
                    Image.fromarray(frame).save(os.path.join(folder, f'img_{t + 1:05d}.jpg'),
                                                quality=95)
                lines.append(f'{video} {num_frames} {label}')
        list_file = os.path.join(root, f'{split}_list.txt')
        with open(list_file, 'w') as f:
            f.write('\n'.join(lines) + '\n')
        result[split] = len(lines)
        result[f'{split}_list'] = list_file
    with open(os.path.join(root, 'classes.txt'), 'w') as f:
        f.write('\n'.join(MOTION_CLASSES) + '\n')
    return result
