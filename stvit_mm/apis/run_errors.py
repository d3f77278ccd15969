"""The errors a run can meet after its config was checked (a launch without its launcher's
variables, an unsafe or damaged checkpoint, a save cut short, an unreadable image or
annotation file), turned into the one line ``error: ...`` that tools/train.py and
tools/test.py exit with instead of a traceback."""
import json
from contextlib import contextmanager
from typing import Iterator, Sequence

from ..datasets.annotation_errors import name_damaged_annotation
from ..datasets.image_errors import ImageReadError
from ..utils.atomic_save import FileSaveError
from ..utils.checkpoint_check import CheckpointReadError
from ..utils.dist import LaunchError
from ..utils.safe_checkpoint import UnsafeCheckpointError

RUN_ERRORS = (LaunchError, UnsafeCheckpointError, CheckpointReadError, FileSaveError,
              ImageReadError)


def one_line(err: BaseException) -> str:
    """The error's own message on one line. A DataLoader worker's error arrives as
    'Caught X in DataLoader worker process N.' plus the worker's traceback: its last
    line ``X: message`` is the message."""
    text = str(err).strip()
    name = f'{type(err).__name__}: '
    lines = [line for line in text.splitlines() if line.startswith(name)]
    return lines[-1][len(name):] if lines else ' '.join(text.split())


@contextmanager
def exit_on_run_errors(cfg, splits: Sequence[str]) -> Iterator[None]:
    """Run the body; a known run error exits with ``error: <one line>``; a JSON error that
    comes from one of the config's annotation files (``splits``) names that file."""
    try:
        yield
    except RUN_ERRORS as err:
        raise SystemExit(f'error: {one_line(err)}') from None
    except json.JSONDecodeError:
        message = name_damaged_annotation(cfg, splits)
        if message is None:
            raise
        raise SystemExit(f'error: {message}') from None
