"""Input sizes, property-based (hypothesis): from a single pixel / one patch to large
non-divisible sizes, batch sizes and clip lengths, for the three backbones.

Properties: output shapes as documented, all values finite, batch elements independent,
and padding never leaks into real outputs. The backbones take no padding mask (as
mmdet's Swin): they pad internally (to whole windows) and mask what they padded. So the
padding property is checked two ways: the layers that take a ``keep`` mask give the same
real outputs with garbage in the padding; and whole backbones give the same outputs when
their window padding slots gather other (random) real tokens instead of token 0.

Narrow variants (16-32 channels) keep each example fast; the layouts, windows and
sparsification plans are the real ones. Examples are derandomised so the suite is
repeatable; raise ``max_examples`` locally to search further.
"""
import math

import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from stvit_mm.models import STViT, STViTSwin, STViTVideoSwin
from stvit_mm.models.layers import grouping
from stvit_mm.models.layers import unit as unit_module
from stvit_mm.models.layers import window as window_module
from stvit_mm.models.layers.unit import WindowedDumbbellUnit
from stvit_mm.models.layers.window import WindowBlock

SETTINGS = dict(deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
SWIN = dict(embed_dims=16, depths=(2, 2, 6, 2), num_heads=(1, 2, 4, 8))


def _with_visible_new_layers(model):
    """Layer scales start at 1e-5; raise them so generator/recovery outputs matter."""
    for name, p in model.named_parameters():
        if name.endswith('gamma'):
            p.data.fill_(0.5)
    return model.eval()


@pytest.fixture(scope='module')
def models():
    torch.manual_seed(0)
    return dict(
        deit=STViT(dict(embed_dims=32, num_heads=2)).eval(),
        deit_r=_with_visible_new_layers(STViT(dict(embed_dims=32, num_heads=2), recovery=True)),
        swin=_with_visible_new_layers(STViTSwin(SWIN, drop_path_rate=0.0)),
        # window 12 (the 384-pixel Swins): 5x5 semantic tokens, 17x17 neighbourhoods
        swin_w12=_with_visible_new_layers(STViTSwin(SWIN, window_size=12, drop_path_rate=0.0)),
        swin_no_recovery=_with_visible_new_layers(
            STViTSwin(SWIN, recovery=False, drop_path_rate=0.0, out_indices=(0, 1, 3))),
        video=_with_visible_new_layers(
            STViTVideoSwin(SWIN, out_indices=(0, 1, 2, 3), drop_path_rate=0.0)))


def _scrambled_window_layout(grid, window, shift, device):
    """``window_layout`` whose padding slots gather random real tokens instead of token 0."""
    layout = grouping.window_layout(grid, window, shift, device)
    if layout.valid is None:
        return layout
    padding = ~layout.valid.reshape(-1)
    index = layout.index.clone()
    index[padding] = torch.randint(0, layout.inverse.numel(), (int(padding.sum()), ),
                                   generator=torch.Generator().manual_seed(1)).to(index.device)
    return layout._replace(index=index)


def _run(model, x, garbage_padding=False):
    with torch.no_grad():
        if not garbage_padding:
            return model(x)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(window_module, 'window_layout', _scrambled_window_layout)
            patch.setattr(unit_module, 'window_layout', _scrambled_window_layout)
            return model(x)


def _check_common(model, x, outs, garbage=True):
    """Finite, batch elements independent, (optionally) window padding does not leak."""
    outs = outs if isinstance(outs, tuple) else (outs, )
    assert all(torch.isfinite(o).all() for o in outs)
    if x.shape[0] > 1:
        alone = _run(model, x[-1:])
        alone = alone if isinstance(alone, tuple) else (alone, )
        for a, b in zip(outs, alone):
            torch.testing.assert_close(a[-1:], b, rtol=1e-4, atol=1e-4)
    if garbage:
        with_garbage = _run(model, x, True)
        with_garbage = with_garbage if isinstance(with_garbage, tuple) else (with_garbage, )
        for a, b in zip(outs, with_garbage):
            torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-4)


# ------------------------------------------------------------------ STViT (DeiT)

@settings(max_examples=10, **SETTINGS)
@given(rows=st.integers(1, 24), cols=st.integers(1, 24), batch=st.integers(1, 3),
       recovery=st.booleans())
@example(rows=1, cols=1, batch=1, recovery=True)  # one patch: fewer tokens than 4x4 semantic
@example(rows=30, cols=47, batch=1, recovery=True)  # 480x752, not square
def test_stvit_any_multiple_of_the_patch(models, rows, cols, batch, recovery):
    """STViT takes sides that are multiples of the patch (16); the rest raise (test_bad_inputs)."""
    model = models['deit_r' if recovery else 'deit']
    x = torch.randn(batch, 3, 16 * rows, 16 * cols)
    outs = _run(model, x)
    assert len(outs) == 1
    expected = (batch, 32, rows, cols) if recovery else (batch, 32)
    assert tuple(outs[0].shape) == expected
    _check_common(model, x, outs, garbage=False)  # STViT does not pad


