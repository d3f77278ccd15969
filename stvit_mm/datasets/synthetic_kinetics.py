"""A tiny Kinetics-style action set in mmaction2's raw-frame format.

Each class is a direction of motion, the 8 compass directions: a two-colour
mosaic of square cells slides across the frame that way (as in a camera pan),
``size / 16`` pixels per frame along each moving axis. A single frame says
nothing about the class (pattern, colours and start are random per video), so
a model has to use the temporal order of the frames; the pattern has edges
everywhere, so every patch shows the motion and Video Swin learns the task
from scratch in about 200 steps (large shapes on a flat background, most
patches without an edge, did not learn in 200 steps).

Output layout (read by mmaction's ``RawframeDataset``)::

    root/rawframes/<video>/img_00001.jpg ...
    root/train_list.txt, root/val_list.txt    lines: "<video> <total_frames> <label>"
    root/classes.txt                          one class name per line (label order)
"""
import os
from typing import Dict, Tuple

import numpy as np
from PIL import Image

# Direction of motion (dy, dx) of each class (image axes: y down); the label is the index.
MOTION_CLASSES: Dict[str, Tuple[int, int]] = {
    'moving_right': (0, 1),
    'moving_left': (0, -1),
    'moving_down': (1, 0),
    'moving_up': (-1, 0),
    'moving_down_right': (1, 1),
    'moving_down_left': (1, -1),
    'moving_up_right': (-1, 1),
    'moving_up_left': (-1, -1),
}


def _render_pattern(rng: np.random.Generator, height: int, width: int, size: int) -> np.ndarray:
    """(height, width, 3) float32 mosaic of square cells, each a bright or a dark colour.

    Edges everywhere: every patch of every frame shows the motion.
    """
    cell = int(rng.integers(3, 7)) * max(1, round(size / 32))
    cells = rng.random((-(-height // cell), -(-width // cell))) < 0.5
    bright = np.kron(cells, np.ones((cell, cell), dtype=bool))[:height, :width]
    dark, light = rng.uniform(0, 60, 3), rng.uniform(170, 255, 3)
    return np.where(bright[..., None], light, dark).astype(np.float32)


def _render_video(rng: np.random.Generator, motion: Tuple[int, int], num_frames: int,
                  size: int) -> np.ndarray:
    """(num_frames, size, size, 3) uint8 frames of a pattern sliding along ``motion``.

    The pattern moves a whole number of pixels per frame along each axis of
    ``motion`` (size / 16: 2 at 32), so consecutive frames are exact shifts plus noise.
    """
    step = max(1, round(size / 16))
    vy, vx = motion[0] * step, motion[1] * step
    travel_y, travel_x = abs(vy) * (num_frames - 1), abs(vx) * (num_frames - 1)
    canvas = _render_pattern(rng, size + travel_y, size + travel_x, size)
    # The pattern moves along ``motion``, so the view moves the other way, inside the canvas.
    top, left = (travel if v > 0 else 0 for v, travel in ((vy, travel_y), (vx, travel_x)))
    frames = np.empty((num_frames, size, size, 3), dtype=np.uint8)
    for t in range(num_frames):
        view = canvas[top - vy * t:top - vy * t + size, left - vx * t:left - vx * t + size]
        frames[t] = np.clip(view + rng.normal(0, 6, (size, size, 3)), 0, 255).astype(np.uint8)
    return frames


def make_kinetics_rawframes(root: str, train_per_class: int = 40, val_per_class: int = 8,
                            num_frames: int = 16, size: int = 32,
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
