"""Figures of semantic token maps (matplotlib, Agg backend): token panels and argmax maps.

Draws what :mod:`stvit_mm.analysis.semantic_maps` computes (token maps on the
image-token grid) over the image; computes no attention itself. Every figure
keeps the input's aspect ratio.
"""
import colorsys
import math
from typing import Sequence, Tuple

import numpy as np


def _check_cover(grid: Tuple[int, int], stride: int, size: Tuple[int, int]) -> None:
    if grid[0] * stride < size[0] or grid[1] * stride < size[1]:
        raise ValueError(f'token grid {grid} x stride {stride} does not cover the image {size}')


def to_pixels(maps: np.ndarray, stride: int, size: Tuple[int, int]) -> np.ndarray:
    """(..., h, w) token maps -> (..., H, W): each token covers stride x stride pixels."""
    _check_cover(maps.shape[-2:], stride, size)
    out = np.repeat(np.repeat(maps, stride, axis=-2), stride, axis=-1)
    return out[..., :size[0], :size[1]]


def token_colours(count: int) -> np.ndarray:
    """(count, 3) distinct RGB colours in [0, 1] (golden-ratio hues)."""
    return np.array([colorsys.hsv_to_rgb((0.1 + i * 0.6180339887) % 1.0, 0.75, 0.95)
                     for i in range(count)])


def _figure(width: int, height: int):
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib import pyplot as plt
    dpi = 100
    return plt.figure(figsize=(width / dpi, height / dpi), dpi=dpi), dpi


def _fit(size: Tuple[int, int], cells: int, max_side: int,
         min_side: int = 640) -> Tuple[int, int]:
    """Figure pixels (width, height) for a cells x cells mosaic of an (H, W) image.

    The image's own size, scaled so that the figure's long side lies in
    [min_side, max_side]; the figure keeps the image's aspect ratio.
    """
    H, W = size
    long_side = cells * max(H, W)
    scale = min(max(1.0, min(min_side, max_side) / long_side), max_side / long_side)
    if W >= H:
        width = max(1, round(cells * W * scale))
        return width, max(1, round(width * H / W))
    height = max(1, round(cells * H * scale))
    return max(1, round(height * W / H)), height


def draw_token_panels(image_rgb: np.ndarray, maps: np.ndarray, stride: int,
                      labels: Sequence[str], path: str, max_side: int = 1600,
                      cmap: str = 'jet') -> str:
    """One panel per map: the image with the map overlaid, labelled; a square grid of panels.

    Args:
        image_rgb: (H, W, 3) uint8.
        maps: (n, h, w) non-negative token maps; token (i, j) covers pixels
            [i * stride, (i + 1) * stride) x [j * stride, (j + 1) * stride)
            (what lies beyond the image is padding, cut off). Each panel shows
            its map divided by the map's peak, which is printed on the panel.
        stride: pixels per token.
        labels: one per map.
        path: PNG to write.
        max_side: long side of the figure in pixels (at most).
    """
    n, h, w = maps.shape
    _check_cover((h, w), stride, image_rgb.shape[:2])
    gray = _gray(image_rgb)  # the colour map reads better on a grey image
    cells = max(1, math.ceil(math.sqrt(n)))  # rows == cols: the figure keeps the image aspect
    H, W = image_rgb.shape[:2]
    width, height = _fit((H, W), cells, max_side)
    fig, dpi = _figure(width, height)
    font = max(4.0, min(9.0, 0.06 * height / cells * 72 / dpi))
    for i in range(cells * cells):
        r, c = divmod(i, cells)
        ax = fig.add_axes((c / cells, 1 - (r + 1) / cells, 1 / cells, 1 / cells))
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_color('white')
            spine.set_linewidth(0.5)
        if i >= n:
            ax.set_facecolor('black')
            continue
        ax.imshow(gray, extent=(0, W, H, 0), cmap='gray', vmin=0, vmax=255,
                  interpolation='antialiased')
        high = float(maps[i].max())
        norm = maps[i] / high if high > 0 else np.zeros_like(maps[i])
        ax.imshow(norm, extent=(0, w * stride, h * stride, 0), cmap=cmap, vmin=0, vmax=1,
                  alpha=0.5, interpolation='nearest')
        ax.set_xlim(0, W)
        ax.set_ylim(H, 0)
        ax.text(0.02, 0.98, f'{labels[i]}  max {high:.3g}', transform=ax.transAxes,
                fontsize=font, color='white', va='top', ha='left',
                bbox=dict(facecolor='black', alpha=0.6, pad=1, linewidth=0))
    return _save(fig, path, dpi)


def draw_argmax_map(image_rgb: np.ndarray, weights: np.ndarray, stride: int,
                    labels: Sequence[str], path: str, max_side: int = 1600,
                    alpha: float = 0.55) -> str:
    """Each region coloured by the map with the largest weight there, region borders in white.

    weights: (T, h, w) token maps (``stride`` pixels per token, as in
    :func:`draw_token_panels`), e.g. recovery weights: which semantic token
    each image token recovers most from. Labels are written at the regions'
    centres when there are at most 64 maps.
    """
    H, W = image_rgb.shape[:2]
    blend, winner = argmax_overlay(image_rgb, weights, stride, alpha)
    width, height = _fit((H, W), 1, max_side)
    fig, dpi = _figure(width, height)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    ax.imshow(blend, extent=(0, W, H, 0), interpolation='nearest')
    ax.set_xlim(0, W)
    ax.set_ylim(H, 0)
    if weights.shape[0] <= 64:
        font = max(4.0, min(9.0, 0.03 * height * 72 / dpi))
        for t in np.unique(winner):
            ys, xs = np.nonzero(winner == t)
            ax.text(xs.mean(), ys.mean(), labels[t], fontsize=font, color='black',
                    ha='center', va='center',
                    bbox=dict(facecolor='white', alpha=0.7, pad=1, linewidth=0))
    return _save(fig, path, dpi)


def argmax_overlay(image_rgb: np.ndarray, weights: np.ndarray, stride: int,
                   alpha: float = 0.55) -> Tuple[np.ndarray, np.ndarray]:
    """The picture :func:`draw_argmax_map` draws, as arrays: (H, W, 3) RGB floats in [0, 1]
    (the grey image blended with the colour of the winning map, region borders white) and
    the (H, W) index of the winning map per pixel."""
    H, W = image_rgb.shape[:2]
    winner = to_pixels(weights.argmax(axis=0), stride, (H, W))  # (H, W)
    colours = token_colours(weights.shape[0])
    blend = (1 - alpha) * _gray(image_rgb)[..., None] / 255.0 + alpha * colours[winner]
    border = np.zeros((H, W), dtype=bool)
    border[:, 1:] |= winner[:, 1:] != winner[:, :-1]
    border[1:, :] |= winner[1:, :] != winner[:-1, :]
    blend[border] = 1.0
    return blend, winner


def _gray(image_rgb: np.ndarray) -> np.ndarray:
    """(H, W) luminance (ITU-R BT.601) of an RGB uint8 image, float in 0..255."""
    return image_rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _save(fig, path: str, dpi: int) -> str:
    """Write ``fig`` to ``path`` and free it (pyplot keeps every open figure)."""
    from matplotlib import pyplot as plt
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


__all__ = ['argmax_overlay', 'draw_argmax_map', 'draw_token_panels', 'to_pixels', 'token_colours']