# ------------------------------------------------------------------ STViTSwin

@settings(max_examples=12, **SETTINGS)
@given(height=st.integers(1, 160), width=st.integers(1, 160), batch=st.integers(1, 2))
@example(height=32, width=32, batch=1)  # stage 3 is 2x2: below one 7x7 window
@example(height=1, width=1, batch=2)  # one pixel: every stage is 1x1
@example(height=333, width=517, batch=1)  # large, divisible by nothing
def test_stvit_swin_any_size(models, height, width, batch):
    model = models['swin']
    x = torch.randn(batch, 3, height, width)
    outs = _run(model, x)
    assert [tuple(o.shape) for o in outs] == [
        (batch, 16 * 2**i, math.ceil(height / 2**(i + 2)), math.ceil(width / 2**(i + 2)))
        for i in range(4)]
    _check_common(model, x, outs)


@settings(max_examples=8, **SETTINGS)
@given(height=st.integers(1, 400), width=st.integers(1, 400), batch=st.integers(1, 2))
@example(height=200, width=200, batch=1)  # stage 3 is 13x13: one real row/column past a window
@example(height=3, width=517, batch=1)
def test_stvit_swin_window_12_any_size(models, height, width, batch):
    model = models['swin_w12']
    assert model.stages[2].units[0].pool_size == (5, 5)
    x = torch.randn(batch, 3, height, width)
    outs = _run(model, x)
    assert [tuple(o.shape) for o in outs] == [
        (batch, 16 * 2**i, math.ceil(height / 2**(i + 2)), math.ceil(width / 2**(i + 2)))
        for i in range(4)]
    _check_common(model, x, outs)


@settings(max_examples=6, **SETTINGS)
@given(height=st.integers(1, 128), width=st.integers(1, 128))
@example(height=32, width=32)
def test_stvit_swin_without_recovery_any_size(models, height, width):
    """STViT (no recovery): stage 4 runs on the semantic grid of stage 3 (4 tokens per
    window side without recovery), less the tokens whose adaptive bins, in the last window
    along a side, start past its real rows (they pool padding only)."""
    model = models['swin_no_recovery']
    x = torch.randn(1, 3, height, width)
    outs = _run(model, x)

    def semantic_side(side):  # stage-3 side -> real semantic tokens along it
        windows, real_in_last = math.ceil(side / 7), side - (math.ceil(side / 7) - 1) * 7
        return (windows - 1) * 4 + sum(math.floor(i * 7 / 4) < real_in_last for i in range(4))

    semantic = (semantic_side(math.ceil(height / 16)), semantic_side(math.ceil(width / 16)))
    assert len(outs) == 3  # stage 3 hands its semantic grid on: not an output
    assert tuple(outs[2].shape) == (1, 128, *(math.ceil(s / 2) for s in semantic))
    _check_common(model, x, outs)


# ------------------------------------------------------------------ STViTVideoSwin

@settings(max_examples=8, **SETTINGS)
@given(frames=st.integers(1, 12), height=st.integers(1, 96), width=st.integers(1, 96),
       batch=st.integers(1, 2))
@example(frames=1, height=1, width=1, batch=1)  # a single pixel of a single frame
@example(frames=9, height=130, width=70, batch=1)  # odd length, two windows wide
def test_stvit_video_swin_any_clip(models, frames, height, width, batch):
    model = models['video']
    x = torch.randn(batch, 3, frames, height, width)
    outs = _run(model, x)
    assert [tuple(o.shape) for o in outs] == [
        (batch, 16 * 2**i, math.ceil(frames / 2), math.ceil(height / 2**(i + 2)),
         math.ceil(width / 2**(i + 2))) for i in range(4)]
    _check_common(model, x, outs)


# ------------------------------------------------------------------ layers with a keep mask

def _pad_with_garbage(x, padded_grid):
    B, *grid, C = x.shape
    padded = torch.randn(B, *padded_grid, C) * 10 + 50
    keep = torch.zeros(1, *padded_grid, dtype=torch.bool)
    real = (slice(None), *(slice(0, g) for g in grid))
    padded[real] = x
    keep[real] = True
    return padded, keep, real


@settings(max_examples=10, **SETTINGS)
@given(grid=st.tuples(st.integers(1, 16), st.integers(1, 16)),
       extra=st.tuples(st.integers(0, 9), st.integers(0, 9)), shifted=st.booleans(),
       batch=st.integers(1, 2))
