"""`pip install stvit-mm` brings no OpenMMLab task package (they are extras), so the core
must work without them, and importing it must change nothing in other libraries.

Each check runs in a fresh interpreter where a ``sys.meta_path`` finder, installed before
anything else, refuses to import mmdet, mmpretrain, mmaction and mmseg, as on a machine
without them.
"""
import os
import subprocess
import sys
import textwrap

BLOCK_TASK_PACKAGES = '''
import sys

BLOCKED = ('mmdet', 'mmpretrain', 'mmaction', 'mmseg')


class BlockTaskPackages:
    """Import finder that refuses the task packages (the first finder asked)."""

    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in BLOCKED:
            raise ImportError(f'{name} is blocked in this test', name=name)
        return None


sys.meta_path.insert(0, BlockTaskPackages())
'''


def run_without_task_packages(repo_root, code, block=True):
    """Run ``code`` after :data:`BLOCK_TASK_PACKAGES` (unless not ``block``) in a new
    interpreter; its stdout."""
    script = (BLOCK_TASK_PACKAGES if block else '') + textwrap.dedent(code)
    env = dict(os.environ, PYTHONPATH=repo_root)
    proc = subprocess.run([sys.executable, '-c', script], cwd=repo_root, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    return proc.stdout


def test_models_build_and_run_without_task_packages(repo_root):
    out = run_without_task_packages(repo_root, '''
        import torch
        from mmengine.registry import MODELS

        import stvit_mm.models
        from stvit_mm.models import STViTVideoSwin

        swin = dict(embed_dims=16, depths=(2, 2, 6, 2), num_heads=(1, 2, 4, 8))
        cases = [
            (dict(type='STViT', arch=dict(embed_dims=32, num_heads=2)), (1, 3, 32, 32)),
            (dict(type='STViTSwin', arch=swin), (1, 3, 64, 64)),
            (dict(type='STViTSimplePyramid', in_channels=32, out_channels=8), None),
        ]
        torch.manual_seed(0)
        for cfg, shape in cases:
            model = MODELS.build(cfg).eval()
            inputs = torch.randn(shape) if shape else (torch.randn(1, 32, 4, 4), )
            with torch.no_grad():
                outs = model(inputs)
            print(cfg['type'], [tuple(o.shape) for o in outs])
        video = STViTVideoSwin(swin).eval()  # directly, not only through the registry
        with torch.no_grad():
            outs = video(torch.randn(1, 3, 4, 64, 64))
        outs = outs if isinstance(outs, tuple) else (outs, )
        print('STViTVideoSwin', [tuple(o.shape) for o in outs])
        print(sorted(name for name in sys.modules if name.split('.')[0] in BLOCKED))
    ''')
    lines = out.splitlines()
    assert lines[0] == 'STViT [(1, 32)]'
    assert lines[1].startswith('STViTSwin [(1, 16, 16, 16), (1, 32, 8, 8)')
    assert lines[2] == ('STViTSimplePyramid [(1, 8, 16, 16), (1, 8, 8, 8), (1, 8, 4, 4), '
                        '(1, 8, 2, 2), (1, 8, 1, 1)]')
    assert lines[3].startswith('STViTVideoSwin [(1, ') and len(lines[3]) > 20
    assert lines[4] == '[]'  # no task package module slipped in


def test_missing_task_package_names_the_extra(repo_root, tmp_path):
    """The ADE20K-style generator is core, its mIoU baseline needs mmseg: one line with the
    extra to install."""
    out = run_without_task_packages(repo_root, f'''
        from stvit_mm.datasets import majority_class_baseline, make_ade20k_style
        made = make_ade20k_style({str(tmp_path)!r}, num_train=1, num_val=1)
        try:
            majority_class_baseline({str(tmp_path)!r}, len(made['classes']))
        except ImportError as err:
            print(type(err).__name__, '|', err)
    ''')
    assert out.strip() == ('MissingExtraError | majority_class_baseline (mmseg IoUMetric) needs '
                           'mmsegmentation (mmseg is blocked in this test): '
                           'pip install stvit-mm[seg]')


def test_import_changes_nothing_in_other_libraries(repo_root):
    """Importing the package (models, datasets, apis, utils) only registers names: mmengine's
    checkpoint loader of local files, mmcv's LoadImageFromFile and the environment are as
    they were. The safe loader comes with what asks for it: `stvit_mm.engine`, which our
    configs import, and building one of our backbones."""
    out = run_without_task_packages(repo_root, '''
        import os
        import mmcv.transforms  # (its cv2 sets Qt and library paths: not ours to judge)
        from mmengine.runner import checkpoint
        environment = dict(os.environ)
        transform = vars(mmcv.transforms.LoadImageFromFile)['transform']

        import stvit_mm, stvit_mm.models, stvit_mm.datasets, stvit_mm.datasets.image_errors
        import stvit_mm.apis, stvit_mm.utils, stvit_mm.checkpoints.safe_loading

        loader = checkpoint.CheckpointLoader._schemes['']
        print('loader', loader is checkpoint.load_from_local)
        print('transform', vars(mmcv.transforms.LoadImageFromFile)['transform'] is transform)
        print('environment', dict(os.environ) == environment)
        import stvit_mm.engine
        print('after engine', checkpoint.CheckpointLoader._schemes[''].__module__)
    ''')
    assert out.splitlines() == ['loader True', 'transform True', 'environment True',
                                'after engine stvit_mm.checkpoints.safe_loading']


def test_installed_task_packages_are_not_imported_by_the_core(repo_root):
    """With every task package installed, importing the core imports none of them (the
    mmaction2 DRN shim of stvit_mm.compat only locates mmaction; it puts a stub for the
    module missing from mmaction2 1.2.0's wheel into sys.modules)."""
    out = run_without_task_packages(repo_root, '''
        import sys
        import stvit_mm.models, stvit_mm.datasets, stvit_mm.apis
        print(sorted(name for name in sys.modules
                     if name in ('mmdet', 'mmpretrain', 'mmaction', 'mmseg', 'mmaction.models')))
    ''', block=False)
    assert out.strip() == '[]'
