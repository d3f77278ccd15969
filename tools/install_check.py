"""Report which parts of the stvit-mm install already work, one `name ok|missing` per line.

    python tools/install_check.py MMENGINE_VERSION MMCV_VERSION

Used by tools/install.sh so that a complete install is verified in one Python start
(seconds) instead of one start per component. The checks live in
stvit_mm/utils/install_check.py, loaded by its path: importing the package from this
checkout would hide whether stvit-mm is installed.
"""
import importlib.util
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _load_checks():
    path = os.path.join(ROOT, 'stvit_mm', 'utils', 'install_check.py')
    spec = importlib.util.spec_from_file_location('_stvit_mm_install_check', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_checks = _load_checks()
unmet_requirements = _checks.unmet_requirements  # tests/test_requirements.py uses it

if __name__ == '__main__':
    _checks.report(sys.argv[1], sys.argv[2])
