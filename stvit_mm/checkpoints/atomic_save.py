"""Files saved whole or not at all: a save cut short (killed process, full disk) never leaves
a half-written file under the final name.

mmengine saves checkpoints (and ``dump`` writes files) through the file backend registered
for local paths, whose ``put`` opens the final name and writes into it. :class:`AtomicLocalBackend`
writes ``NAME.part`` instead, flushes it to disk and renames it to ``NAME`` (a rename within
a folder is atomic on POSIX file systems), so ``NAME`` is the old file or the new one whole.
A failed write removes the ``.part`` file and raises :class:`FileSaveError` naming the file.
"""
import os
import os.path as osp
from pathlib import Path
from typing import Union

from mmengine.fileio.backends import LocalBackend, backends, register_backend

PART_SUFFIX = '.part'


class FileSaveError(OSError):
    """A file could not be saved; nothing was written under its name."""


def _fsync_folder(folder: str) -> None:
    """Make the rename itself durable (a node that loses power keeps the new name)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on folders; the rename is still atomic
    finally:
        os.close(fd)


def save_bytes_atomically(data: bytes, path: Union[str, Path]) -> None:
    """Write ``data`` to ``path`` through ``path.part`` and a rename; FileSaveError in one
    line (the file, the system's reason) when it cannot."""
    path = os.fspath(path)
    folder = osp.dirname(osp.abspath(path))
    partial = path + PART_SUFFIX
    try:
        os.makedirs(folder, exist_ok=True)
        with open(partial, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(partial, path)
    except OSError as err:
        try:
            os.remove(partial)
        except OSError:
            pass
        reason = err.strerror or str(err)
        raise FileSaveError(f'cannot save {path} ({reason}); nothing was written under that '
                            'name: free space or fix the folder and run again (training: '
                            '--resume)') from err
    _fsync_folder(folder)


class AtomicLocalBackend(LocalBackend):
    """mmengine's ``LocalBackend`` whose ``put`` saves atomically."""

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        save_bytes_atomically(obj, filepath)


def use_atomic_saving() -> None:
    """Make mmengine's backend for local paths (checkpoints, ``dump``) save atomically,
    through mmengine's own backend registry. Called by our tools, not on import."""
    if backends.get('local') is not AtomicLocalBackend:
        register_backend('local', AtomicLocalBackend, force=True, prefixes='')
