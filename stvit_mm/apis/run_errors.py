"""The errors a run can meet after its config was checked (a launch without its launcher's
variables, an unsafe or damaged checkpoint, a save cut short, an unreadable image or
annotation file), turned into the one line ``error: ...`` that tools/train.py and
tools/test.py exit with instead of a traceback."""
import json
import os
import re
from contextlib import contextmanager
from typing import Iterator, Optional, Sequence

from ..checkpoints.atomic_save import FileSaveError
from ..checkpoints.checkpoint_check import CheckpointReadError
from ..checkpoints.safe_loading import UnsafeCheckpointError
from ..datasets.annotation_errors import name_damaged_annotation
from ..datasets.image_errors import ImageReadError
from ..utils.dist import TIMEOUT_ENV, LaunchError

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


def lost_peer(err: RuntimeError, cfg) -> Optional[str]:
    """One line for a collective operation that failed because another rank is gone (its
    connection closed) or silent (timed out); None for other errors. The launcher names
    the rank it lost (torchrun's failure report, srun's 'task N: Killed')."""
    text = str(err)
    rank = os.environ.get('RANK', '?')
    if re.search(r'[Tt]imed out|[Tt]imeout', text) and re.search(r'gloo|c10d|ProcessGroup|'
                                                                 r'NCCL', text):
        seconds = cfg.get('env_cfg', {}).get('dist_cfg', {}).get('timeout', '?')  # as run
        return (f'rank {rank}: no answer from another rank for {seconds} s ({TIMEOUT_ENV}): '
                'a process of the job stopped responding (frozen, or its node cut off)')
    if re.search(r'Connection (reset|closed) by peer|Broken pipe', text):
        return (f'rank {rank}: lost the connection to another rank: a process of the job '
                'ended (killed, out of memory) or its node went away')
    return None


@contextmanager
def exit_on_run_errors(cfg, splits: Sequence[str]) -> Iterator[None]:
    """Run the body; a known run error exits with ``error: <one line>``; a JSON error that
    comes from one of the config's annotation files (``splits``) names that file."""
    try:
        yield
    except RUN_ERRORS as err:
        raise SystemExit(f'error: {one_line(err)}') from None
    except RuntimeError as err:
        message = lost_peer(err, cfg)
        if message is None:
            raise
        raise SystemExit(f'error: {message}') from None
    except json.JSONDecodeError:
        message = name_damaged_annotation(cfg, splits)
        if message is None:
            raise
        raise SystemExit(f'error: {message}') from None
