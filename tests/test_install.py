"""The mmcv source build of tools/install.sh (used where no prebuilt wheel is found).

Slow (20-25 minutes on 2 cores): run with --runslow. The wheel is installed into a
throw-away virtual environment that sees this environment's torch, so the check is that
the compiled ops import and compute, against the torch they were built with.
"""
import os
import subprocess
import sys

import pytest

MMCV_VERSION = '2.1.0'

CHECK_OPS = '''
import mmcv, torch
from mmcv.ops import RoIAlign, nms
assert mmcv.__file__.startswith({venv!r}), mmcv.__file__  # the wheel just built
boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 11., 11.], [50., 50., 60., 60.]])
kept = nms(boxes, torch.tensor([0.9, 0.8, 0.7]), 0.5)[1]
assert kept.tolist() == [0, 2], kept
feature = torch.arange(16.).reshape(1, 1, 4, 4)
pooled = RoIAlign((1, 1), 1.0, sampling_ratio=1, aligned=False)(
    feature, torch.tensor([[0., 1., 1., 2., 2.]]))
assert abs(pooled.item() - 7.5) < 1e-5, pooled  # bilinear sample at (1.5, 1.5)
print('mmcv', mmcv.__version__, 'ops ok')
'''


@pytest.mark.slow
def test_mmcv_source_build_gives_working_ops(tmp_path, repo_root):
    wheels = tmp_path / 'wheels'
    env = dict(os.environ, PYTHON=sys.executable, PIP_FIND_LINKS='')
    proc = subprocess.run(['bash', 'tools/build_mmcv_wheel.sh', MMCV_VERSION, str(wheels),
                           str(tmp_path / 'build')], cwd=repo_root, env=env,
                          capture_output=True, text=True, timeout=3600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    wheel, = wheels.glob(f'mmcv-{MMCV_VERSION}-*.whl')

    venv = tmp_path / 'venv'
    subprocess.run([sys.executable, '-m', 'venv', '--system-site-packages', str(venv)],
                   check=True)
    python = str(venv / 'bin' / 'python')
    subprocess.run([python, '-m', 'pip', 'install', '-q', '--no-deps', '--ignore-installed',
                    str(wheel)], check=True)
    proc = subprocess.run([python, '-c', CHECK_OPS.format(venv=str(venv))],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f'mmcv {MMCV_VERSION} ops ok' in proc.stdout
