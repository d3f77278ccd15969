"""The arguments tools/train.py and tools/test.py share, defined once (dist_*.sh and
slurm_*.sh pass ``--launcher``; torchrun's older launcher passes ``--local-rank``)."""
import argparse
import os
from typing import List, Optional

from ..checkpoints.safe_loading import add_trust_checkpoint_argument


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """``--cfg-options``, ``--launcher``, ``--trust-checkpoint`` and ``--local-rank``."""
    from mmengine.config import DictAction

    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries, e.g. train_cfg.max_iters=10')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    add_trust_checkpoint_argument(parser)
    parser.add_argument('--local-rank', '--local_rank', type=int, default=0)


def parse_run_args(parser: argparse.ArgumentParser,
                   argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse; a ``--local-rank`` given by a launcher becomes ``LOCAL_RANK`` (where mmengine
    reads it) unless the environment already has one."""
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args
