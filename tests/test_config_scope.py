"""`_base_ = 'stvit_mm::<folder>/<config>.py'` from a user's own directory, as `mmdet::` works.

Each check runs in a fresh Python in a temporary directory outside the checkout, with the
package importable as an installed one would be (PYTHONPATH, no current-directory access to
configs/); tests/test_install.py repeats the resolution for editable and wheel installs.
"""
import os
import subprocess
import sys
import textwrap

import pytest
from mmengine.config import Config
from mmengine.config.utils import MODULE2PACKAGE
from mmengine.utils import get_installed_path

from stvit_mm.config_scope import PACKAGE_LOOKUP, SCOPE
from stvit_mm.zoo.metafiles import MIM_DIR, config_files, load_zoo

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_user_script(tmp_path, config_text: str, script: str, timeout: int = 600):
    """Write the user's config and run ``script`` (with ``CONFIG`` = its path) in tmp_path."""
    (tmp_path / 'my_config.py').write_text(textwrap.dedent(config_text))
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, '-c', textwrap.dedent(script)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=timeout)


BUILD = '''
import stvit_mm  # registers the stvit_mm:: scope (as tools/train.py does)
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope
cfg = Config.fromfile('my_config.py')
init_default_scope(cfg.default_scope)
import importlib
for module in cfg.custom_imports.imports:
    importlib.import_module(module)
model = MODELS.build(cfg.model)  # as the Runner builds it
print(cfg.default_scope, type(model).__name__, type(model.backbone).__name__, {probe})
'''


def test_import_registers_the_scope():
    assert MODULE2PACKAGE[SCOPE] == PACKAGE_LOOKUP
    # mmengine finds the package folder, and our configs and metafiles in its .mim
    path = get_installed_path(PACKAGE_LOOKUP)
    assert os.path.samefile(path, os.path.join(ROOT, 'stvit_mm'))
    assert os.path.samefile(os.path.join(path, '.mim'), MIM_DIR)
    assert os.path.isfile(os.path.join(path, '.mim', 'model-index.yml'))


@pytest.mark.parametrize('base, override, probe, expected', [
    ('detection/mask_rcnn_stvit_r_swin_t.py',
     'model = dict(roi_head=dict(bbox_head=dict(num_classes=3), mask_head=dict(num_classes=3)))',
     'model.roi_head.bbox_head.num_classes', 'mmdet MaskRCNN STViTSwin 3'),
    ('classification/stvit_deit_s_in1k.py', 'model = dict(head=dict(num_classes=10))',
     'model.head.num_classes', 'mmpretrain ImageClassifier STViT 10'),
    ('video/video_stvit_r_swin_t_k400.py', 'model = dict(cls_head=dict(num_classes=5))',
     'model.cls_head.num_classes', 'mmaction Recognizer3D STViTVideoSwin 5'),
])
def test_user_config_inherits_and_builds(tmp_path, base, override, probe, expected):
    proc = run_user_script(tmp_path, f"_base_ = 'stvit_mm::{base}'\n{override}\n",
                           BUILD.format(probe=probe))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == expected


def test_scope_needs_import_stvit_mm_first(tmp_path):
    """custom_imports in the user's config is too late: mmengine resolves bases first."""
    proc = run_user_script(
        tmp_path, """\
        _base_ = 'stvit_mm::classification/stvit_deit_s_in1k.py'
        custom_imports = dict(imports=['stvit_mm'], allow_failed_imports=False)
        """, "from mmengine.config import Config; Config.fromfile('my_config.py')")
    assert proc.returncode != 0
    assert 'mmengine does not support to load stvit_mm config' in proc.stderr


def _tagged(value, path=''):
    """Paths of the dicts mmengine tagged with the stvit_mm scope."""
    if isinstance(value, dict):
        found = [path] if value.get('_scope_') == SCOPE else []
        return found + [p for k, v in value.items() for p in _tagged(v, f'{path}.{k}')]
    if isinstance(value, (list, tuple)):
        return [p for i, v in enumerate(value) for p in _tagged(v, f'{path}[{i}]')]
    return []


def test_no_dict_is_left_in_the_scope_without_registries(tmp_path):
    """mmengine tags the dicts of a `stvit_mm::` base with `_scope_='stvit_mm'`, which has
    no registries (mmengine would build them from the root registries and miss mmdet's
    CocoDataset, say): every config gives the dicts it defines fresh its task's scope."""
    config_dir = os.path.join(MIM_DIR, 'configs')
    configs = [os.path.relpath(path, config_dir) for path in config_files(config_dir).values()]
    assert len(configs) >= len(load_zoo()) + 4  # the zoo and the 4 synthetic configs
    for config in sorted(configs):
        user = tmp_path / 'user.py'
        user.write_text(f"_base_ = '{SCOPE}::{config}'\n")
        cfg = Config.fromfile(str(user))
        assert _tagged(cfg.to_dict()) == [], config


def test_short_training_run_from_a_user_directory(tmp_path):
    """tools/train.py trains a user's config inheriting a synthetic one (generated data)."""
    data = tmp_path / 'data'
    proc = run_user_script(
        tmp_path, f"""\
        _base_ = 'stvit_mm::classification/stvit_deit_t_synthetic.py'
        data_root = '{data}'
        train_dataloader = dict(batch_size=8, dataset=dict(data_root=data_root))
        val_dataloader = dict(batch_size=8, dataset=dict(data_root=data_root))
        test_dataloader = val_dataloader
        train_cfg = dict(max_epochs=1, val_interval=1)
        """, f"""\
        import runpy, sys
        from stvit_mm.datasets import make_imagenet_style
        make_imagenet_style('{data}', train_per_class=4, val_per_class=2)
        sys.argv = ['train.py', 'my_config.py', '--work-dir', 'work']
        runpy.run_path({os.path.join(ROOT, 'tools', 'train.py')!r}, run_name='__main__')
        """)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert (tmp_path / 'work' / 'epoch_1.pth').is_file()
    assert 'accuracy/top1' in proc.stdout + proc.stderr
    assert 'Failed to search registry with scope' not in proc.stdout + proc.stderr