def test_window_block_ignores_padding(grid, extra, shifted, batch):
    torch.manual_seed(0)
    block = WindowBlock(16, 2, (7, 7), (3, 3) if shifted else None).eval()
    x = torch.randn(batch, *grid, 16)
    padded_grid = tuple(g + e for g, e in zip(grid, extra))
    padded, keep, real = _pad_with_garbage(x, padded_grid)
    if shifted:  # shifted windows lie differently on the two grids: compare unshifted
        block.shift = (0, 0)
    with torch.no_grad():
        plain = block(x.reshape(batch, -1, 16), grid)
        with_padding = block(padded.reshape(batch, -1, 16), padded_grid, keep)
    torch.testing.assert_close(with_padding.reshape(batch, *padded_grid, 16)[real],
                               plain.reshape(batch, *grid, 16), rtol=1e-4, atol=1e-4)


@settings(max_examples=10, **SETTINGS)
@given(grid=st.tuples(st.integers(1, 16), st.integers(1, 16)),
       windows_more=st.tuples(st.integers(0, 1), st.integers(0, 1)),
       scopes=st.sampled_from([('local', 'local'), ('global', 'global'), ('local', 'global')]),
       recovery=st.booleans())
@pytest.mark.parametrize('window, pool, near', [(7, 2, 10), (12, 5, 17)])
def test_dumbbell_unit_ignores_padding(grid, windows_more, scopes, recovery, window, pool, near):
    """Padding that adds whole windows (or only fills the last one) never changes real tokens
    or the semantic tokens of windows with real tokens."""
    torch.manual_seed(0)
    unit = _with_visible_new_layers(WindowedDumbbellUnit(
        32, 4, (window, window), (pool, pool), (near, near), layer2_scope=scopes[0],
        recovery_scope=scopes[1], recovery=recovery))
    x = torch.randn(1, *grid, 32)
    # pad to the next whole window, plus 0 or 1 further windows per dim
    padded_grid = tuple(-(-g // window) * window + window * m
                        for g, m in zip(grid, windows_more))
    padded, keep, real = _pad_with_garbage(x, padded_grid)
    with torch.no_grad():
        plain, _, plain_semantic = unit(x.reshape(1, -1, 32), grid)
        with_padding, _, semantic = unit(padded.reshape(1, -1, 32), padded_grid, keep)
    if recovery:
        torch.testing.assert_close(with_padding.reshape(1, *padded_grid, 32)[real],
                                   plain.reshape(1, *grid, 32), rtol=1e-4, atol=1e-4)
    # semantic tokens of the windows that hold real tokens: the same
    windows = [-(-g // window) for g in grid]
    all_windows = [p // window for p in padded_grid]
    S = pool * pool
    semantic = semantic.reshape(1, all_windows[0], all_windows[1], S, 32)
    torch.testing.assert_close(semantic[:, :windows[0], :windows[1]].reshape(1, -1, S, 32),
                               plain_semantic.reshape(1, -1, S, 32), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('scopes', [('local', 'local'), ('global', 'global')])
@pytest.mark.parametrize('recovery', [True, False])
def test_semantic_tokens_pooled_from_padding_only_are_masked(scopes, recovery):
    """8x8 grid, 7x7 windows: the second row/column of windows holds one real row/column,
    so 2 of the 3x3 bins per axis pool padding only. Those tokens are not real: whatever
    values they carry never reach the recovered tokens or the real semantic tokens."""
    torch.manual_seed(0)
    unit = _with_visible_new_layers(WindowedDumbbellUnit(
        32, 4, (7, 7), (3, 3), (10, 10), layer2_scope=scopes[0], recovery_scope=scopes[1],
        recovery=recovery))
    x = torch.randn(2, 64, 32)
    with torch.no_grad():
        _, semantic_keep = unit.generate(x, (8, 8))
        # real bins per window (raster): all 9, one column of 3, one row of 3, one corner
        assert semantic_keep.reshape(2, 2, 2, 9).sum(-1).tolist() == [[[9, 3], [3, 1]]] * 2
        plain, _, plain_semantic = unit(x, (8, 8))
        layer1 = unit.generator.layer1
        real_forward = layer1.forward_projected

        def fake_tokens_garbage(*args, **kwargs):  # (B*nW, S, C): overwrite the fake tokens
            out = real_forward(*args, **kwargs)
            return out.masked_fill(~semantic_keep.reshape(out.shape[:2])[..., None], 1e3)

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(layer1, 'forward_projected', fake_tokens_garbage)
            garbage, _, garbage_semantic = unit(x, (8, 8))
    if recovery:
        torch.testing.assert_close(garbage, plain, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(garbage_semantic[semantic_keep], plain_semantic[semantic_keep],
                               rtol=1e-4, atol=1e-4)


def test_semantic_token_validity_at_a_detection_size():
    """800x1344 -> stage-3 grid 50x84: the bottom row of windows holds one real row, so 6 of
    each such window's 9 semantic tokens pool padding only (72 of 864)."""
    unit = WindowedDumbbellUnit(8, 1, (7, 7), (3, 3), (10, 10))
    with torch.no_grad():
        _, semantic_keep = unit.generate(torch.zeros(1, 50 * 84, 8), (50, 84))
    assert semantic_keep.numel() == 864 and int((~semantic_keep).sum()) == 72
