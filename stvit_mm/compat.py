"""Shims for the pinned OpenMMLab stack. Imported first by ``stvit_mm``.

Each shim is idempotent, cheap, and fixes one upstream problem named in its
docstring; nothing here changes numerical behaviour.
"""
import importlib.util
import os
import sys
import types
import warnings


def stub_mmaction_drn() -> None:
    """mmaction2 1.2.0's wheel lacks ``models/localizers/drn`` (upstream #2714),
    so ``import mmaction.models`` fails. Register a stub DRN that raises on use."""
    try:  # locates mmaction without importing it; without mmaction2 there is nothing to fix
        spec = importlib.util.find_spec('mmaction')
    except (ImportError, ValueError):
        return
    if spec is None or spec.origin is None:
        return
    drn_dir = os.path.join(os.path.dirname(spec.origin), 'models', 'localizers', 'drn')
    if os.path.isdir(drn_dir) or 'mmaction.models.localizers.drn' in sys.modules:
        return

    class DRN:  # noqa: D401 - placeholder with the upstream name
        """Unavailable: mmaction2 1.2.0's wheel ships without DRN."""

        def __init__(self, *args, **kwargs):
            raise ImportError('DRN is missing from the mmaction2 1.2.0 wheel (upstream issue '
                              '#2714); install mmaction2 from source to use it')

    package = types.ModuleType('mmaction.models.localizers.drn')
    package.__path__ = []
    module = types.ModuleType('mmaction.models.localizers.drn.drn')
    module.DRN = DRN
    package.drn = module
    sys.modules[package.__name__] = package
    sys.modules[module.__name__] = module


def warn_duplicate_opencv() -> None:
    """mmcv pulls ``opencv-python`` and mmaction2 ``opencv-contrib-python``; pip
    installs both into one ``cv2`` folder, and uninstalling either breaks it."""
    from importlib import metadata
    names = []
    for name in ('opencv-python', 'opencv-python-headless', 'opencv-contrib-python'):
        try:
            names.append(f'{name}=={metadata.version(name)}')
        except metadata.PackageNotFoundError:
            pass
    if len(names) > 1:
        warnings.warn(f'several OpenCV distributions share one cv2 folder ({", ".join(names)}); '
                      'run `make install` (it keeps only opencv-contrib-python)', stacklevel=2)


def apply_all() -> None:
    stub_mmaction_drn()
    warn_duplicate_opencv()


apply_all()
