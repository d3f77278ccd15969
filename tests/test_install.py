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
@pytest.mark.long  # a 20-minute compile on 2 cores: CI uses the prebuilt wheel instead
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


SCOPE_CHECK = '''
import os, sys
from importlib import metadata
import stvit_mm  # registers the stvit_mm:: config scope
from mmengine.config import Config
assert os.path.realpath(stvit_mm.__file__).startswith({package_root!r}), stvit_mm.__file__
# one version: pyproject.toml reads stvit_mm.__version__
assert metadata.version('stvit-mm') == stvit_mm.__version__, metadata.version('stvit-mm')
assert metadata.metadata('stvit-mm')['License-Expression'] == 'Apache-2.0'
mim = os.path.join(os.path.dirname(stvit_mm.__file__), '.mim')
for name in ('model-index.yml', 'configs/detection/metafile.yml',
             'configs/mask_rcnn_stvit_r_swin_t.py',
             'configs/detection/mask_rcnn_stvit_r_swin_t.py'):
    assert os.path.isfile(os.path.join(mim, name)), name
cfg = Config.fromfile('my_config.py')
assert cfg.model.backbone.type == 'STViTSwin' and cfg.default_scope == 'mmdet', cfg.model
assert cfg.model.roi_head.bbox_head.num_classes == 3
print('scope ok')
'''


@pytest.mark.slow
@pytest.mark.parametrize('editable', [True, False], ids=['editable', 'wheel'])
def test_stvit_mm_configs_resolve_from_an_installed_package(tmp_path, repo_root, editable):
    """`_base_ = 'stvit_mm::...'` from a user's directory after `pip install [-e] .`.

    An editable install (PEP 660, as `make install`) leaves pkg_resources placing the package
    in site-packages, where it is not; a wheel copies stvit_mm/.mim's configs. The throw-away
    environment sees this one's packages through a .pth file.
    """
    import shutil
    import site
    source = tmp_path / 'src'
    shutil.copytree(repo_root, source, symlinks=True, ignore=shutil.ignore_patterns(
        '.git', 'data', 'work_dirs', 'build', '.build', '*.egg-info', '__pycache__'))
    venv = tmp_path / 'venv'
    subprocess.run([sys.executable, '-m', 'venv', str(venv)], check=True)
    venv_site, = (venv / 'lib').glob('python*/site-packages')
    (venv_site / 'zz_outer_environment.pth').write_text('\n'.join(site.getsitepackages()) + '\n')
    python = str(venv / 'bin' / 'python')
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    # The build uses this environment's setuptools (>= 77, as `make install` pins it before it
    # installs the package): a venv of Python < 3.12 brings an older one of its own.
    subprocess.run([python, '-m', 'pip', 'uninstall', '-q', '-y', 'setuptools'], env=env,
                   check=True)
    proc = subprocess.run([python, '-m', 'pip', 'install', '-q', '--no-deps',
                           '--no-build-isolation', *(['-e'] if editable else []), str(source)],
                          env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    user = tmp_path / 'user'
    user.mkdir()
    (user / 'my_config.py').write_text(
        "_base_ = 'stvit_mm::detection/mask_rcnn_stvit_r_swin_t.py'\n"
        'model = dict(roi_head=dict(bbox_head=dict(num_classes=3)))\n')
    package_root = str(source if editable else venv_site)
    proc = subprocess.run([python, '-c', SCOPE_CHECK.format(package_root=package_root)],
                          cwd=user, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert 'scope ok' in proc.stdout
