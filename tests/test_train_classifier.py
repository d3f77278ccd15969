"""The real mmengine Runner trains STViT-DeiT on generated data, saves, reloads, evaluates."""
import json
import pickle
from pathlib import Path

import mmcv
import torch
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint

import test as test_tool
import train as train_tool
from stvit_mm.datasets import make_imagenet_style
from stvit_mm.utils import load_config

CONFIG = 'configs/classification/stvit_deit_t_synthetic.py'


def data_options(root):
    return [f'{split}_dataloader.dataset.data_root={root}' for split in ('train', 'val', 'test')]


def test_runner_train_save_reload_evaluate(tmp_path, repo_root, monkeypatch):
    monkeypatch.chdir(repo_root)
    data, work = tmp_path / 'data', tmp_path / 'work'
    make_imagenet_style(str(data), train_per_class=8, val_per_class=4)
    options = data_options(data) + ['train_cfg.max_epochs=2', 'train_cfg.val_interval=1']
    train_tool.main([CONFIG, '--work-dir', str(work), '--cfg-options', *options])

    checkpoint = work / 'epoch_2.pth'
    assert checkpoint.is_file()
    saved = torch.load(checkpoint, map_location='cpu', weights_only=False)
    assert saved['meta']['epoch'] == 2 and 'optimizer' in saved
    scalars = [json.loads(line) for line in
               next(work.glob('*/vis_data/scalars.json')).read_text().splitlines()]
    losses = [s['loss'] for s in scalars if 'loss' in s]
    assert losses and all(torch.isfinite(torch.tensor(losses)))
    val_top1 = [s['accuracy/top1'] for s in scalars if 'accuracy/top1' in s]
    assert len(val_top1) == 2  # validated after each epoch

    dump = tmp_path / 'preds.pkl'
    metrics = test_tool.main([CONFIG, str(checkpoint), '--work-dir', str(work), '--out',
                              str(dump), '--cfg-options', *data_options(data)])
    assert metrics['accuracy/top1'] == val_top1[-1]  # same weights, same images

    # An independently built model loads the checkpoint strictly and predicts the dumped scores.
    cfg = load_config(CONFIG)
    init_default_scope('mmpretrain')
    from mmpretrain.registry import MODELS
    cfg.model.setdefault('data_preprocessor', cfg.data_preprocessor)  # as the Runner does
    model = MODELS.build(cfg.model)
    load_checkpoint(model, str(checkpoint), map_location='cpu', strict=True)
    model.eval()
    predictions = pickle.loads(dump.read_bytes())
    assert len(predictions) == 16
    for pred in predictions[:3]:
        image = torch.from_numpy(mmcv.imread(pred['img_path'])).permute(2, 0, 1)
        with torch.no_grad():
            batch = model.data_preprocessor({'inputs': [image]}, False)
            score = model(batch['inputs'], mode='predict')[0].pred_score
        torch.testing.assert_close(score, pred['pred_score'], rtol=1e-4, atol=1e-5)
    assert Path(predictions[0]['img_path']).is_relative_to(data)
