import os

# Idle OpenMP threads sleep instead of spinning (set before torch loads): tests start
# subprocesses and share 2 cores, where spinning threads slowed the suite several times.
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')

import pytest  # noqa: E402

# The checkout and tools/ (imported as modules by some tests) are on sys.path through
# pyproject.toml's [tool.pytest.ini_options] pythonpath.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import stvit_mm  # noqa: E402,F401  (compat shims before mm* imports)


def pytest_addoption(parser):
    parser.addoption('--runslow', action='store_true', default=False,
                     help='also run tests marked slow (`make test-all`, what CI runs)')
    parser.addoption('--runlong', action='store_true', default=False,
                     help='also run tests marked long (beyond the CI budget)')


def pytest_configure(config):
    config.addinivalue_line('markers', 'slow: takes minutes; run with --runslow')
    config.addinivalue_line('markers', 'long: takes tens of minutes on 2 cores, more than '
                            "CI's budget holds; run with --runlong")


def pytest_collection_modifyitems(config, items):
    skips = {'slow': (config.getoption('--runslow'),
                      pytest.mark.skip(reason='slow: run with --runslow (make test-all)')),
             'long': (config.getoption('--runlong'),
                      pytest.mark.skip(reason='long: over 15 min on 2 cores, beyond the CI '
                                       'budget (60 min for the whole run); run with --runlong'))}
    for item in items:
        for marker, (wanted, skip) in skips.items():
            if marker in item.keywords and not wanted:
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


@pytest.fixture(scope='module')
def one_epoch_classifier(tmp_path_factory, repo_root):
    """A real run of tools/train.py: one epoch of the synthetic STViT-DeiT-T classifier.

    Returns its work dir (epoch_1.pth, last_checkpoint) and the --cfg-options it ran with.
    """
    import train as train_tool
    from stvit_mm.datasets import make_imagenet_style
    root = tmp_path_factory.mktemp('one_epoch_classifier')
    make_imagenet_style(str(root / 'data'), train_per_class=2, val_per_class=1)
    options = [f'{s}_dataloader.dataset.data_root={root / "data"}' for s in
               ('train', 'val', 'test')] + ['train_cfg.max_epochs=1']
    cwd = os.getcwd()
    os.chdir(repo_root)
    try:
        train_tool.main(['configs/classification/stvit_deit_t_synthetic.py', '--work-dir',
                         str(root / 'work'), '--cfg-options', *options])
    finally:
        os.chdir(cwd)
    return root / 'work', options
