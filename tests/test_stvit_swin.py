"""STViTSwin: any input size, padding invariance, gradients, Swin weights, official sizes."""
import pytest
import torch
from mmdet.models.backbones import SwinTransformer

from stvit_mm.models import STViTSwin
from stvit_mm.models.backbones import OFFICIAL_PRESET
from stvit_mm.models.layers import fused_attn
from stvit_mm.models.layers.unit import WindowedDumbbellUnit
from stvit_mm.models.layers.window import WindowBlock

CHANNELS = (96, 192, 384, 768)


@pytest.fixture(autouse=True)
def seed():
    torch.manual_seed(0)


@pytest.fixture(scope='module')
def tiny():
    return STViTSwin('tiny').eval()


@pytest.mark.parametrize('hw', [(224, 224), (97, 130), (803, 1217), (32, 32), (800, 1333)])
def test_any_input_size(tiny, hw):
    with torch.no_grad():
        outs = tiny(torch.randn(1, 3, *hw))
    expected = [(-(-hw[0] // s), -(-hw[1] // s)) for s in (4, 8, 16, 32)]
    assert [tuple(o.shape[2:]) for o in outs] == expected
    assert [o.shape[1] for o in outs] == list(CHANNELS)
    assert all(torch.isfinite(o).all() for o in outs)


def _make_new_layers_matter(module):
    """Layer scales start at 1e-5; raise them so the new layers' outputs are visible."""
    for name, p in module.named_parameters():
        if name.endswith('gamma'):
            p.data.fill_(0.5)
    return module


@pytest.mark.parametrize('scopes', [('local', 'local'), ('global', 'global')])
def test_padding_never_changes_real_tokens(scopes):
    unit = _make_new_layers_matter(WindowedDumbbellUnit(
        32, 4, (7, 7), (3, 3), (10, 10), layer2_scope=scopes[0],
        recovery_scope=scopes[1])).eval()
    x = torch.randn(2, 10, 13, 32)
    padded = torch.randn(2, 17, 22, 32) * 10
    padded[:, :10, :13] = x
    keep = torch.zeros(1, 17, 22, dtype=torch.bool)
    keep[:, :10, :13] = True
    with torch.no_grad():
        plain, _, _ = unit(x.reshape(2, -1, 32), (10, 13))
        with_padding, _, _ = unit(padded.reshape(2, -1, 32), (17, 22), keep)
    torch.testing.assert_close(with_padding.reshape(2, 17, 22, 32)[:, :10, :13],
                               plain.reshape(2, 10, 13, 32), rtol=1e-5, atol=1e-5)


def test_window_block_padding_invariance_with_shift():
    block = WindowBlock(16, 2, (7, 7), (3, 3)).eval()
    x = torch.randn(1, 9, 11, 16)
    padded = torch.randn(1, 21, 21, 16)
    padded[:, :9, :11] = x
    keep = torch.zeros(1, 21, 21, dtype=torch.bool)
    keep[:, :9, :11] = True
    with torch.no_grad():
        plain = block(x.reshape(1, -1, 16), (9, 11))
        # shifted windows differ between grids; padding-masked keys must still be ignored
        block.shift = (0, 0)
        a = block(x.reshape(1, -1, 16), (9, 11))
        b = block(padded.reshape(1, -1, 16), (21, 21), keep).reshape(1, 21, 21, 16)
    torch.testing.assert_close(b[:, :9, :11].reshape(1, -1, 16), a, rtol=1e-5, atol=1e-5)
    assert torch.isfinite(plain).all()


@pytest.mark.parametrize('padding', ['masked', 'zeros'])
@pytest.mark.parametrize('grid', [(14, 14), (14, 15), (9, 11)])  # no, little, much padding
def test_window_qkv_is_the_same_whichever_is_gathered_first(monkeypatch, padding, grid):
    """WindowBlock gathers tokens or their projections into windows by padding share: the
    choice is speed only (bit-identical outputs; gradients up to summation order)."""
    from stvit_mm.models.layers import window
    block = WindowBlock(32, 4, (7, 7), (3, 3), padding=padding)
    x = torch.randn(2, grid[0] * grid[1], 32)
    results = []
    for share in (-1.0, float('inf')):  # projections first, tokens first (any padding)
        monkeypatch.setattr(window, 'TOKENS_FIRST_MAX_PADDING', share)
        block.zero_grad()
        out = block(x, grid)
        out.square().sum().backward()
        results.append((out.detach(), block.attn.qkv.weight.grad.clone()))
    assert torch.equal(results[0][0], results[1][0])
    # the weight gradient sums the same rows (padding slots contribute zeros) in another order
    scale = results[0][1].abs().max()
    torch.testing.assert_close(results[0][1], results[1][1], rtol=0, atol=1e-5 * scale)


def test_attention_inputs_need_no_layout_copy():
    """Layouts only (values are covered by test_bit_identical): the window bias merged with a
    mask is contiguous, so SDPA on CPU does not copy it per call, and the patch stem's tokens
    reach their norm contiguous. A heads-last bias or NCHW patch maps would still compute the
    same values, each behind one extra copy of every window's logits or of every token."""
    from stvit_mm.models.layers.attention import merge_bias_and_mask
    block = WindowBlock(32, 4, (7, 7), (3, 3))
    bias = block.attn.position_bias()
    mask = torch.rand(6, 1, 49, 49) > 0.2
    assert bias.is_contiguous() and merge_bias_and_mask(bias, mask, torch.float32).is_contiguous()
    embed = STViTSwin('tiny').patch_embed
    seen = []
    embed.norm.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    with torch.no_grad():
        embed(torch.randn(2, 3, 64, 96))
    assert seen[0].shape == (2, 16 * 24, 96) and seen[0].is_contiguous()


@pytest.mark.parametrize('recovery', [True, False])
def test_every_parameter_gets_a_gradient(recovery):
    model = STViTSwin('tiny', recovery=recovery, drop_path_rate=0.1,
                      out_indices=(0, 1, 2, 3) if recovery else (3, ))
    # without recovery stage 4 runs on the semantic grid: make it hold more than one token
    outs = model(torch.randn(2, 3, 64, 96) if recovery else torch.randn(2, 3, 128, 128))
    sum(o.square().mean() for o in outs).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    assert not missing, f'parameters without gradient: {missing}'


def test_without_recovery_the_semantic_grid_goes_on():
    model = STViTSwin('small', recovery=False, out_indices=(3, )).eval()
    with torch.no_grad():
        stage4, = model(torch.randn(1, 3, 224, 224))
    # stage 3: 2x2 windows x 4x4 semantic tokens (16 per window, paper) = 8x8, merged to 4x4
    assert stage4.shape == (1, 768, 4, 4)


def test_fused_and_explicit_attention_agree(tiny):
    x = torch.randn(1, 3, 120, 150)
    with torch.no_grad(), fused_attn(True):
        fused = tiny(x)
    with torch.no_grad(), fused_attn(False):
        explicit = tiny(x)
    for a, b in zip(fused, explicit):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_unsparsified_model_with_mmdet_weights_equals_mmdet_swin():
    ref = SwinTransformer(embed_dims=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24),
                          window_size=7, drop_path_rate=0.0)
    ref.eval()
    ours = STViTSwin(dict(embed_dims=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24),
                          units=(0, 0, 0, 0)), drop_path_rate=0.0).eval()
    result = ours.load_state_dict(ref.state_dict(), strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        for a, b in zip(ref(x), ours(x)):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_swin_weights_initialise_all_but_the_new_parameters():
    ref = SwinTransformer(embed_dims=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24))
    model = STViTSwin('tiny')
    result = model.load_state_dict(ref.state_dict(), strict=False)
    unit = 'stages.2.units.0.'
    new = {unit + 'generator.centres'} | {
        f'{unit}{layer}.ls{i}.gamma' for i in (1, 2)
        for layer in ('generator.layer1', 'generator.layer2', 'semantic_blocks.0',
                      'semantic_blocks.1', 'recovery')}
    assert set(result.missing_keys) == new
    assert result.unexpected_keys == []
    sd = ref.state_dict()
    ours = model.state_dict()
    C = 384
    torch.testing.assert_close(ours[unit + 'generator.layer1.attn.q.weight'],
                               sd['stages.2.blocks.1.attn.w_msa.qkv.weight'][:C])
    torch.testing.assert_close(ours[unit + 'recovery.mlp.fc2.weight'],
                               sd['stages.2.blocks.5.ffn.layers.1.weight'])
    dropped = model.last_load_report['not_loaded']
    assert dropped['stages.2.blocks.1.attn.w_msa.relative_position_bias_table'] == \
        'only window blocks have a relative position bias'


@pytest.mark.parametrize('arch, params', [('small', 49_625_518), ('base', 87_812_336)])
def test_official_settings_match_official_parameter_count(arch, params):
    model = STViTSwin(arch, preset='official', out_indices=(3, ))
    head = model.num_features[-1] * 1000 + 1000  # the official classifier's linear head
    assert sum(p.numel() for p in model.parameters()) + head == params


def test_official_preset_is_the_official_switches_and_explicit_arguments_win():
    """preset='official' computes what the seven switches spelt out compute (at a size where
    scopes, borders and window fitting all matter); a switch passed explicitly wins."""
    arch = dict(embed_dims=16, depths=(2, 2, 6, 2), num_heads=(1, 2, 4, 8))
    torch.manual_seed(0)
    spelt_out = STViTSwin(arch, **OFFICIAL_PRESET).eval()
    torch.manual_seed(0)
    preset = STViTSwin(arch, preset='official').eval()
    x = torch.randn(1, 3, 320, 256)
    with torch.no_grad():
        for a, b in zip(spelt_out(x), preset(x)):
            assert torch.equal(a, b)
    other = STViTSwin(arch, preset='official', layer2_scope='local')
    assert [u.layer2_scope for u in (other.stages[2].units[0], preset.stages[2].units[0])] == [
        'local', 'global']
    own_stem = STViTSwin(arch, preset='official', stem='patch', gen_shortcut=True)
    assert own_stem.patch_embed.stem == 'patch'
    assert own_stem.stages[2].units[0].generator.centres is None  # the preset's, not overridden
    assert STViTSwin(arch).patch_embed.stem == 'patch'  # no preset: the defaults


@pytest.mark.parametrize('kwargs, message', [
    (dict(arch='huge'), "unknown arch 'huge'"),
    (dict(preset='paper'),
     "STViTSwin: unknown preset 'paper'; choose one of \\['official', 'official-det'\\]"),
    (dict(arch=dict(embed_dims=96, depths=(2, 2, 6, 2))), "misses \\['num_heads'\\]"),
    (dict(pool_size=8), 'larger than window_size 7'),
    (dict(out_indices=(4, )), 'out_indices'),
    (dict(stem='vit'), "unknown stem 'vit'"),
    (dict(layer2_scope='regional'), 'layer2_scope must be one of'),
])
def test_bad_config_gets_one_clear_line(kwargs, message):
    with pytest.raises(ValueError, match=message):
        STViTSwin(**kwargs)


@pytest.mark.parametrize('x, message', [
    (torch.randn(1, 4, 64, 64), 'expected 3 input channels, got 4'),
    (torch.randn(3, 64, 64), 'expected images \\(B, C, H, W\\)'),
    (torch.randn(0, 3, 64, 64), 'empty batch'),
])
def test_bad_input_gets_one_clear_line(tiny, x, message):
    with pytest.raises(ValueError, match=message):
        tiny(x)


def test_official_settings_flops_differ_from_official_only_by_redundant_projections():
    """Official STViT-R-Swin-S: 5.80 GMACs at 224 (method.md). The official code projects the
    keys/values of each unfolded 10x10 neighbourhood (4 windows x (100 + 9) tokens) instead of
    each of the 196 + 36 tokens once, per unit: ours is lower by exactly that redundancy."""
    from stvit_mm.analysis import count_flops
    model = STViTSwin('small', preset='official', out_indices=(3, )).eval()
    with torch.no_grad():
        ours = count_flops(model, (torch.randn(1, 3, 224, 224), ))['flops'] + 768 * 1000
    C = 384
    redundant = 3 * (4 * (100 + 9) - (196 + 36)) * C * 2 * C
    assert abs(ours + redundant - 5.80e9) / 5.80e9 < 0.005


@pytest.mark.parametrize('arch, units', [('tiny', 1), ('small', 3)])
def test_stvit_swin_plan_16_semantic_tokens_per_window(arch, units):
    """STViT-Swin (no recovery): 4x4 semantic tokens per window in stage 3's units, the last
    one hands its grid on (8x8 at 224), stage 4 runs on 4x4; every Swin block keeps a layer."""
    model = STViTSwin(arch, recovery=False, out_indices=(3, )).eval()
    stage3 = model.stages[2]
    assert len(stage3.units) == units
    assert all(u.pool_size == (4, 4) for u in stage3.units)
    assert [u.recovery is not None for u in stage3.units] == [True] * (units - 1) + [False]
    layers = len(stage3.blocks) + sum(3 + len(u.semantic_blocks) + (u.recovery is not None)
                                      for u in stage3.units)
    assert layers == model.arch_settings['depths'][2]
    with torch.no_grad():
        stage4, = model(torch.randn(1, 3, 224, 224))
    assert stage4.shape == (1, 768, 4, 4)
    # STViT-R keeps the preset's grid (Swin-T 2x2, Swin-S 3x3)
    assert STViTSwin(arch).stages[2].units[0].pool_size == ((2, 2) if arch == 'tiny' else (3, 3))


# ------------------------------------------------------------------ any window, large, stages

@pytest.mark.parametrize('arch, recovery, window, pool, neighbourhood', [
    ('tiny', True, 7, 2, 10), ('small', True, 7, 3, 10), ('base', False, 7, 4, 10),
    # window 12 (the 384-pixel Swins): the same share of the window
    ('tiny', True, 12, 3, 17), ('base', True, 12, 5, 17), ('large', True, 12, 5, 17),
    ('base', False, 12, 7, 17), ('tiny', True, 4, 1, 6), ('base', True, 16, 7, 23)])
def test_semantic_grid_and_neighbourhood_follow_the_window(arch, recovery, window, pool,
                                                          neighbourhood):
    model = STViTSwin(arch, recovery=recovery, window_size=window,
                      out_indices=(0, 1, 2, 3) if recovery else (3, ))
    unit = model.stages[2].units[0]
    assert unit.pool_size == (pool, pool) and unit.neighbourhood == (neighbourhood, ) * 2


@pytest.mark.parametrize('window', [4, 5, 9, 12, 16])
@pytest.mark.parametrize('hw', [(97, 130), (32, 32), (240, 200)])
def test_any_window_runs_at_any_size(window, hw):
    model = STViTSwin(dict(embed_dims=16, depths=(2, 2, 6, 2), num_heads=(1, 2, 4, 8)),
                      window_size=window).eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, *hw))
    assert [tuple(o.shape[2:]) for o in outs] == [(-(-hw[0] // s), -(-hw[1] // s))
                                                    for s in (4, 8, 16, 32)]
    assert all(torch.isfinite(o).all() for o in outs)


def test_large_preset_and_five_stages():
    large = STViTSwin('large', out_indices=(3, ))
    assert large.num_features == [192, 384, 768, 1536]
    assert [s.units[0].generator.layer1.attn.num_heads for s in large.stages[2:3]] == [24]
    assert len(large.stages[2].units) == 3
    # mmdet's RTMDet Swin-B P6: five stages; units go to the deepest stage, as for four
    five = STViTSwin(dict(embed_dims=16, depths=(2, 2, 6, 2, 1), num_heads=(1, 2, 4, 8, 16)),
                     out_indices=(1, 2, 3, 4)).eval()
    assert five.arch_settings['units'] == (0, 0, 1, 0, 0)
    with torch.no_grad():
        outs = five(torch.randn(1, 3, 128, 192))
    assert [tuple(o.shape) for o in outs] == [(1, 32, 16, 24), (1, 64, 8, 12), (1, 128, 4, 6),
                                              (1, 256, 2, 3)]


def test_stock_swin_arguments_are_honoured():
    """What a stock mmdet Swin-S config holds, merged under type='STViTSwin'."""
    model = STViTSwin(pretrain_img_size=224, embed_dims=96, depths=[2, 2, 18, 2],
                      num_heads=[3, 6, 12, 24], window_size=7, mlp_ratio=4, qkv_bias=True,
                      qk_scale=None, drop_rate=0., attn_drop_rate=0., drop_path_rate=0.2,
                      patch_norm=True, out_indices=(0, 1, 2, 3), with_cp=False,
                      convert_weights=True, strides=(4, 2, 2, 2), act_cfg=dict(type='GELU'),
                      norm_cfg=dict(type='LN'), pretrained='swin_s.pth')
    assert model.arch_settings == STViTSwin._resolve_arch('small')  # the sizes of a preset
    assert model.init_cfg == dict(type='Pretrained', checkpoint='swin_s.pth')
    # mmpretrain's classifier conventions: stage 4 only, a window no larger than the map
    mmpretrain = STViTSwin(arch='base', img_size=384, convention='mmpretrain',
                           stage_cfgs=dict(block_cfgs=dict(window_size=12)))
    assert mmpretrain.out_indices == (3, ) and mmpretrain.stages[0].blocks[0].window == (12, 12)
    assert mmpretrain.stages[3].blocks[0].fit_window


def test_conventions_come_from_the_scope_or_the_argument_never_from_img_size():
    from mmengine.registry import MODELS, init_default_scope
    arch = dict(embed_dims=16, depths=(2, 2, 6, 2), num_heads=(1, 2, 4, 8))
    plain = STViTSwin(arch, img_size=224, pad_small_map=False)  # no task scope: mmdet's
    assert plain.convention == 'mmdet' and plain.out_indices == (0, 1, 2, 3)
    assert not plain.stages[3].blocks[0].fit_window
    init_default_scope('mmpretrain')
    built = MODELS.build(dict(type='STViTSwin', arch=arch))
    assert built.convention == 'mmpretrain' and built.out_indices == (3, )
    assert built.stages[3].blocks[0].fit_window
    assert STViTSwin(arch, convention='mmdet').out_indices == (0, 1, 2, 3)  # the argument wins
    with pytest.raises(ValueError, match="^STViTSwin: convention must be one of .* 'mmseg'$"):
        STViTSwin(arch, convention='mmseg')
    with pytest.raises(TypeError, match="^STViTSwin: unexpected argument 'img_sise'$"):
        STViTSwin(arch, img_sise=224)


@pytest.mark.parametrize('fit_window', [False, True])
def test_training_after_inference_mode_at_the_same_size(fit_window):
    # Window layouts, neighbourhoods and sub-window position indices are cached per size; a
    # cache filled under torch.inference_mode (benchmark, inferencer) must serve autograd too.
    model = STViTSwin(arch=dict(embed_dims=32, depths=(2, 2, 6, 2), num_heads=(1, 2, 4, 8)),
                      fit_window=fit_window)
    x = torch.randn(1, 3, 100, 76)
    with torch.inference_mode():
        model.eval()(x)
    out = model.train()(x)
    sum(o.sum() for o in out).backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize('grid,window,pool', [((8, 8), (7, 7), (4, 4)),
                                              ((15, 22), (7, 7), (3, 3)),
                                              ((13, 9), (12, 12), (5, 5)),
                                              ((50, 84), (7, 7), (3, 3)),
                                              ((14, 14), (7, 7), (4, 4))])
def test_real_semantic_grid_is_the_block_of_tokens_pooled_from_real_ones(grid, window, pool):
    from stvit_mm.models.layers.grouping import window_layout
    from stvit_mm.models.layers.unit import (
        pooled_validity,
        real_semantic_grid,
        semantic_tokens_to_grid,
    )
    layout = window_layout(grid, window, (0, 0), torch.device('cpu'))
    keep = (layout.valid if layout.valid is not None else
            torch.ones(layout.num_windows, window[0] * window[1], dtype=torch.bool))
    valid = pooled_validity(keep, window, pool)  # (windows, tokens per window)
    full = [-(-g // w) * p for g, w, p in zip(grid, window, pool)]
    on_grid = semantic_tokens_to_grid(valid.reshape(1, -1, 1).float(), grid, window, pool)
    extent = real_semantic_grid(grid, window, pool)
    expected = torch.zeros(full, dtype=torch.bool)
    expected[:extent[0], :extent[1]] = True
    assert torch.equal(on_grid.reshape(full) > 0, expected)


def test_without_recovery_tokens_pooled_from_padding_are_not_handed_on():
    # 128x128: stage 3 is 8x8, two windows per side, the second holding one real row/column;
    # of its 4x4 semantic tokens per window only the first row/column pool a real token, so
    # the grid handed to stage 4 is 5x5 (not 8x8), merged to 3x3.
    model = STViTSwin('tiny', recovery=False, out_indices=(3, )).eval()
    with torch.no_grad():
        stage4, = model(torch.randn(1, 3, 128, 128))
    assert stage4.shape == (1, 768, 3, 3)
