"""Which parts of the stvit-mm install already work, one `name ok|missing` per line.

tools/install_check.py (run by tools/install.sh) loads this file by its path and calls
:func:`report`: a complete install is verified in one Python start (seconds) instead of one
start per component. Only the standard library at import: it runs before anything is
installed, and without importing the ``stvit_mm`` package, whose installed copy it checks.
"""
import os
import sys

# the checkout: this file is ROOT/stvit_mm/utils/install_check.py
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MMENGINE = MMCV = None  # the versions to expect, set by report()


def check(name, fn):
    try:
        ok = fn() is not False
    except Exception:  # noqa: BLE001 - any failure means "install this step"
        ok = False
    print(f'{name} {"ok" if ok else "missing"}', flush=True)
    return ok


def torch_pair():
    import torch
    from torchvision.ops import nms  # fails when torchvision does not match torch
    nms(torch.zeros(1, 4), torch.zeros(1), 0.5)
    return torch.__version__


def mmcv_ops():
    import mmcv
    import mmcv.ops  # noqa: F401
    import mmengine
    return mmcv.__version__ == MMCV and mmengine.__version__ == MMENGINE


def stack():
    """Every requirements.txt line is installed at a version it admits (so a requirement
    added later is installed on an existing environment too), and exactly one OpenCV."""
    from importlib import metadata
    unmet = unmet_requirements(os.path.join(ROOT, 'requirements.txt'))
    if unmet:
        print(f'unmet requirements: {", ".join(unmet)}', file=sys.stderr)
        return False
    import cv2  # noqa: F401  (they import)
    import decord  # noqa: F401  (they import)
    import mmaction  # noqa: F401  (they import)
    import mmdet  # noqa: F401  (they import)
    import mmpretrain  # noqa: F401  (they import)
    import mmseg.models  # noqa: F401  (fails without ftfy/regex, which mmseg does not pull)
    opencv = [d for d in ('opencv-python', 'opencv-python-headless', 'opencv-contrib-python')
              if _has_dist(metadata, d)]
    return len(opencv) == 1


def unmet_requirements(path):
    """The requirement lines of ``path`` that the environment does not satisfy."""
    from importlib import metadata

    from packaging.requirements import Requirement
    unmet = []
    with open(path, encoding='utf-8') as f:
        for line in f:
            line = line.split('#', 1)[0].strip()
            if not line or line.startswith('-'):
                continue
            req = Requirement(line)
            if req.marker is not None and not req.marker.evaluate():
                continue
            try:
                version = metadata.version(req.name)
            except metadata.PackageNotFoundError:
                unmet.append(f'{req} (not installed)')
                continue
            if not req.specifier.contains(version, prereleases=True):
                unmet.append(f'{req} (have {version})')
    return unmet


def _has_dist(metadata, name):
    try:
        metadata.version(name)
        return True
    except metadata.PackageNotFoundError:
        return False


def setuptools_pin():
    import pkg_resources  # noqa: F401  (mmengine needs it for mmdet:: config paths)
    import setuptools
    major = int(setuptools.__version__.split('.')[0])
    return 77 <= major < 82


def package():
    import stvit_mm
    import stvit_mm.models  # noqa: F401  (compat shims before the mm* imports)
    # isort: split
    import mmaction.models  # noqa: F401
    import mmdet.models  # noqa: F401
    import mmpretrain.models  # noqa: F401
    import mmseg.models  # noqa: F401
    return os.path.dirname(os.path.dirname(stvit_mm.__file__)) == ROOT


def report(mmengine_version, mmcv_version):
    """Print ``torch|mmcv|stack|setuptools|package ok|missing``, one line each."""
    global MMENGINE, MMCV
    MMENGINE, MMCV = mmengine_version, mmcv_version
    check('torch', torch_pair)
    check('mmcv', mmcv_ops)
    check('stack', stack)
    check('setuptools', setuptools_pin)
    check('package', package)
