import os
import sys

# Idle OpenMP threads sleep instead of spinning (set before torch loads): tests start
# subprocesses and share 2 cores, where spinning threads slowed the suite several times.
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')

import pytest  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
# Tools are imported as modules by some tests.
sys.path.insert(0, os.path.join(ROOT, 'tools'))

import stvit_mm  # noqa: E402,F401  (compat shims before mm* imports)


def pytest_addoption(parser):
    parser.addoption('--runslow', action='store_true', default=False,
                     help='also run tests marked slow')


def pytest_configure(config):
    config.addinivalue_line('markers', 'slow: takes minutes; run with --runslow')


def pytest_collection_modifyitems(config, items):
    if config.getoption('--runslow'):
        return
    skip = pytest.mark.skip(reason='slow: run with --runslow')
    for item in items:
        if 'slow' in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope='session')
def repo_root():
    return ROOT


@pytest.fixture(autouse=True)
def _no_task_scope():
    """Each test starts outside any task's registry scope, as a fresh process does: backbones
    built directly take their conventions from the scope (``stock_args.resolve_convention``),
    and an earlier test's ``init_default_scope`` would otherwise leak into them."""
    from mmengine.registry import init_default_scope
    init_default_scope('mmengine')
