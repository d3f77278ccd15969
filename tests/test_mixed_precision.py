"""Mixed precision: the three backbones under autocast (bf16 on CPU, fp16 on CUDA) give
finite outputs close to fp32.

bf16 keeps 8 mantissa bits (relative rounding 2**-9, about 0.2%) in every matmul/conv, and
the errors add up over ~12 layers, so outputs are compared by relative error of the whole
map (``||a - b|| / ||b||``) and cosine similarity, not element-wise: a few elements near
zero have large relative errors without anything being wrong. Measured on CPU: relative
errors 0.3-1.0%, cosine > 0.9999; the bounds (5%, 0.998) leave room for other CPUs' kernels.
"""
import pytest
import torch

from stvit_mm.models import STViT, STViTSwin, STViTVideoSwin

CASES = {
    # name: (builder, input shape); the real tiny archs, new layers made visible
    'STViT': (lambda: STViT('tiny'), (2, 3, 64, 96)),
    'STViT-R': (lambda: STViT('tiny', recovery=True), (2, 3, 64, 96)),
    'STViTSwin': (lambda: STViTSwin('tiny', drop_path_rate=0.0), (1, 3, 97, 130)),
    'STViTVideoSwin': (lambda: STViTVideoSwin('tiny', out_indices=(0, 1, 2, 3),
                                              drop_path_rate=0.0), (1, 3, 6, 64, 80)),
}


def _build(name):
    torch.manual_seed(0)
    builder, shape = CASES[name]
    model = builder().eval()
    for key, p in model.named_parameters():  # layer scales start at 1e-5
        if key.endswith('gamma'):
            p.data.fill_(0.5)
    return model, torch.randn(shape)


def _compare(low, full, max_rel=0.05, min_cos=0.998):
    assert len(low) == len(full)
    for a, b in zip(low, full):
        assert a.shape == b.shape
        assert torch.isfinite(a).all()
        a, b = a.float().flatten(), b.float().flatten()
        rel = float((a - b).norm() / b.norm())
        cos = float(torch.nn.functional.cosine_similarity(a, b, dim=0))
        assert rel < max_rel and cos > min_cos, f'relative error {rel:.4f}, cosine {cos:.5f}'


@pytest.mark.parametrize('name', list(CASES))
def test_bf16_autocast_on_cpu(name):
    model, x = _build(name)
    dtypes = set()
    linear = next(m for m in model.modules() if isinstance(m, torch.nn.Linear))
    linear.register_forward_hook(lambda module, args, out: dtypes.add(out.dtype))
    with torch.no_grad():
        full = model(x)
        with torch.autocast('cpu', dtype=torch.bfloat16):
            low = model(x)
    assert dtypes == {torch.float32, torch.bfloat16}  # autocast did run the matmuls in bf16
    _compare(low, full)


def test_bf16_autocast_training_step_has_finite_gradients():
    torch.manual_seed(0)
    model = STViTSwin(dict(embed_dims=16, depths=(2, 2, 6, 2), num_heads=(1, 2, 4, 8))).train()
    x = torch.randn(2, 3, 97, 130)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        loss = sum(o.float().square().mean() for o in model(x))
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.skipif(not torch.cuda.is_available(), reason='fp16 autocast needs a CUDA device')
@pytest.mark.parametrize('name', list(CASES))
def test_fp16_autocast_on_cuda(name):
    model, x = _build(name)
    model, x = model.cuda(), x.cuda()
    with torch.no_grad():
        full = model(x)
        with torch.autocast('cuda', dtype=torch.float16):
            low = model(x)
    _compare(low, full, max_rel=0.02, min_cos=0.9995)  # fp16 keeps 11 mantissa bits
