"""tools/dist_train.sh and dist_test.sh with 2 CPU processes (gloo): Mask R-CNN STViT-R-Swin-T
trains, evaluates during training, then the checkpoint is tested with CocoMetric."""
import json
import os
import subprocess
import sys

import torch

from stvit_mm.datasets.synthetic_coco import make_coco_instance

CONFIG = 'configs/detection/mask_rcnn_stvit_r_swin_t_synthetic.py'


def test_dist_train_then_dist_test_two_cpu_processes(tmp_path, repo_root):
    data = str(tmp_path / 'coco') + '/'
    make_coco_instance(data, num_train=8, num_val=4)
    work = tmp_path / 'work'
    options = [f'{s}_dataloader.dataset.data_root={data}' for s in ('train', 'val', 'test')]
    options += [f'{s}_evaluator.ann_file={data}annotations/instances_val.json'
                for s in ('val', 'test')]
    options += ['train_cfg.max_iters=3', 'train_cfg.val_interval=3',
                'default_hooks.checkpoint.interval=3', 'default_hooks.logger.interval=1',
                'param_scheduler.0.end=2', 'param_scheduler.1.T_max=3',
                'param_scheduler.1.end=3', 'model.test_cfg.rcnn.score_thr=0.0']
    env = dict(os.environ, PORT='29611', PYTHON=sys.executable)
    proc = subprocess.run(['bash', 'tools/dist_train.sh', CONFIG, '2', '--work-dir', str(work),
                           '--cfg-options', *options,
                           'default_hooks.checkpoint.save_best=coco/bbox_mAP'],
                          cwd=repo_root, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    log = proc.stdout + proc.stderr
    # mmengine's environment report: 2 processes, wrapped in DDP without device ids (CPU)
    assert 'Distributed training: True' in log and 'GPU number: 2' in log
    assert "model_wrapper_cfg = dict(device_ids=None, type='MMDistributedDataParallel')" in log
    # rank 0 alone saves; RandomStateHook gathered both ranks' generator states beforehand,
    # for the periodic checkpoint and for the best one (saved after validation)
    best = list(work.glob('best_coco_bbox_mAP_iter_3.pth'))
    assert len(best) == 1 and (work / 'iter_3.pth').is_file()
    for path in (work / 'iter_3.pth', best[0]):
        checkpoint = torch.load(path, map_location='cpu', weights_only=False)
        assert len(checkpoint['random_state']) == 2, path
    scalars = [json.loads(line) for line in
               next(work.glob('*/vis_data/scalars.json')).read_text().splitlines()]
    losses = [s['loss'] for s in scalars if 'loss' in s]
    assert len(losses) == 3 and all(loss == loss for loss in losses)  # 3 iterations, no NaN
    metrics = [s for s in scalars if 'coco/bbox_mAP' in s]
    assert metrics and 'coco/segm_mAP' in metrics[-1]

    # the same 2-process launch for testing: both ranks' results gathered into one COCO eval
    test_work = tmp_path / 'test'
    proc = subprocess.run(['bash', 'tools/dist_test.sh', CONFIG, str(work / 'iter_3.pth'), '2',
                           '--work-dir', str(test_work), '--cfg-options', *options],
                          cwd=repo_root, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    log = proc.stdout + proc.stderr
    assert 'Distributed training: True' in log and 'GPU number: 2' in log
    assert 'coco/bbox_mAP' in log and 'coco/segm_mAP' in log
