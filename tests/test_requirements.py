"""What a fresh machine gets is what the code needs: every requirement is installed at an
admitted version, and every third-party import is declared (so `make install` brings it)."""
import os
import re
import subprocess
import sys

import pytest
from packaging.requirements import Requirement

from install_check import unmet_requirements  # tools/install_check.py (pytest pythonpath)

UNDECLARED_IMPORTS_HOOK = os.path.join('..', 'shared', 'hooks', 'undeclared-imports.py')


def test_requirements_txt_is_satisfied(repo_root):
    assert unmet_requirements(os.path.join(repo_root, 'requirements.txt')) == []


def _declared_requirements(repo_root):
    """pyproject.toml's ``dependencies`` and ``optional-dependencies``."""
    tomllib = pytest.importorskip('tomllib')  # Python >= 3.11
    with open(os.path.join(repo_root, 'pyproject.toml'), 'rb') as f:
        project = tomllib.load(f)['project']
    return project['dependencies'], project['optional-dependencies']


def _name(requirement):
    return Requirement(requirement).name.lower()


def test_pyproject_requirements_are_satisfied(repo_root, tmp_path):
    # pyproject.toml's ranges must admit what requirements.txt pins, or `pip install -e .[all]`
    # with dependencies would replace the verified stack.
    core, extras = _declared_requirements(repo_root)
    lines = core + [r for extra in extras.values() for r in extra]
    requirements = tmp_path / 'setup_requirements.txt'
    requirements.write_text('\n'.join(lines))
    assert len(lines) > 5 and unmet_requirements(str(requirements)) == []


def test_task_packages_are_extras(repo_root):
    """`pip install stvit-mm` brings no OpenMMLab task package; each comes with its extra,
    `all` brings every one, and `make install` (requirements.txt) still installs them all."""
    core, extras = _declared_requirements(repo_root)
    tasks = {'det': 'mmdet', 'cls': 'mmpretrain', 'video': 'mmaction2',
             'seg': 'mmsegmentation'}
    assert {'torch', 'mmengine', 'mmcv'} <= {_name(r) for r in core}
    assert not {_name(r) for r in core} & set(tasks.values())
    for extra, package in tasks.items():
        assert package in {_name(r) for r in extras[extra]}, extra
    assert sorted(extras['all']) == sorted(r for extra in tasks for r in extras[extra])
    pinned = open(os.path.join(repo_root, 'requirements.txt'), encoding='utf-8').read()
    for requirement in extras['all']:
        assert re.search(rf'^{re.escape(_name(requirement))}\b', pinned, re.M | re.I), \
            requirement


def test_unmet_requirement_is_reported(tmp_path):
    requirements = tmp_path / 'requirements.txt'
    requirements.write_text('# comment\npytest>=1\nno-such-package-xyz==1.0\npytest<1  # old\n')
    unmet = unmet_requirements(str(requirements))
    assert unmet[0] == 'no-such-package-xyz==1.0 (not installed)'
    assert unmet[1].startswith('pytest<1 (have ') and len(unmet) == 2


@pytest.mark.skipif(not os.path.isfile(os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), UNDECLARED_IMPORTS_HOOK)),
    reason='the shared undeclared-imports hook is not beside this checkout')
def test_every_third_party_import_is_declared(repo_root):
    result = subprocess.run([sys.executable, UNDECLARED_IMPORTS_HOOK], cwd=repo_root,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
