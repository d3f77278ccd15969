"""Core layers: attention paths agree, masks hold, generator/recovery shapes."""
import pytest
import torch

from stvit_mm.models.layers import (
    Attention,
    Block,
    CrossBlock,
    RecoveryBlock,
    SemanticTokenGenerator,
    adaptive_max_pool_tokens,
    attention,
    fused_attn,
    record_attention,
)
from stvit_mm.models.layers.attention import merge_bias_and_mask


@pytest.fixture(autouse=True)
def seed():
    torch.manual_seed(0)


def test_fused_and_explicit_attention_agree_with_bias_and_mask():
    q, k, v = torch.randn(3, 2, 4, 5, 8).unbind(0)
    bias = torch.randn(1, 4, 5, 5)
    mask = torch.rand(2, 1, 5, 5) > 0.3
    mask[..., 0] = True
    with fused_attn(True):
        fused = attention(q, k, v, bias, mask)
    with fused_attn(False):
        explicit = attention(q, k, v, bias, mask)
    torch.testing.assert_close(fused, explicit, rtol=1e-5, atol=1e-5)


def test_masked_keys_are_ignored():
    q = torch.randn(1, 1, 3, 8)
    k, v = torch.randn(2, 1, 1, 4, 8).unbind(0)
    mask = torch.tensor([True, True, False, False])[None, None, None]
    k2, v2 = k.clone(), v.clone()
    k2[..., 2:, :] += 100.0
    v2[..., 2:, :] -= 50.0
    for fused in (True, False):
        with fused_attn(fused):
            torch.testing.assert_close(attention(q, k, v, mask=mask),
                                       attention(q, k2, v2, mask=mask))
            torch.testing.assert_close(attention(q, k, v, mask=mask),
                                       attention(q, k[..., :2, :], v[..., :2, :]))


def test_fully_masked_query_stays_finite():
    q, k, v = torch.randn(3, 1, 2, 3, 4).unbind(0)
    mask = torch.zeros(1, 1, 3, 3, dtype=torch.bool)
    for fused in (True, False):
        with fused_attn(fused):
            assert torch.isfinite(attention(q, k, v, mask=mask)).all()


@pytest.mark.parametrize('dtype', [torch.float32, torch.bfloat16, torch.float16])
def test_merged_bias_keeps_kept_logits_bit_for_bit_and_blocks_the_rest(dtype):
    bias = torch.randn(1, 4, 5, 5) * 4
    bias[0, 0, 0, :2] = -0.0  # a kept -0.0 must stay -0.0
    mask = torch.rand(3, 1, 5, 5) > 0.3
    mask[0, 0, 0, :2] = True
    merged = merge_bias_and_mask(bias, mask, dtype)
    kept = mask.expand(3, 4, 5, 5)
    bits = {torch.float32: torch.int32}.get(dtype, torch.int16)
    want = bias.to(dtype).expand(3, 4, 5, 5)
    assert merged.dtype == dtype and merged.shape == (3, 4, 5, 5)
    assert torch.equal(merged[kept].view(bits), want[kept].view(bits))
    blocked = merged[~kept]
    assert torch.isfinite(blocked).all() and (blocked < torch.finfo(dtype).min / 4).all()
    alone = merge_bias_and_mask(None, mask, dtype)  # a mask alone: 0 where kept
    assert alone.shape == mask.shape and (alone[mask] == 0).all()
    assert (alone[~mask] == torch.finfo(dtype).min / 2).all()


def test_record_attention_sees_weights_that_sum_to_one():
    block = Block(16, 2)
    seen = []
    with record_attention(seen.append):
        block(torch.randn(2, 7, 16))
    assert len(seen) == 1 and seen[0].shape == (2, 2, 7, 7)
    torch.testing.assert_close(seen[0].sum(-1), torch.ones(2, 2, 7))


def test_attention_rejects_indivisible_heads():
    with pytest.raises(ValueError, match='not divisible'):
        Attention(10, 3)


def test_pooling_ignores_padding_and_handles_small_grids():
    x = torch.randn(2, 6 * 5, 4)
    pooled = adaptive_max_pool_tokens(x, (6, 5), (4, 4))
    assert pooled.shape == (2, 16, 4)
    # a grid smaller than the bins repeats tokens instead of failing
    assert adaptive_max_pool_tokens(torch.randn(1, 2 * 3, 4), (2, 3), (4, 4)).shape == (1, 16, 4)
    keep = torch.ones(2, 30, dtype=torch.bool)
    keep[:, -5:] = False  # last row is padding
    padded = x.clone()
    padded[:, -5:] = 1e3
    torch.testing.assert_close(adaptive_max_pool_tokens(padded, (6, 5), (4, 4), keep)[:, :4],
                               adaptive_max_pool_tokens(x, (6, 5), (4, 4), keep)[:, :4])
    # 3D (video) grids use the same function
    assert adaptive_max_pool_tokens(torch.randn(1, 4 * 6 * 6, 4), (4, 6, 6),
                                    (2, 3, 3)).shape == (1, 18, 4)


def test_pooling_rejects_inconsistent_grid():
    with pytest.raises(ValueError, match='do not fill grid'):
        adaptive_max_pool_tokens(torch.randn(1, 10, 4), (3, 3), (2, 2))


