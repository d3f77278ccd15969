"""Semantic token figures of image files, end to end (``tools/visualize_semantic_tokens.py``).

Builds the model of a config with a checkpoint, loads and normalises images as
the model's data preprocessor does, computes the maps
(:mod:`stvit_mm.analysis.semantic_maps`) and draws them
(:mod:`stvit_mm.analysis.plotting`): per image and generator, PNG grids with
one panel per semantic token, a map of the semantic token each region
recovers from (argmax), and the raw maps (``maps.npz``).
"""
import os
import os.path as osp
from typing import Any, Callable, Iterator, List, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..utils.config import ConfigError, load_config
from ..utils.model_builder import build_model, load_weights, model_kind
from .plotting import draw_argmax_map, draw_token_panels
from .semantic_maps import ROLES, SemanticMaps, semantic_maps, semantic_targets

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.webp', '.tif', '.tiff')


def build_visualization_model(config: Union[str, Any], checkpoint: Optional[str],
                              device: str = 'cpu', cfg_options: Optional[dict] = None,
                              log: Callable[[str], None] = lambda message: None) -> nn.Module:
    """Model of ``config`` (random init, seeded) with ``checkpoint`` loaded ('none': no weights).

    A checkpoint with ``backbone.*`` keys (a detector or classifier file) is
    loaded into the model; one without is loaded into the backbone, whose
    load hooks convert foreign layouts (official Swin / STViT-R, DeiT, ...).
    """
    cfg = load_config(config, cfg_options)
    # mmpretrain configs keep the data preprocessor (mean/std, RGB) at the top level; the
    # Runner moves it into the model, and so do we.
    if cfg.get('data_preprocessor') and 'data_preprocessor' not in cfg.model:
        cfg.model.data_preprocessor = cfg.data_preprocessor
    model = build_model(cfg, device)
    kind = model_kind(model)
    if kind == 'recognizer3d':
        raise ConfigError('video recognizers are not supported: semantic maps are drawn on '
                          'images (use an image classification, detection or segmentation '
                          'config)')
    semantic_targets(model.backbone)  # fails early on backbones without semantic tokens
    if checkpoint is not None and checkpoint.lower() != 'none':
        load_weights(model, checkpoint, log)
    model.eval()
    return model


def load_image(path: str, short_side: Optional[int] = None) -> np.ndarray:
    """BGR uint8 (H, W, 3) as the OpenMMLab pipelines load it, optionally rescaled."""
    import mmcv
    if not osp.isfile(path):
        raise ConfigError(f'image {path} does not exist')
    image = mmcv.imread(path, flag='color')
    if image is None:
        raise ConfigError(f'cannot read image {path}')
    if short_side:
        scale = short_side / min(image.shape[:2])
        image = mmcv.imrescale(image, scale)
    return image


def image_to_input(model: nn.Module, image_bgr: np.ndarray) -> Tensor:
    """Normalise (and pad) like the model's data preprocessor, then pad for the backbone.

    Returns (1, 3, H', W') with H' >= H, W' >= W; padding is at the bottom/right.
    """
    device = next(model.parameters()).device
    tensor = torch.from_numpy(np.ascontiguousarray(image_bgr)).permute(2, 0, 1)
    data = model.data_preprocessor(dict(inputs=[tensor.to(device)]), False)
    inputs = data['inputs']
    multiple = int(getattr(model.backbone, 'patch_size', 1) or 1)  # STViT: whole patches
    H, W = inputs.shape[-2:]
    return F.pad(inputs, (0, (-W) % multiple, 0, (-H) % multiple))


