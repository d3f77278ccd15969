"""Is a checkpoint file whole? Truncated or corrupted files are named in one line.

``torch.load`` reports a truncated zip-format file as an internal miniz error without the
file's name, and loads a file whose tensor bytes were damaged without any error (it does
not check the archive's CRCs). :func:`checkpoint_problem` checks the archive (end record,
member CRCs) before a load; :func:`latest_checkpoint` is the file ``--resume`` picks,
checked the same way.
"""
import os.path as osp
import zipfile
from typing import Optional

ZIP_MAGIC = b'PK\x03\x04'
FIX = ('resume from an earlier checkpoint (--resume PATH) or save / download this one again')


class CheckpointReadError(ValueError):
    """A checkpoint file is empty, truncated or corrupted."""


def checkpoint_problem(path: str) -> Optional[str]:
    """What is wrong with the checkpoint file at ``path`` (an existing file), or None.

    Zip-format files (``torch.save``'s default) are checked whole: end record and every
    member's CRC; other formats (older ``torch.save``, release files) are left to the
    loader, whose errors :func:`load_error` recognises.
    """
    if osp.getsize(path) == 0:
        return 'empty (0 bytes; a save cut short?)'
    with open(path, 'rb') as f:
        magic = f.read(len(ZIP_MAGIC))
    if magic != ZIP_MAGIC:
        return None
    if not zipfile.is_zipfile(path):
        return 'truncated (its zip archive has no end record: a save cut short?)'
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        return f'corrupted ({err})'
    if bad is not None:
        return f'corrupted (archive member {bad} fails its CRC check)'
    if not any(name.endswith('data.pkl') for name in names):
        return 'not a PyTorch checkpoint (a zip archive without data.pkl)'
    return None


def load_error(err: BaseException) -> Optional[str]:
    """What a ``torch.load`` error says about the file, when it says it is cut short or
    damaged (older, non-zip format); None for other errors."""
    text = ' '.join(str(err).split())
    if isinstance(err, EOFError):
        return 'truncated (ends in the middle of its data)'
    if 'unexpected EOF' in text or 'PytorchStreamReader failed' in text:
        return f'truncated or corrupted ({text[:120]})'
    return None


def check_checkpoint(path: str) -> None:
    """CheckpointReadError in one line when ``path`` is not a whole checkpoint."""
    problem = checkpoint_problem(path)
    if problem:
        raise CheckpointReadError(f'checkpoint {path} is {problem}; {FIX}')


def latest_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint mmengine's ``resume`` would pick in ``work_dir`` (the file that
    ``last_checkpoint`` names), checked whole; None when there is no ``last_checkpoint``
    (nothing saved yet). CheckpointReadError in one line when the marker is empty or names
    a file that is missing or damaged."""
    marker = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(marker):
        return None
    with open(marker) as f:
        path = f.read().strip()
    if not path:
        raise CheckpointReadError(f'{marker} is empty (a save cut short?); {FIX}')
    if not osp.isfile(path):
        raise CheckpointReadError(f'{marker} names {path}, which does not exist; {FIX}')
    check_checkpoint(path)
    return path

