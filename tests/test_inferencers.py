"""The codebases' own inferencers run our configs with checkpoints our tools trained (real
mmengine checkpoints: message hub, dataset meta), on generated data."""
import glob
import os

import pytest

import train as train_tool
from stvit_mm.datasets import make_coco_instance, make_imagenet_style
from stvit_mm.datasets.synthetic_kinetics import make_kinetics_rawframes


def _train(repo_root, config, work, options):
    cwd = os.getcwd()
    os.chdir(repo_root)
    try:
        train_tool.main([config, '--work-dir', str(work), '--cfg-options', *options])
    finally:
        os.chdir(cwd)
    return open(work / 'last_checkpoint').read().strip()


def _one_iteration():
    return ['train_cfg.max_iters=1', 'train_cfg.val_interval=1000',
            'default_hooks.checkpoint.interval=1', 'param_scheduler.0.end=1',
            'param_scheduler.1.T_max=1', 'param_scheduler.1.end=1']


def test_det_inferencer_draws_boxes_and_masks(tmp_path, repo_root):
    from mmdet.apis import DetInferencer
    config = os.path.join(repo_root, 'configs/detection/mask_rcnn_stvit_r_swin_t_synthetic.py')
    data = str(tmp_path / 'coco') + '/'
    made = make_coco_instance(data, num_train=2, num_val=1)
    options = [f'{s}_dataloader.dataset.data_root={data}' for s in ('train', 'val', 'test')]
    options += [f'{s}_evaluator.ann_file={data}annotations/instances_val.json'
                for s in ('val', 'test')] + _one_iteration()
    checkpoint = _train(repo_root, config, tmp_path / 'work', options)

    inferencer = DetInferencer(model=config, weights=checkpoint, device='cpu')
    assert inferencer.model.dataset_meta['classes'] == tuple(made['classes'])
    image = sorted(glob.glob(f'{data}val/*'))[0]
    result = inferencer(image, out_dir=str(tmp_path / 'out'), pred_score_thr=0.0,
                        no_save_pred=True)
    prediction = result['predictions'][0]
    assert {'labels', 'scores', 'bboxes', 'masks'} <= set(prediction)
    assert len(prediction['bboxes']) == len(prediction['masks']) > 0
    assert all(0 <= label < len(made['classes']) for label in prediction['labels'])
    assert os.path.isfile(tmp_path / 'out' / 'vis' / os.path.basename(image))


def test_image_classification_inferencer(tmp_path, repo_root):
    from mmpretrain.apis import ImageClassificationInferencer
    config = os.path.join(repo_root, 'configs/classification/stvit_deit_t_synthetic.py')
    make_imagenet_style(str(tmp_path / 'data'), train_per_class=2, val_per_class=1)
    options = [f'{s}_dataloader.dataset.data_root={tmp_path / "data"}'
               for s in ('train', 'val', 'test')] + ['train_cfg.max_epochs=1']
    checkpoint = _train(repo_root, config, tmp_path / 'work', options)

    inferencer = ImageClassificationInferencer(model=config, pretrained=checkpoint,
                                               device='cpu')
    images = sorted(glob.glob(str(tmp_path / 'data' / 'val' / '*' / '*.png')))
    results = inferencer(images)
    assert len(results) == len(images)
    for result in results:
        assert 0 <= result['pred_label'] < 4
        assert result['pred_scores'].sum() == pytest.approx(1.0, abs=1e-4)


def test_action_recognition_inferencer_on_raw_frames(tmp_path, repo_root):
    from mmaction.apis.inferencers import ActionRecogInferencer
    config = os.path.join(repo_root, 'configs/video/video_stvit_r_swin_t_synthetic.py')
    data = tmp_path / 'kinetics'
    made = make_kinetics_rawframes(str(data), train_per_class=1, val_per_class=1)
    options = [f'{s}_dataloader.dataset.data_root={data}' for s in ('train', 'val', 'test')]
    options += ['train_cfg.max_epochs=1', 'train_dataloader.batch_size=2']
    checkpoint = _train(repo_root, config, tmp_path / 'work', options)

    inferencer = ActionRecogInferencer(model=config, weights=checkpoint, device='cpu',
                                       input_format='rawframes')
    video = sorted(glob.glob(str(data / 'rawframes' / '*')))[0]
    prediction = inferencer(video)['predictions'][0]
    assert 0 <= prediction['pred_labels'][0] < len(made['classes'])
    assert sum(prediction['pred_scores']) == pytest.approx(1.0, abs=1e-4)