def select_tokens(maps: SemanticMaps, max_panels: int) -> np.ndarray:
    """Token indices to draw: all, or whole windows spread over the image."""
    T, S = maps.num_tokens, maps.tokens_per_window
    if T <= max_panels:
        return np.arange(T)
    windows = T // S
    count = max(1, max_panels // S)
    chosen = np.unique(np.linspace(0, windows - 1, count).round().astype(int))
    tokens = (chosen[:, None] * S + np.arange(S)).reshape(-1)
    return tokens[:max_panels]


def visualize_image(model: nn.Module, image_path: str, out_dir: str,
                    short_side: Optional[int] = None, max_panels: int = 64,
                    max_side: int = 1600,
                    log: Callable[[str], None] = lambda message: None) -> List[str]:
    """Write the semantic token figures of one image; returns the written paths.

    Per generator ``G`` (see :class:`SemanticMaps`), under ``out_dir``:
    ``G_layer1.png`` and ``G_layer2.png`` (attention of each semantic token to
    the image, one panel per token), ``G_recovery.png`` (each region coloured by
    the semantic token it recovers most from; without recovery,
    ``G_assignment.png``: by the token that attends to it most in layer 2),
    ``G_recovery_tokens.png`` (recovery weight given to each token), and
    ``maps.npz`` with every map on its token grid.
    """
    image_bgr = load_image(image_path, short_side)
    image_rgb = np.ascontiguousarray(image_bgr[..., ::-1])
    size = image_rgb.shape[:2]
    inputs = image_to_input(model, image_bgr)
    all_maps = semantic_maps(model.backbone, inputs)
    os.makedirs(out_dir, exist_ok=True)
    written, arrays = [], {}
    for maps in all_maps:
        tokens = select_tokens(maps, max_panels)
        if len(tokens) < maps.num_tokens:
            log(f'{maps.name}: drawing {len(tokens)} of {maps.num_tokens} semantic tokens '
                f'(whole windows; raise --max-panels for more)')
        labels = [maps.labels[t] for t in tokens]
        prefix = osp.join(out_dir, maps.name)
        for role in ('layer1', 'layer2'):
            written.append(draw_token_panels(image_rgb, getattr(maps, role)[tokens], maps.stride,
                                             labels, f'{prefix}_{role}.png', max_side))
        if maps.recovery is not None:
            written.append(draw_argmax_map(image_rgb, maps.recovery, maps.stride, maps.labels,
                                           f'{prefix}_recovery.png', max_side))
            written.append(draw_token_panels(image_rgb, maps.recovery[tokens], maps.stride,
                                             labels, f'{prefix}_recovery_tokens.png', max_side))
        else:
            written.append(draw_argmax_map(image_rgb, maps.layer2, maps.stride, maps.labels,
                                           f'{prefix}_assignment.png', max_side))
        for role in ROLES:
            value = getattr(maps, role)
            if value is not None:
                arrays[f'{maps.name}.{role}'] = value
        arrays[f'{maps.name}.labels'] = np.array(maps.labels)
        arrays[f'{maps.name}.stride'] = np.array(maps.stride)
    arrays['image_shape'] = np.array(size)
    npz = osp.join(out_dir, 'maps.npz')
    np.savez_compressed(npz, **arrays)
    written.append(npz)
    return written


def visualize_images(model: nn.Module, images: Sequence[str], out_dir: str,
                     short_side: Optional[int] = None, max_panels: int = 64,
                     max_side: int = 1600,
                     log: Callable[[str], None] = lambda message: None) -> Iterator[str]:
    """:func:`visualize_image` for each image, into ``out_dir/<image name>/``; yields the
    written paths as they are written."""
    stems = [osp.splitext(osp.basename(path))[0] for path in images]
    for i, (path, stem) in enumerate(zip(images, stems)):
        # images with the same name in different folders keep separate outputs
        name = stem if stems.count(stem) == 1 else f'{stem}_{i}'
        log(path)
        yield from visualize_image(model, path, osp.join(out_dir, name), short_side, max_panels,
                                   max_side, log)


def image_paths(paths: Sequence[str]) -> List[str]:
    """Files as given; directories expanded to the images they contain (sorted)."""
    out = []
    for path in paths:
        if osp.isdir(path):
            found = sorted(osp.join(path, f) for f in os.listdir(path)
                           if f.lower().endswith(IMAGE_EXTENSIONS))
            if not found:
                raise ConfigError(f'no images ({", ".join(IMAGE_EXTENSIONS)}) in {path}')
            out += found
        elif osp.isfile(path):
            out.append(path)
        else:
            raise ConfigError(f'image {path} does not exist')
    return out


__all__ = ['IMAGE_EXTENSIONS', 'build_visualization_model', 'image_paths', 'image_to_input',
           'load_image', 'select_tokens', 'visualize_image', 'visualize_images']
