"""STViT backbone: shapes, gradients, input checks, fused vs explicit attention."""
import pytest
import torch

from stvit_mm.models import STViT
from stvit_mm.models.layers import fused_attn

DIMS = {'tiny': 192, 'small': 384, 'base': 768}


@pytest.fixture(autouse=True)
def seed():
    torch.manual_seed(0)


@pytest.mark.parametrize('arch', sorted(DIMS))
def test_arch_output_shapes(arch):
    model = STViT(arch).eval()
    with torch.no_grad():
        (out, ) = model(torch.randn(2, 3, 224, 224))
    assert out.shape == (2, DIMS[arch])
    assert len(model.blocks) == 4 and len(model.semantic_blocks) == 6
    assert model.generator.num_tokens == 16


@pytest.mark.parametrize('hw', [(16, 16), (48, 80), (224, 160), (112, 304), (240, 32)])
def test_odd_grids(hw):
    model = STViT('tiny', img_size=224, patch_size=16, recovery=True).eval()
    with torch.no_grad():
        (fmap, ) = model(torch.randn(1, 3, *hw))
    assert fmap.shape == (1, 192, hw[0] // 16, hw[1] // 16)
    assert torch.isfinite(fmap).all()
    cls = STViT('tiny').eval()
    with torch.no_grad():
        assert cls(torch.randn(1, 3, *hw))[0].shape == (1, 192)


def test_recovery_keeps_depth_and_returns_featmap():
    model = STViT('small', recovery=True)
    assert len(model.semantic_blocks) == 5 and model.recovery is not None
    depth = len(model.blocks) + 2 + len(model.semantic_blocks) + 1
    assert depth == 12


@pytest.mark.parametrize('recovery', [False, True])
def test_every_parameter_gets_a_gradient(recovery):
    model = STViT('tiny', img_size=64, patch_size=8, recovery=recovery, drop_path_rate=0.1)
    (out, ) = model(torch.randn(2, 3, 64, 48))
    out.square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    assert not missing, f'parameters without gradient: {missing}'


def test_fused_and_explicit_paths_agree():
    model = STViT('tiny', recovery=True).eval()
    x = torch.randn(2, 3, 96, 128)
    with torch.no_grad(), fused_attn(True):
        fused = model(x)[0]
    with torch.no_grad(), fused_attn(False):
        explicit = model(x)[0]
    torch.testing.assert_close(fused, explicit, rtol=1e-4, atol=1e-4)


def test_batch_elements_are_independent():
    model = STViT('tiny').eval()
    x = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        full = model(x)[0]
        single = model(x[1:2])[0]
    torch.testing.assert_close(full[1:2], single, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('x, message', [
    (torch.randn(1, 1, 64, 64), 'expected 3 input channels, got 1'),
    (torch.randn(3, 64, 64), 'expected images \\(B, C, H, W\\), got a 3-D tensor'),
    (torch.randn(0, 3, 64, 64), 'empty batch'),
    (torch.randn(1, 3, 64, 70), 'not a multiple of patch_size 16'),
])
def test_bad_input_gets_one_clear_line(x, message):
    with pytest.raises(ValueError, match=message):
        STViT('tiny')(x)


@pytest.mark.parametrize('kwargs, message', [
    (dict(arch='huge'), "unknown arch 'huge'"),
    (dict(arch=dict(embed_dims=64, num_heads=2, depth=3)), "unknown arch keys \\['depth'\\]"),
    (dict(arch=dict(embed_dims=64)), "misses \\['num_heads'\\]"),
    (dict(out_type='featmap'), 'needs recovery=True'),
    (dict(out_type='cls_token'), "unknown out_type 'cls_token'"),
    (dict(img_size=100), 'not a multiple of patch_size'),
])
def test_bad_config_gets_one_clear_line(kwargs, message):
    with pytest.raises(ValueError, match=message):
        STViT(**kwargs)


def test_custom_arch_dict_plan():
    model = STViT(dict(embed_dims=64, num_heads=2, num_full_layers=2, num_semantic_layers=3,
                       pool_size=(2, 3)))
    assert len(model.blocks) == 2 and len(model.semantic_blocks) == 3
    assert model(torch.randn(1, 3, 64, 64))[0].shape == (1, 64)
    assert model.generator.num_tokens == 6
