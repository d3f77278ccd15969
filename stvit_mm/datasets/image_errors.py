"""An unreadable image stops training with one error naming the file and the fix.

mmcv's ``LoadImageFromFile`` (used by mmdet and mmpretrain pipelines) reports
a missing file as a bare ``FileNotFoundError``, an empty file as an OpenCV
assertion (``!buf.empty()``) that does not name the file, and an undecodable
one as ``AssertionError: failed to load image: PATH``, with no fix; and its
``ignore_empty=True`` skips the first two but not the third.
"""
import functools

FIX = ('the file is missing, empty or not a decodable image: restore or regenerate it, or '
       'remove its entry from the annotation file (to skip unreadable images in training '
       'instead, set ignore_empty=True in LoadImageFromFile)')


class ImageReadError(OSError):
    """An image file of the dataset cannot be read or decoded."""


def name_unreadable_images() -> None:
    """Wrap ``LoadImageFromFile.transform`` (idempotent); tools/train.py and test.py call it.

    Any failure to read or decode becomes :class:`ImageReadError` naming the
    file, the cause and :data:`FIX`; with ``ignore_empty=True`` every such
    failure returns None, which mmengine's datasets answer in training by
    drawing another image.
    """
    from mmcv.transforms import LoadImageFromFile

    original = LoadImageFromFile.transform
    if getattr(original, 'names_unreadable_images', False):
        return

    @functools.wraps(original)
    def transform(self, results: dict):
        try:
            return original(self, results)
        except ImageReadError:
            raise
        except Exception as err:
            if self.ignore_empty:
                return None
            lines = str(err).strip().splitlines()
            cause = f'{type(err).__name__}: {lines[-1].strip()}' if lines else type(err).__name__
            raise ImageReadError(f"cannot read image {results.get('img_path')} ({cause}); "
                                 f'{FIX}') from err

    transform.names_unreadable_images = True
    LoadImageFromFile.transform = transform
