"""The README and docs/ as a reader meets them: every relative link leads to a file of the
repository (and heading), every `configs/...` and `tools/...` path they name exists, the README
stays short, and its results table only shows figures the model zoo holds."""
import glob
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGES = ['README.md'] + sorted(os.path.relpath(p, ROOT)
                               for p in glob.glob(os.path.join(ROOT, 'docs', '*.md')))
FENCE = re.compile(r'^```.*?^```', re.M | re.S)
COMMENT = re.compile(r'<!--.*?-->', re.S)  # not rendered
LINK = re.compile(r'!?\[[^\]]*\]\(([^)\s]+)\)|<img\s[^>]*src="([^"]+)"')
PATH = re.compile(r'(?<![\w./-])((?:configs|tools)/[\w./{},*-]*[\w*}])')


def _read(page):
    with open(os.path.join(ROOT, page), encoding='utf-8') as f:
        return f.read()


def _slug(heading):
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r'[`*_]', '', heading.strip().lower())
    return re.sub(r'[^\w\- ]', '', text).replace(' ', '-')


def _anchors(page):
    text = FENCE.sub('', _read(page))
    return {_slug(m) for m in re.findall(r'^#+\s+(.*)$', text, re.M)}


def _expand(path):
    """`a_{t,s}.py` -> `a_t.py`, `a_s.py` (nested braces are not used)."""
    match = re.search(r'\{([^{}]*)\}', path)
    if not match:
        return [path]
    return [p for option in match.group(1).split(',')
            for p in _expand(path[:match.start()] + option + path[match.end():])]


def test_pages_exist():
    assert 'docs/method.md' in PAGES and 'docs/model_zoo.md' in PAGES, PAGES


@pytest.mark.parametrize('page', PAGES)
def test_relative_links_resolve_inside_the_repository(page):
    text = COMMENT.sub('', FENCE.sub('', _read(page)))
    broken = []
    for match in LINK.finditer(text):
        target = match.group(1) or match.group(2)
        if re.match(r'[a-z]+:', target):  # https:, mailto: (public URLs)
            assert target.startswith(('https://', 'http://', 'mailto:')), (page, target)
            continue
        path, _, anchor = target.partition('#')
        resolved = os.path.normpath(os.path.join(ROOT, os.path.dirname(page), path)) \
            if path else os.path.join(ROOT, page)
        if os.path.commonpath([resolved, ROOT]) != ROOT:
            broken.append(f'{target}: leaves the repository')
        elif not os.path.exists(resolved):
            broken.append(f'{target}: no such file')
        elif anchor and resolved.endswith('.md') and \
                anchor not in _anchors(os.path.relpath(resolved, ROOT)):
            broken.append(f'{target}: no heading #{anchor}')
    assert not broken, f'{page}: ' + '; '.join(broken)


@pytest.mark.parametrize('page', PAGES)
def test_configs_and_tools_paths_exist(page):
    missing = []
    for written in sorted(set(PATH.findall(_read(page)))):
        for path in _expand(written):
            if not glob.glob(os.path.join(ROOT, path)):
                missing.append(written if path == written else f'{path} (from {written})')
    assert not missing, f'{page} names paths that do not exist: {", ".join(missing)}'


def test_readme_reads_in_five_minutes():
    lines = _read('README.md').count('\n')
    assert lines <= 200, f'README.md has {lines} lines; move details to docs/'


def test_readme_results_are_the_model_zoo_figures():
    readme = _read('README.md')
    table = re.search(r'<!-- results.*?-->(.*?)<!-- /results -->', readme, re.S)
    assert table, 'README.md: no <!-- results --> ... <!-- /results --> table'
    rows = [line for line in table.group(1).strip().splitlines()[2:] if line.startswith('|')]
    assert len(rows) >= 5, rows
    zoo = _read('docs/model_zoo.md')
    absent = []
    for row in rows:
        cells = [c.strip() for c in row.strip('|').split('|')]
        for figure in re.findall(r'\d+(?:\.\d+)?x?', ' '.join(cells[2:])):
            if not re.search(rf'(?<![\d.]){re.escape(figure)}(?![\d.])', zoo):
                absent.append(f'{figure} ({cells[0]})')
    assert not absent, f'README results not in docs/model_zoo.md: {", ".join(absent)}'
