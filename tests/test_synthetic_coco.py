"""The generated COCO-format shapes set and its mmdet data config.

Real components throughout (pycocotools, mmdet's ``CocoDataset`` and
``CocoMetric``) on a handful of small images, so the whole file runs in seconds.
"""
import inspect
import json
import os
from typing import Any, Dict, List

import numpy as np
import pytest
import torch
from mmengine import Config
from mmengine.registry import init_default_scope
from pycocotools.coco import COCO

from stvit_mm.datasets.synthetic_coco import SYNTHETIC_COCO_CLASSES, make_coco_instance

CONFIG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                      'configs', 'detection', 'mask_rcnn_stvit_r_swin_t_synthetic.py')
# (width, height): the generator's default, which the config's Resize keeps as is.
SIZE = (256, 192)


@pytest.fixture(scope='module')
def coco_root(tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp('coco_synthetic'))
    make_coco_instance(root, num_train=6, num_val=4, image_size=SIZE, seed=0)
    return root


def _read_tree(root: str) -> Dict[str, bytes]:
    files = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            with open(path, 'rb') as f:
                files[os.path.relpath(path, root)] = f.read()
    return files


def _config_for(root: str) -> Config:
    """The demo config with every data path moved to ``root``."""
    cfg = Config.fromfile(CONFIG)
    data_root = root.rstrip('/') + '/'
    for loader in (cfg.train_dataloader, cfg.val_dataloader, cfg.test_dataloader):
        loader.dataset.data_root = data_root
    cfg.val_evaluator.ann_file = data_root + 'annotations/instances_val.json'
    return cfg


def test_same_seed_same_bytes(tmp_path, coco_root):
    other = str(tmp_path / 'again')
    summary = make_coco_instance(other, num_train=6, num_val=4, image_size=SIZE, seed=0)
    assert summary['classes'] == SYNTHETIC_COCO_CLASSES
    assert summary['train']['images'] == 6 and summary['val']['images'] == 4
    first, second = _read_tree(coco_root), _read_tree(other)
    assert sorted(first) == sorted(second)
    assert len([name for name in first if name.endswith('.png')]) == 10
    assert first == second
    # A different seed must give different data (the seed is actually used).
    third = str(tmp_path / 'other_seed')
    make_coco_instance(third, num_train=6, num_val=4, image_size=SIZE, seed=1)
    assert _read_tree(third) != first


@pytest.mark.parametrize('split', ['train', 'val'])
def test_annotations_are_consistent(coco_root, split):
    ann_file = os.path.join(coco_root, 'annotations', f'instances_{split}.json')
    coco = COCO(ann_file)
    assert [c['name'] for c in coco.loadCats(coco.getCatIds())] == list(SYNTHETIC_COCO_CLASSES)
    assert len(coco.getImgIds()) == (6 if split == 'train' else 4)
    for image in coco.loadImgs(coco.getImgIds()):
        assert os.path.isfile(os.path.join(coco_root, split, image['file_name']))
        assert (image['width'], image['height']) == SIZE
        anns = coco.loadAnns(coco.getAnnIds(imgIds=image['id']))
        assert 1 <= len(anns) <= 4
        for ann in anns:
            x, y, w, h = ann['bbox']
            assert 0 <= x and 0 <= y and x + w <= image['width'] and y + h <= image['height']
            assert w > 0 and h > 0 and 0 < ann['area'] <= w * h + 0.01  # both rounded to 0.01
            assert ann['iscrowd'] == 0
            polygon = np.asarray(ann['segmentation'][0]).reshape(-1, 2)
            np.testing.assert_allclose(
                [x, y, x + w, y + h], [*polygon.min(0), *polygon.max(0)], atol=0.011)
            # The rasterised polygon must cover about the stated area (rasterisation
            # adds or drops a boundary pixel row, hence the tolerance).
            assert abs(coco.annToMask(ann).sum() - ann['area']) <= 0.15 * ann['area'] + 2 * (w + h)


def test_dataset_from_config_fragment(coco_root):
    from mmdet.registry import DATASETS
    init_default_scope('mmdet')
    cfg = _config_for(coco_root)
    assert tuple(cfg.image_size) == SIZE
    assert inspect.signature(make_coco_instance).parameters['image_size'].default == SIZE
    assert cfg.train_dataloader.dataset.metainfo.classes == SYNTHETIC_COCO_CLASSES
    train = DATASETS.build(cfg.train_dataloader.dataset)
    assert len(train) == 6
    sample = train[0]
    instances = sample['data_samples'].gt_instances
    assert sample['inputs'].shape[1:] == (SIZE[1], SIZE[0])  # Resize keeps the generated size
    assert len(instances) >= 1
    assert instances.bboxes.shape == (len(instances), 4)
    assert instances.masks.masks.shape == (len(instances), SIZE[1], SIZE[0])
    assert instances.masks.masks.any(axis=(1, 2)).all()
    assert set(instances.labels.tolist()) <= {0, 1, 2}
    val = DATASETS.build(cfg.val_dataloader.dataset)
    assert len(val) == 4 and val[0]['data_samples'].img_id == 1


def _ground_truth_as_predictions(coco: COCO) -> List[Dict[str, Any]]:
    """One data sample per image whose predictions are exactly its annotations."""
    cat_ids = coco.getCatIds(catNms=list(SYNTHETIC_COCO_CLASSES))
    samples = []
    for image in coco.loadImgs(coco.getImgIds()):
        anns = coco.loadAnns(coco.getAnnIds(imgIds=image['id']))
        bboxes = torch.tensor([[x, y, x + w, y + h] for x, y, w, h in
                               (ann['bbox'] for ann in anns)], dtype=torch.float32)
        samples.append(dict(
            img_id=image['id'], ori_shape=(image['height'], image['width']),
            pred_instances=dict(
                bboxes=bboxes, scores=torch.ones(len(anns)),
                labels=torch.tensor([cat_ids.index(ann['category_id']) for ann in anns]),
                masks=torch.from_numpy(np.stack([coco.annToMask(ann) for ann in anns])).bool())))
    return samples


def test_ground_truth_scores_perfect_map(coco_root, tmp_path):
    """Evaluating the ground truth against itself gives mAP 1: file layout,
    category mapping and box convention agree between the set and CocoMetric."""
    from mmdet.registry import METRICS
    init_default_scope('mmdet')
    cfg = _config_for(coco_root)
    metric = METRICS.build(cfg.val_evaluator)
    metric.dataset_meta = dict(classes=SYNTHETIC_COCO_CLASSES)
    coco = COCO(cfg.val_evaluator.ann_file)
    metric.process({}, _ground_truth_as_predictions(coco))
    results = metric.evaluate(size=len(coco.getImgIds()))
    assert results['coco/bbox_mAP'] == pytest.approx(1.0)
    assert results['coco/segm_mAP'] == pytest.approx(1.0)


def test_json_is_plain_coco(coco_root):
    with open(os.path.join(coco_root, 'annotations', 'instances_val.json')) as f:
        data = json.load(f)
    assert {'images', 'annotations', 'categories'} <= set(data)
    ids = [ann['id'] for ann in data['annotations']]
    assert ids == list(range(1, len(ids) + 1))  # unique, stable annotation ids
