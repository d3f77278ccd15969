"""The detection demo's closing picture: a few validation images, each as ground truth |
prediction (score threshold in the column title) | semantic-token map, in one PNG.

Predictions come from mmdet's ``init_detector`` / ``inference_detector`` on the trained
checkpoint; the semantic-token map is the one tools/visualize_semantic_tokens.py draws as
``*_recovery.png`` (each region coloured by the semantic token it recovers from).
"""
import json
import os.path as osp
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

SCORE_THRESHOLD = 0.5
COLUMNS = ('ground truth', 'prediction (score >= {thr:g})', 'semantic tokens')


def class_colours(classes: Sequence[str]) -> Dict[str, tuple]:
    """One fixed matplotlib colour per class name, the same in every panel."""
    from matplotlib import colormaps
    palette = colormaps['tab10'].colors
    return {name: palette[i % len(palette)] for i, name in enumerate(classes)}


def ground_truth(ann_file: str) -> Dict[str, List[Dict[str, Any]]]:
    """{image file name: [{'class', 'bbox' (x, y, w, h), 'polygons'}]} of a COCO file."""
    with open(ann_file, encoding='utf-8') as f:
        coco = json.load(f)
    names = {c['id']: c['name'] for c in coco['categories']}
    files = {image['id']: image['file_name'] for image in coco['images']}
    objects: Dict[str, List[Dict[str, Any]]] = {name: [] for name in files.values()}
    for ann in coco['annotations']:
        objects[files[ann['image_id']]].append(dict(
            cls=names[ann['category_id']], bbox=ann['bbox'],
            polygons=[np.asarray(p, dtype=float).reshape(-1, 2)
                      for p in ann.get('segmentation', [])]))
    return objects


def predictions(model, image_path: str, score_thr: float) -> List[Dict[str, Any]]:
    """The detector's instances on one image scoring at least ``score_thr``."""
    from mmdet.apis import inference_detector
    result = inference_detector(model, image_path).pred_instances
    keep = result.scores >= score_thr
    classes = model.dataset_meta['classes']
    masks = result.masks[keep].cpu().numpy() if 'masks' in result else None
    return [dict(cls=classes[int(label)], score=float(score), bbox=box.tolist(),
                 mask=None if masks is None else masks[i])
            for i, (label, score, box) in enumerate(zip(result.labels[keep],
                                                        result.scores[keep],
                                                        result.bboxes[keep]))]


def token_map(model, image_bgr: np.ndarray) -> Dict[str, Any]:
    """The first generator's map of one image: recovery (STViT-R) or, without recovery, the
    token attending most in generator layer 2; RGB floats, the number of tokens and what the
    colours say."""
    from ..analysis.plotting import argmax_overlay
    from ..analysis.semantic_maps import semantic_maps
    from ..analysis.visualize import image_to_input
    maps = semantic_maps(model.backbone, image_to_input(model, image_bgr))[0]
    weights = maps.recovery if maps.recovery is not None else maps.layer2
    image_rgb = np.ascontiguousarray(image_bgr[..., ::-1])
    blend, _ = argmax_overlay(image_rgb, weights, maps.stride)
    how = ('recovers from (STViT-R recovery layer)' if maps.recovery is not None
           else 'gets the most attention from (generator layer 2)')
    return dict(picture=blend, tokens=maps.num_tokens, how=how)


def _box(ax, bbox_xywh, colour, text: str) -> None:
    from matplotlib.patches import Rectangle
    x, y, w, h = bbox_xywh
    ax.add_patch(Rectangle((x, y), w, h, fill=False, edgecolor=colour, linewidth=1.5))
    ax.text(x, y - 1, text, fontsize=7, color='white', va='bottom',
            bbox=dict(facecolor=colour, alpha=0.85, pad=1, linewidth=0))


def _draw_ground_truth(ax, image, objects, colours) -> None:
    from matplotlib.patches import Polygon
    ax.imshow(image)
    for obj in objects:
        colour = colours[obj['cls']]
        for polygon in obj['polygons']:
            ax.add_patch(Polygon(polygon, closed=True, facecolor=(*colour, 0.45),
                                 edgecolor=colour, linewidth=1))
        _box(ax, obj['bbox'], colour, obj['cls'])


def _draw_prediction(ax, image, found, colours) -> None:
    ax.imshow(image)
    height, width = image.shape[:2]
    overlay = np.zeros((height, width, 4))
    for obj in found:
        if obj['mask'] is not None:
            overlay[obj['mask'].astype(bool)] = (*colours[obj['cls']], 0.45)
    ax.imshow(overlay)
    for obj in found:
        x1, y1, x2, y2 = obj['bbox']
        _box(ax, (x1, y1, x2 - x1, y2 - y1), colours[obj['cls']],
             f'{obj["cls"]} {obj["score"]:.2f}')


def draw_results_figure(config: str, checkpoint: str, data_root: str, images: Sequence[str],
                        path: str, title: str, score_thr: float = SCORE_THRESHOLD,
                        cfg_options: Optional[dict] = None) -> Dict[str, Any]:
    """Draw ``images`` (file names in ``data_root/val``) as rows of :data:`COLUMNS` into
    ``path``; returns what was drawn (columns, objects per image, predictions kept per
    image, semantic tokens of the map)."""
    import matplotlib
    matplotlib.use('Agg')
    import mmcv
    from matplotlib import pyplot as plt
    from matplotlib.patches import Patch
    from mmdet.apis import init_detector

    import stvit_mm.models  # noqa: F401  (registers the backbones)
    model = init_detector(config, checkpoint, device='cpu', cfg_options=cfg_options)
    truth = ground_truth(osp.join(data_root, 'annotations', 'instances_val.json'))
    classes = list(model.dataset_meta['classes'])
    colours = class_colours(classes)
    columns = [c.format(thr=score_thr) for c in COLUMNS]
    rows = len(images)
    fig, axes = plt.subplots(rows, len(columns), figsize=(3.2 * len(columns), 2.5 * rows + 0.9),
                             dpi=100, squeeze=False)
    drawn = dict(path=path, columns=columns, ground_truth=[], predictions=[], tokens=None,
                 how=None)
    for row, name in enumerate(images):
        image_path = osp.join(data_root, 'val', name)
        image_bgr = mmcv.imread(image_path, flag='color')
        # grey images under the class colours: the objects' own colours do not mix in
        grey = np.repeat(mmcv.bgr2gray(image_bgr)[..., None], 3, axis=2)
        found = predictions(model, image_path, score_thr)
        tokens = token_map(model, image_bgr)
        _draw_ground_truth(axes[row, 0], grey, truth[name], colours)
        _draw_prediction(axes[row, 1], grey, found, colours)
        axes[row, 2].imshow(tokens['picture'])
        drawn['ground_truth'].append(len(truth[name]))
        drawn['predictions'].append(len(found))
        drawn['tokens'], drawn['how'] = tokens['tokens'], tokens['how']
        axes[row, 0].set_ylabel(name, fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    for ax, column in zip(axes[0], columns):
        ax.set_title(column, fontsize=9)
    fig.suptitle(f'{title}\nsemantic tokens: each region coloured by the one of the '
                 f'{drawn["tokens"]} semantic tokens it {drawn["how"]}', fontsize=10)
    fig.legend(handles=[Patch(color=colours[c], label=c) for c in classes],
               loc='lower center', ncol=len(classes), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.05, 1, 0.96))
    fig.savefig(path)
    plt.close(fig)
    return drawn


__all__ = ['COLUMNS', 'SCORE_THRESHOLD', 'draw_results_figure', 'ground_truth', 'predictions',
           'token_map']
