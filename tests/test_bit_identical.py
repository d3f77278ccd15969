"""Every config's backbone and the bare backbones compute bit for bit what they computed when
``tests/data/bit_identical.json`` was saved (``python tests/bit_identical.py --save``)."""
import json

import pytest
import torch

from bit_identical import DATA, compute

with open(DATA) as f:
    SAVED = json.load(f)


@pytest.mark.parametrize('name', sorted(SAVED['outputs']))
def test_forward_is_bit_identical(name):
    if torch.__version__ != SAVED['torch']:
        pytest.skip(f"saved with torch {SAVED['torch']}, running {torch.__version__}")
    got = compute({name})[name]
    want = SAVED['outputs'][name]
    assert sorted(got) == sorted(want)
    for size, outputs in want.items():
        assert [o['shape'] for o in got[size]] == [o['shape'] for o in outputs], size
        for i, (g, w) in enumerate(zip(got[size], outputs)):
            assert g['sha256'] == w['sha256'], (
                f"{size} output {i}: sum {g['sum']!r} != {w['sum']!r}, "
                f"samples {g['samples']} != {w['samples']}")
