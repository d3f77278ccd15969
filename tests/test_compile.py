"""torch.compile: STViT and STViTSwin compile and match eager.

Backend: 'aot_eager' runs dynamo tracing and AOT autograd (functionalisation,
decompositions), which is where model code breaks; inductor adds C++ code
generation that took 70 s (cold cache) for STViT-DeiT-Tiny and over 2 minutes
for a small STViTSwin on this 2-core CPU, so it runs only with --runslow.
Graph breaks are allowed where noted; errors and wrong outputs are not.
"""
import pytest
import torch

from stvit_mm.models.backbones.stvit import STViT
from stvit_mm.models.backbones.stvit_swin import STViTSwin
from stvit_mm.models.layers import fused_attn

dynamo = pytest.importorskip('torch._dynamo')


@pytest.fixture(autouse=True)
def fresh_dynamo():
    """Each test compiles from scratch and leaves no compiled code behind."""
    dynamo.reset()
    yield
    dynamo.reset()


def _deit(recovery: bool) -> STViT:
    torch.manual_seed(0)
    # DeiT-Tiny widths at a small input: 64x64, patch 8 -> 8x8 tokens, 16 semantic tokens.
    return STViT('tiny', img_size=64, patch_size=8, recovery=recovery).eval()


def _swin() -> STViTSwin:
    torch.manual_seed(0)
    return STViTSwin('tiny').eval()


def _assert_close(eager, compiled) -> None:
    assert len(eager) == len(compiled)
    for a, b in zip(eager, compiled):
        assert a.shape == b.shape
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize('fused, recovery', [(True, False), (False, True)],
                         ids=['sdpa-avg', 'explicit-recovery'])
def test_stvit_deit_compiles_to_one_graph(fused, recovery):
    model = _deit(recovery)
    x = torch.randn(2, 3, 64, 64)
    with fused_attn(fused), torch.no_grad():
        eager = model(x)
        # fullgraph: any graph break in STViT is an error (there are none).
        compiled = torch.compile(model, backend='aot_eager', fullgraph=True)
        _assert_close(eager, compiled(x))
        # another input of the same shape reuses the graph and stays right
        y = torch.randn(2, 3, 64, 64)
        _assert_close(model(y), compiled(y))


def test_stvit_deit_compiled_gradients_match():
    model = _deit(recovery=True)
    x = torch.randn(2, 3, 64, 64)
    eager_out = model(x)[0].square().mean()
    eager_grads = torch.autograd.grad(eager_out, list(model.parameters()), allow_unused=True)
    compiled = torch.compile(model, backend='aot_eager', fullgraph=True)
    out = compiled(x)[0].square().mean()
    grads = torch.autograd.grad(out, list(model.parameters()), allow_unused=True)
    torch.testing.assert_close(out, eager_out, rtol=1e-4, atol=1e-6)
    for g, e in zip(grads, eager_grads):
        assert (g is None) == (e is None)
        if g is not None:
            torch.testing.assert_close(g, e, rtol=1e-3, atol=1e-7)


def test_stvit_swin_compiles_and_matches_eager():
    """STViT-R-Swin-T at 128x128 (stage 3: 8x8 tokens, padded to 14x14 windows + masks)."""
    model = _swin()
    x = torch.randn(1, 3, 128, 128)
    with torch.no_grad():
        eager = model(x)
        # dynamic=False: graph breaks split the stages into frames that see several shapes;
        # static recompiles are faster here than dynamo's switch to dynamic shapes.
        compiled = torch.compile(model, backend='aot_eager', dynamic=False)
        _assert_close(eager, compiled(x))
        _assert_close(eager, compiled(x))


def test_stvit_swin_compiles_to_one_graph():
    model = _swin()
    x = torch.randn(1, 3, 128, 128)
    with torch.no_grad():
        eager = model(x)
        compiled = torch.compile(model, backend='aot_eager', fullgraph=True)
        _assert_close(eager, compiled(x))


@pytest.mark.slow
def test_stvit_deit_inductor():
    model = _deit(recovery=False)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        eager = model(x)
        compiled = torch.compile(model, backend='inductor', fullgraph=True)
        _assert_close(eager, compiled(x))
