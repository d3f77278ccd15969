"""Dataset files that go missing or get damaged: tools/train.py and tools/test.py stop with
one line naming the file, whether it is found before the run, while datasets are built, or
between epochs (an image deleted after the first epoch, by a real mmengine hook)."""
import json
import os

import pytest
import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

import test as test_tool
import train as train_tool
from stvit_mm.datasets import make_coco_instance, make_imagenet_style

CLASSIFIER = 'configs/classification/stvit_deit_t_synthetic.py'
DETECTOR = 'configs/detection/mask_rcnn_stvit_r_swin_t_synthetic.py'


@HOOKS.register_module()
class DeleteFileAfterFirstEpoch(Hook):
    """Removes ``path`` when the first training epoch ends (a file lost between epochs)."""

    def __init__(self, path: str):
        self.path = path

    def after_train_epoch(self, runner) -> None:
        if runner.epoch == 0:
            os.remove(self.path)


def _exit_line(tool_main, argv) -> str:
    with pytest.raises(SystemExit) as exit_info:
        tool_main(argv)
    message = str(exit_info.value.code)
    assert message.startswith('error: ') and '\n' not in message, message
    return message


@pytest.fixture
def images(tmp_path, repo_root, monkeypatch):
    root = tmp_path / 'data'
    make_imagenet_style(str(root), train_per_class=2, val_per_class=1)
    monkeypatch.chdir(repo_root)
    options = [f'{s}_dataloader.dataset.data_root={root}' for s in ('train', 'val', 'test')]
    return root, options


def test_image_lost_between_epochs_is_named(images, tmp_path, repo_root):
    root, options = images
    lost = sorted((root / 'train').rglob('*.png'))[0]
    config = tmp_path / 'config.py'
    hook = dict(type='DeleteFileAfterFirstEpoch', path=str(lost))
    config.write_text(f'_base_ = {os.path.join(repo_root, CLASSIFIER)!r}\n'
                      f'custom_hooks = [{hook!r}]\n')
    message = _exit_line(train_tool.main, [str(config), '--work-dir', str(tmp_path / 'work'),
                                           '--cfg-options', *options, 'train_cfg.max_epochs=2',
                                           'default_hooks.checkpoint.interval=1',
                                           # the error comes through a worker's traceback
                                           'train_dataloader.num_workers=1'])
    assert f'cannot read image {lost}' in message
    assert (tmp_path / 'work' / 'epoch_1.pth').is_file()  # it was lost after epoch 1


def test_image_missing_at_test_time_is_named(images, tmp_path):
    root, options = images
    work = tmp_path / 'work'
    train_tool.main([CLASSIFIER, '--work-dir', str(work), '--cfg-options', *options,
                     'train_cfg.max_epochs=1'])
    lost = sorted((root / 'val').rglob('*.png'))[0]
    lost.write_bytes(lost.read_bytes()[:40])  # cut short: not decodable
    message = _exit_line(test_tool.main, [CLASSIFIER, str(work / 'epoch_1.pth'), '--work-dir',
                                          str(tmp_path / 'test'), '--cfg-options', *options])
    assert f'cannot read image {lost}' in message


@pytest.fixture
def coco(tmp_path, repo_root, monkeypatch):
    data = str(tmp_path / 'coco') + '/'
    make_coco_instance(data, num_train=2, num_val=1)
    monkeypatch.chdir(repo_root)
    options = [f'{s}_dataloader.dataset.data_root={data}' for s in ('train', 'val', 'test')]
    options += [f'{s}_evaluator.ann_file={data}annotations/instances_val.json'
                for s in ('val', 'test')]
    return data + 'annotations/', options + [
        'train_cfg.max_iters=2', 'train_cfg.val_interval=2', 'default_hooks.checkpoint.interval=2',
        'param_scheduler.0.end=1', 'param_scheduler.1.T_max=2', 'param_scheduler.1.end=2']


def _cut(path: str) -> None:
    with open(path, 'rb') as f:
        data = f.read()
    with open(path, 'wb') as f:
        f.write(data[:len(data) // 2])
    with pytest.raises(json.JSONDecodeError):
        json.loads(data[:len(data) // 2])


def test_damaged_train_annotation_file_is_named(coco, tmp_path):
    annotations, options = coco
    _cut(annotations + 'instances_train.json')
    message = _exit_line(train_tool.main, [DETECTOR, '--work-dir', str(tmp_path / 'w'),
                                           '--cfg-options', *options])
    assert f'annotation file {annotations}instances_train.json (train_dataloader) is not ' \
        'valid JSON' in message


def test_damaged_test_annotation_file_is_named(coco, tmp_path):
    annotations, options = coco
    # The test loop (its dataset) is built before the checkpoint is loaded: any file will do.
    checkpoint = tmp_path / 'iter_2.pth'
    torch.save({'state_dict': {}}, checkpoint)
    _cut(annotations + 'instances_val.json')
    message = _exit_line(test_tool.main, [DETECTOR, str(checkpoint),
                                          '--work-dir', str(tmp_path / 't'), '--cfg-options',
                                          *options])
    assert f'annotation file {annotations}instances_val.json (test_dataloader) is not ' \
        'valid JSON' in message


def test_missing_annotation_file_is_named_before_start(coco, tmp_path):
    annotations, options = coco
    os.remove(annotations + 'instances_train.json')
    message = _exit_line(train_tool.main, [DETECTOR, '--work-dir', str(tmp_path / 'w'),
                                           '--cfg-options', *options])
    assert f'train_dataloader: ann_file {annotations}instances_train.json' in message
    assert not (tmp_path / 'w').exists()  # failed before the Runner made its work dir
