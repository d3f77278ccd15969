"""The OpenMMLab task packages are optional (pyproject.toml extras); code that needs one imports
it through :func:`import_task_module`, so that its absence is one line naming the extra."""
import importlib
from types import ModuleType

# importable name -> (distribution, stvit-mm extra that installs it)
TASK_PACKAGES = {
    'mmdet': ('mmdet', 'det'),
    'mmpretrain': ('mmpretrain', 'cls'),
    'mmaction': ('mmaction2', 'video'),
    'mmseg': ('mmsegmentation', 'seg'),
}


class MissingExtraError(ImportError):
    """A task package (or a library its extra brings) is not installed."""


def install_hint(package: str) -> str:
    """``pip install stvit-mm[det]`` for ``'mmdet'`` (or ``'mmdet.apis'``)."""
    return f'pip install stvit-mm[{TASK_PACKAGES[package.split(".")[0]][1]}]'


def import_task_module(name: str, needed_for: str) -> ModuleType:
    """``importlib.import_module(name)`` for a module of a task package; when it cannot be
    imported, :class:`MissingExtraError` in one line: what needs it and the extra to install.

    ``needed_for`` says what needs it, e.g. ``'the mIoU baseline'``.
    """
    package = name.split('.')[0]
    if package not in TASK_PACKAGES:
        raise ValueError(f'{name!r} is not in a task package ({", ".join(TASK_PACKAGES)})')
    try:
        return importlib.import_module(name)
    except ImportError as err:
        cause = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise MissingExtraError(f'{needed_for} needs {TASK_PACKAGES[package][0]} ({cause}): '
                                f'{install_hint(package)}') from None