def test_generator_shapes_and_padding_invariance():
    gen = SemanticTokenGenerator(32, 4, pool_size=(4, 4)).eval()
    x = torch.randn(2, 7 * 9, 32)
    out = gen(x, (7, 9))
    assert out.shape == (2, 16, 32)
    # Extra padded rows, masked out, must not change the semantic tokens.
    pad = torch.randn(2, 9 * 9, 32) * 10
    pad[:, :63] = x
    keep = torch.zeros(2, 81, dtype=torch.bool)
    keep[:, :63] = True
    gen_pooled = gen.initial_tokens(x, (7, 9))
    # with the same queries, masked keys reproduce the unpadded attention
    semantic = gen.layer1(gen_pooled, x)
    semantic_padded = gen.layer1(gen_pooled, pad, mask=keep[:, None, None, :])
    torch.testing.assert_close(semantic, semantic_padded, rtol=1e-5, atol=1e-5)
    # and the whole generator (both layers) ignores masked padding given the same grid
    grid_pad = torch.randn(2, 63, 32) * 10
    keep_all = torch.ones(2, 63, dtype=torch.bool)
    keep_all[:, -9:] = False  # last row of the 7x9 grid is padding
    x_pad = torch.where(keep_all[..., None], x, grid_pad)
    torch.testing.assert_close(gen(x_pad, (7, 9), keep_all), gen(x.masked_fill(
        ~keep_all[..., None], -5.0), (7, 9), keep_all), rtol=1e-5, atol=1e-5)


def test_generator_without_shortcut_and_centres():
    gen = SemanticTokenGenerator(16, 2, pool_size=(2, 2), shortcut=False, global_centres=False)
    assert gen.centres is None and not gen.layer1.shortcut
    assert gen(torch.randn(1, 16, 16), (4, 4)).shape == (1, 4, 16)


def test_cross_block_projected_path_matches_forward():
    block = CrossBlock(16, 4, layer_scale_init=0.5)
    x_q, x_kv = torch.randn(2, 3, 16), torch.randn(2, 10, 16)
    torch.testing.assert_close(block(x_q, x_kv),
                               block.forward_projected(x_q, block.project_kv(x_kv)))


def test_recovery_keeps_image_token_shape_and_needs_residual():
    rec = RecoveryBlock(16, 2)
    assert rec(torch.randn(2, 30, 16), torch.randn(2, 4, 16)).shape == (2, 30, 16)
    with pytest.raises(ValueError, match='cannot be disabled'):
        RecoveryBlock(16, 2, shortcut=False)


def test_layer_scale_starts_small():
    block = CrossBlock(8, 2)
    assert torch.allclose(block.ls1.gamma, torch.full((8, ), 1e-5))


def test_generator_layer_without_shortcut_never_drops_its_attention_branch():
    # Official layer 1 without shortcut: x = ls1 * attn(...). Stochastic depth on that branch
    # would zero (or rescale) the layer's whole output for some samples in training.
    torch.manual_seed(0)
    block = CrossBlock(16, 2, drop_path=0.9, layer_scale_init=1.0, shortcut=False)
    torch.nn.init.zeros_(block.mlp.fc2.weight)  # MLP branch adds nothing: output = attention
    torch.nn.init.zeros_(block.mlp.fc2.bias)
    x_q, x_kv = torch.randn(64, 4, 16), torch.randn(64, 9, 16)
    expected = block.eval()(x_q, x_kv)
    assert torch.allclose(block.train()(x_q, x_kv), expected, atol=1e-6)
    # with the shortcut the attention branch is a residual branch and keeps its drop path
    block.shortcut = True
    assert not torch.allclose(block.train()(x_q, x_kv), block.eval()(x_q, x_kv))


def _box(rows: range, cols: range, width: int) -> set:
    return {r * width + c for r in rows for c in cols}


def test_unit_footprint_is_what_generator_layer1_reads():
    """The public footprint of a windowed unit names exactly the image tokens each window's
    semantic tokens depend on after generator layer 1, and the surrounding windows."""
    from stvit_mm.models.layers.unit import WindowedDumbbellUnit
    unit = WindowedDumbbellUnit(16, 2, window=(4, 4), pool_size=(2, 2), neighbourhood=(6, 6),
                                layer2_scope='local', recovery_scope='local').eval()
    grid = (8, 12)  # 2 x 3 windows of 4 x 4; neighbourhoods of 6 x 6 start one token before
    footprint = unit.footprint(grid)
    assert footprint.window == (4, 4)
    assert footprint.image_tokens.shape == footprint.image_valid.shape == (6, 36)
    assert footprint.windows.shape == footprint.windows_valid.shape == (6, 9)
    expected = [_box(range(max(0, 4 * i - 1), min(8, 4 * i + 5)),
                     range(max(0, 4 * j - 1), min(12, 4 * j + 5)), 12)
                for i in range(2) for j in range(3)]
    for w in range(6):
        valid = footprint.image_tokens[w][footprint.image_valid[w]]
        assert set(valid.tolist()) == expected[w]
    near = footprint.windows[1][footprint.windows_valid[1]]  # window (0, 1): 2 x 3 around it
    assert sorted(near.tolist()) == [0, 1, 2, 3, 4, 5]
    assert sorted(footprint.windows[0][footprint.windows_valid[0]].tolist()) == [0, 1, 3, 4]

    # Gradients of each window's layer-1 semantic tokens reach exactly its footprint.
    layer1 = unit.generator.layer1
    forward_projected, outputs = layer1.forward_projected, []

    def recording(*args, **kwargs):
        outputs.append(forward_projected(*args, **kwargs))
        return outputs[-1]

    layer1.forward_projected = recording  # generate() calls it, not layer1(...)
    x = torch.randn(1, 8 * 12, 16, requires_grad=True)
    unit.generate(x, grid)
    (semantic, ) = outputs  # (windows, S, C)
    for w in range(6):
        (grad, ) = torch.autograd.grad(semantic[w].sum(), x, retain_graph=True)
        assert set(grad[0].abs().sum(-1).nonzero().flatten().tolist()) == expected[w]
    # copies: changing them leaves the unit's own tables alone
    footprint.image_tokens.zero_()
    assert unit.footprint(grid).image_tokens.max() == 8 * 12 - 1
