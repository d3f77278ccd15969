"""The short config paths written before the task folders (`configs/<name>.py`) keep working:
each is a one-line inheritance of `configs/<task>/<name>.py`, there is one for every config, and
the project's own command, `tools/dist_train.sh configs/mask_rcnn_stvit_r_swin_t.py N`, runs
as written up to the config's COCO paths."""
import os
import subprocess
import sys

from mmengine.config import Config

from stvit_mm.zoo.metafiles import config_files, short_path_configs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG_DIR = os.path.join(ROOT, 'configs')


def test_every_config_has_its_short_path_and_nothing_else_is_at_the_top():
    in_folders = config_files(CONFIG_DIR)
    short = short_path_configs(CONFIG_DIR)
    assert sorted(short) == sorted(in_folders)
    for name, path in short.items():
        task = os.path.basename(os.path.dirname(in_folders[name]))
        with open(path, encoding='utf-8') as f:
            lines = [line for line in f.read().splitlines() if not line.startswith('#')]
        assert lines == [f"_base_ = './{task}/{name}'"], path


def test_short_path_is_the_same_config():
    short = Config.fromfile(os.path.join(CONFIG_DIR, 'mask_rcnn_stvit_r_swin_t.py'))
    full = Config.fromfile(os.path.join(CONFIG_DIR, 'detection', 'mask_rcnn_stvit_r_swin_t.py'))
    assert short.to_dict() == full.to_dict()


def test_mission_command_runs_as_written(tmp_path):
    """Two gloo processes, exactly the documented command (plus a work dir): the config is
    found, loaded and checked, and without COCO on this machine the job stops at the config's
    data root, named in one line by each rank."""
    env = dict(os.environ, PYTHON=sys.executable)
    proc = subprocess.run(
        ['bash', 'tools/dist_train.sh', 'configs/mask_rcnn_stvit_r_swin_t.py', '2',
         '--work-dir', str(tmp_path / 'work')],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-3000:]
    errors = [line for line in out.splitlines() if line.startswith('error:')]
    assert errors == ['error: dataset path does not exist (train: data_root data/coco/; val: '
                      'data_root data/coco/); set it with --cfg-options or in the config'] * 2, out
