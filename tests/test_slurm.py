"""tools/slurm_train.sh and slurm_test.sh (OpenMMLab's interface) and the 'slurm' launcher on
CPU. With Debian's Slurm and MUNGE installed and root, a one-node cluster is started inside the
test and two srun tasks train and test the synthetic Mask R-CNN; otherwise that test skips."""
import os
import subprocess
import sys

import pytest
import torch.distributed as dist
from mmengine.config import Config

import slurm_cluster
from slurm_cluster import HAVE_SLURM, WHY_NOT, free_port
from stvit_mm.datasets.synthetic_coco import make_coco_instance
from stvit_mm.utils.dist import LaunchError, prepare_launcher

CONFIG = 'configs/detection/mask_rcnn_stvit_r_swin_t_synthetic.py'


@pytest.mark.parametrize('script,argv', [('tools/slurm_train.sh', ['p', 'job', CONFIG]),
                                         ('tools/slurm_test.sh', ['p', 'job', CONFIG])])
def test_too_few_arguments_print_usage(repo_root, script, argv):
    proc = subprocess.run(['bash', script, *argv], cwd=repo_root, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2 and proc.stderr.startswith('usage: ')


def test_slurm_launcher_on_cpu_uses_the_srun_variables(monkeypatch):
    for var in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK'):
        monkeypatch.delenv(var, raising=False)  # restored after the test
    monkeypatch.setenv('SLURM_PROCID', '0')
    monkeypatch.setenv('SLURM_NTASKS', '1')
    monkeypatch.setenv('SLURM_LOCALID', '0')
    monkeypatch.setenv('SLURM_NODELIST', 'node[1-4]')
    monkeypatch.setenv('MASTER_ADDR', '127.0.0.1')  # else scontrol resolves the node list
    monkeypatch.setenv('MASTER_PORT', str(free_port()))
    cfg = Config(dict())
    assert prepare_launcher(cfg, 'slurm')
    try:
        assert dist.get_backend() == 'gloo' and dist.get_world_size() == 1
        assert os.environ['RANK'] == '0' and os.environ['WORLD_SIZE'] == '1'
        assert cfg.launcher == 'slurm' and cfg.model_wrapper_cfg.device_ids is None
    finally:
        dist.destroy_process_group()


def test_slurm_launcher_outside_srun_names_the_missing_variable(monkeypatch):
    monkeypatch.delenv('SLURM_PROCID', raising=False)
    with pytest.raises(LaunchError, match=r'\$SLURM_PROCID.*srun'):
        prepare_launcher(Config(dict()), 'slurm')


@pytest.fixture
def one_node_cluster(tmp_path):
    """MUNGE and Slurm daemons on this machine, their files under tmp_path; SLURM_CONF."""
    with slurm_cluster.one_node_cluster(tmp_path / 'slurm') as env:
        yield env


@pytest.mark.skipif(not HAVE_SLURM, reason=WHY_NOT)
def test_two_srun_tasks_train_and_test_on_cpu(one_node_cluster, tmp_path, repo_root):
    data = str(tmp_path / 'coco') + '/'
    make_coco_instance(data, num_train=4, num_val=2)
    options = [f'{s}_dataloader.dataset.data_root={data}' for s in ('train', 'val', 'test')]
    options += [f'{s}_evaluator.ann_file={data}annotations/instances_val.json'
                for s in ('val', 'test')]
    options += ['train_cfg.max_iters=2', 'train_cfg.val_interval=2',
                'default_hooks.checkpoint.interval=2', 'param_scheduler.0.end=1',
                'param_scheduler.1.T_max=2', 'param_scheduler.1.end=2',
                'model.test_cfg.rcnn.score_thr=0.0']
    env = dict(one_node_cluster, GPUS='2', GPUS_PER_NODE='2', CPUS_PER_TASK='1', GRES='',
               MASTER_PORT=str(free_port()), PYTHON=sys.executable)
    work = tmp_path / 'work'
    proc = subprocess.run(['bash', 'tools/slurm_train.sh', 'cpu', 'stvit-train', CONFIG,
                           str(work), '--cfg-options', *options], cwd=repo_root, env=env,
                          capture_output=True, text=True, timeout=900)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    assert 'Distributed training: True' in log and "launcher = 'slurm'" in log
    assert 'GPU number: 2' in log and (work / 'iter_2.pth').is_file()

    proc = subprocess.run(['bash', 'tools/slurm_test.sh', 'cpu', 'stvit-test', CONFIG,
                           str(work / 'iter_2.pth'), '--work-dir', str(tmp_path / 'test'),
                           '--cfg-options', *options], cwd=repo_root, env=env,
                          capture_output=True, text=True, timeout=900)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    assert 'Distributed training: True' in log and 'coco/bbox_mAP' in log
