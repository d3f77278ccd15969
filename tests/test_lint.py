"""The whole tree passes ruff with pyproject.toml's rules (pyflakes, pycodestyle, isort,
bugbear; lines of at most 100 characters), as `make lint` runs it."""
import subprocess
import sys


def test_tree_passes_ruff(repo_root):
    proc = subprocess.run([sys.executable, '-m', 'ruff', 'check', '--no-cache',
                           '--output-format', 'concise', '.'],
                          cwd=repo_root, capture_output=True, text=True, timeout=300)
    assert 'No module named ruff' not in proc.stderr, \
        'ruff is not installed: run `make install` (requirements.txt) or `pip install ruff`'
    assert proc.returncode == 0, f'ruff check . (make lint) fails:\n{proc.stdout}{proc.stderr}'


def test_ruff_reads_the_project_settings(repo_root):
    """A long line is reported at 101 characters, not at ruff's default 88: the settings in
    pyproject.toml are the ones applied."""
    line = 'x = ' + repr('a' * 90) + '\n'  # 98 characters: too long for 88, fine for 100
    proc = subprocess.run([sys.executable, '-m', 'ruff', 'check', '--no-cache', '--stdin-filename',
                           'tools/example.py', '-'], cwd=repo_root, input=line,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    too_long = 'x = ' + repr('a' * 95) + '\n'
    proc = subprocess.run([sys.executable, '-m', 'ruff', 'check', '--no-cache', '--stdin-filename',
                           'tools/example.py', '-'], cwd=repo_root, input=too_long,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and 'E501' in proc.stdout, proc.stdout + proc.stderr
