"""tools/slurm_train.sh and slurm_test.sh (OpenMMLab's interface) and the 'slurm' launcher on
CPU. With Debian's Slurm and MUNGE installed and root, a one-node cluster is started inside the
test and two srun tasks train and test the synthetic Mask R-CNN; otherwise that test skips."""
import os
import shutil
import socket
import subprocess
import sys
import time

import pytest
import torch.distributed as dist
from mmengine.config import Config

from stvit_mm.datasets.synthetic_coco import make_coco_instance
from stvit_mm.utils.dist import LaunchError, prepare_launcher

CONFIG = 'configs/detection/mask_rcnn_stvit_r_swin_t_synthetic.py'
DAEMONS = {name: shutil.which(name) or f'/usr/sbin/{name}'
           for name in ('munged', 'slurmctld', 'slurmd')}
HAVE_SLURM = (all(os.access(path, os.X_OK) for path in DAEMONS.values())
              and shutil.which('srun') is not None and os.geteuid() == 0)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


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
    monkeypatch.setenv('MASTER_PORT', str(_free_port()))
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
    root = tmp_path / 'slurm'
    for sub in ('munge', 'state', 'spool', 'log'):
        (root / sub).mkdir(parents=True)
    os.chmod(root / 'munge', 0o700)
    key = root / 'munge' / 'munge.key'
    key.write_bytes(os.urandom(1024))
    os.chmod(key, 0o400)
    munge_socket = root / 'munge' / 'munge.socket'
    host = socket.gethostname().split('.')[0]
    conf = root / 'slurm.conf'
    conf.write_text('\n'.join([
        'ClusterName=stvitmmtest', f'SlurmctldHost={host}(127.0.0.1)', 'SlurmUser=root',
        'SlurmdUser=root', 'AuthType=auth/munge', f'AuthInfo=socket={munge_socket}',
        f'StateSaveLocation={root}/state', f'SlurmdSpoolDir={root}/spool',
        f'SlurmctldPidFile={root}/slurmctld.pid', f'SlurmdPidFile={root}/slurmd.pid',
        f'SlurmctldLogFile={root}/log/slurmctld.log', f'SlurmdLogFile={root}/log/slurmd.log',
        f'SlurmctldPort={_free_port()}', f'SlurmdPort={_free_port()}',
        'ProctrackType=proctrack/linuxproc', 'TaskPlugin=task/none', 'MpiDefault=none',
        'SchedulerType=sched/builtin', 'SelectType=select/cons_tres',
        'SelectTypeParameters=CR_CPU', 'ReturnToService=2',
        f'NodeName={host} NodeAddr=127.0.0.1 CPUs={os.cpu_count()} State=UNKNOWN',
        f'PartitionName=cpu Nodes={host} Default=YES MaxTime=INFINITE State=UP '
        'OverSubscribe=YES', '']))
    env = dict(os.environ, SLURM_CONF=str(conf))
    subprocess.run([DAEMONS['munged'], '--force', f'--key-file={key}',
                    f'--socket={munge_socket}', f'--pid-file={root}/munge/munged.pid',
                    f'--log-file={root}/log/munged.log', f'--seed-file={root}/munge/seed'],
                   check=True, timeout=60)
    subprocess.run([DAEMONS['slurmctld'], '-f', str(conf)], check=True, env=env, timeout=60)
    subprocess.run([DAEMONS['slurmd'], '-f', str(conf)], check=True, env=env, timeout=60)
    try:
        deadline = time.monotonic() + 60
        while 'idle' not in subprocess.run(['sinfo', '-h', '-o', '%t'], env=env, text=True,
                                           capture_output=True).stdout:
            assert time.monotonic() < deadline, (root / 'log' / 'slurmctld.log').read_text()
            time.sleep(1)
        yield env
    finally:
        subprocess.run(['scontrol', 'shutdown'], env=env, capture_output=True, timeout=60)
        for pid_file in ('slurmd.pid', 'slurmctld.pid', 'munge/munged.pid'):
            try:
                os.kill(int((root / pid_file).read_text()), 15)
            except (OSError, ValueError):
                pass


@pytest.mark.skipif(not HAVE_SLURM, reason="needs root and Debian's slurmd, slurmctld, "
                    'slurm-client and munge')
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
               MASTER_PORT=str(_free_port()), PYTHON=sys.executable)
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
