"""Forward outputs of every config's backbone and of bare backbones, reduced to fingerprints.

``python tests/bit_identical.py --save`` writes ``tests/data/bit_identical.json`` from the code
as it is; ``tests/test_bit_identical.py`` recomputes and asserts every output's raw bytes
(sha256) are unchanged. Weights are set from each parameter's name (not from the order modules
are built in), so a refactor that keeps parameter names and computation keeps every hash.
"""
import argparse
import glob
import hashlib
import json
import os
import zlib

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, 'tests', 'data', 'bit_identical.json')
IMAGES = ((64, 96), (70, 90))  # the second pads to whole patches and windows
VIT_IMAGES = ((64, 96), (80, 112))  # STViT takes whole patches; both resize the position table
CLIP = (4, 64, 64)
BARE = {
    'swin-t': dict(type='STViTSwin', arch='tiny'),
    'swin-t-official': dict(type='STViTSwin', arch='tiny', preset='official'),
    'swin-s-official-det': dict(type='STViTSwin', arch='small', preset='official-det'),
    'swin-t-no-recovery': dict(type='STViTSwin', arch='tiny', recovery=False, out_indices=(3, )),
    'deit-t': dict(type='STViT', arch='tiny', img_size=(64, 96)),
    'deit-t-recovery': dict(type='STViT', arch='tiny', img_size=(64, 96), recovery=True),
    'video-swin-t': dict(type='STViTVideoSwin', arch='tiny', out_indices=(0, 1, 2, 3)),
}


def config_files():
    return sorted(os.path.relpath(p, ROOT)
                  for p in glob.glob(os.path.join(ROOT, 'configs', '*', '*.py')))


def set_weights(model: torch.nn.Module) -> None:
    """Every parameter from its own name: 1-d weights near 1, the rest small and random."""
    with torch.no_grad():
        for name, param in model.named_parameters():
            gen = torch.Generator().manual_seed(zlib.crc32(name.encode()))
            noise = torch.randn(param.shape, generator=gen, dtype=torch.float64)
            if param.dim() == 1 and name.rsplit('.', 1)[-1] in ('weight', 'gamma', 'scale'):
                value = 1 + 0.1 * noise
            elif param.dim() == 1:
                value = 0.1 * noise
            else:
                value = 0.05 * noise
            param.copy_(value.to(param.dtype))


def fingerprint(out) -> list:
    """Each output tensor: shape, sha256 of its raw bytes, sum and 8 fixed samples."""
    if isinstance(out, torch.Tensor):
        flat = out.detach().contiguous().reshape(-1)
        idx = torch.linspace(0, flat.numel() - 1, 8).long()
        return [dict(shape=list(out.shape),
                     sha256=hashlib.sha256(flat.numpy().tobytes()).hexdigest(),
                     sum=float(flat.double().sum()), samples=flat[idx].tolist())]
    if isinstance(out, (list, tuple)):
        return [f for item in out for f in fingerprint(item)]
    raise TypeError(f'unexpected output type {type(out).__name__}')


def _inputs(kind: str):
    gen = torch.Generator().manual_seed(0)
    if kind == 'STViTVideoSwin':
        return {'clip': torch.randn(1, 3, *CLIP, generator=gen)}
    sizes = VIT_IMAGES if kind == 'STViT' else IMAGES
    return {f'{h}x{w}': torch.randn(1, 3, h, w, generator=gen) for h, w in sizes}


def _run(backbone) -> dict:
    set_weights(backbone)
    backbone.eval()
    with torch.no_grad():
        return {name: fingerprint(backbone(x))
                for name, x in _inputs(type(backbone).__name__).items()}


def _config_backbone(rel: str):
    from stvit_mm.utils import build_model, load_config
    cfg = load_config(rel)
    return build_model(cfg).backbone


def _bare_backbone(cfg: dict):
    from mmengine.registry import MODELS, init_default_scope

    import stvit_mm.models  # noqa: F401
    init_default_scope('mmengine')
    return MODELS.build(dict(cfg))


def compute(names=None) -> dict:
    torch.set_num_threads(1)
    results = {}
    for rel in config_files():
        if names is None or rel in names:
            results[rel] = _run(_config_backbone(rel))
    for key, cfg in BARE.items():
        if names is None or key in names:
            results[key] = _run(_bare_backbone(cfg))
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--save', action='store_true', help=f'write {DATA}')
    args = parser.parse_args()
    results = dict(torch=torch.__version__, outputs=compute())
    if args.save:
        with open(DATA, 'w') as f:
            json.dump(results, f, indent=1)
    print(json.dumps({k: len(v) for k, v in results['outputs'].items()}, indent=1))


if __name__ == '__main__':
    main()
