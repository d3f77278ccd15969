"""An unreadable image stops training with one error naming the file and the fix.

mmcv's ``LoadImageFromFile`` (used by mmdet, mmpretrain and mmseg pipelines) reports
a missing file as a bare ``FileNotFoundError``, an empty file as an OpenCV
assertion (``!buf.empty()``) that does not name the file, and an undecodable
one as ``AssertionError: failed to load image: PATH``, with no fix; and its
``ignore_empty=True`` skips the first two but not the third.

:class:`LoadImageFromFileNamingFailures` is that transform with one clear error. It is
registered in mmengine's root ``TRANSFORMS`` (the registry mmcv's transforms live in),
so it builds under every task package's scope; mmcv itself is left as it is.
:func:`name_unreadable_images` puts it in place of ``LoadImageFromFile`` in a loaded
config's dataloaders (tools/train.py and tools/test.py do); a config may also name it.
"""
from typing import Optional, Sequence

from mmcv.transforms import LoadImageFromFile
from mmengine.registry import TRANSFORMS

from ..utils.config import add_custom_import, typed_dicts

FIX = ('the file is missing, empty or not a decodable image: restore or regenerate it, or '
       'remove its entry from the annotation file (to skip unreadable images in training '
       'instead, set ignore_empty=True in LoadImageFromFile)')

# This module, for a config's ``custom_imports`` (registers the transform where the config
# is loaded again: a dumped config, dataloader workers that import afresh).
MODULE = __name__


class ImageReadError(OSError):
    """An image file of the dataset cannot be read or decoded."""


@TRANSFORMS.register_module()
class LoadImageFromFileNamingFailures(LoadImageFromFile):
    """mmcv's ``LoadImageFromFile``, same options; a file that cannot be read or decoded
    raises :class:`ImageReadError` naming the file, the cause and :data:`FIX`, or, with
    ``ignore_empty=True``, returns None (mmengine's datasets then draw another image in
    training) whatever the failure."""

    def transform(self, results: dict) -> Optional[dict]:
        try:
            return super().transform(results)
        except ImageReadError:
            raise
        except Exception as err:
            if self.ignore_empty:
                return None
            lines = str(err).strip().splitlines()
            cause = f'{type(err).__name__}: {lines[-1].strip()}' if lines else type(err).__name__
            raise ImageReadError(f"cannot read image {results.get('img_path')} ({cause}); "
                                 f'{FIX}') from err


def name_unreadable_images(cfg, splits: Sequence[str] = ('train', 'val', 'test')) -> int:
    """Use :class:`LoadImageFromFileNamingFailures` in the ``{split}_dataloader`` pipelines
    of ``cfg`` (an mmengine ``Config``, changed in place); returns how many transforms it
    replaced. When it replaced any, ``cfg.custom_imports`` also imports this module, so the
    config dumped into the work dir loads on its own.

    Only the dataloaders of the run are changed: the codebases' inferencers look for
    ``LoadImageFromFile`` by name in ``test_dataloader``, so tools/train.py leaves that one.
    """
    replaced = 0
    for split in splits:
        for _, node in typed_dicts(cfg.get(f'{split}_dataloader'), split):
            if node['type'].rsplit('.', 1)[-1] == 'LoadImageFromFile':
                node['type'] = LoadImageFromFileNamingFailures.__name__
                replaced += 1
    if replaced:
        add_custom_import(cfg, MODULE)
    return replaced
