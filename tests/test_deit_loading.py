"""DeiT weights (mmpretrain and official DeiT / timm layouts) load into STViT."""
import pytest
import torch
from mmpretrain.models import VisionTransformer

from stvit_mm.models import STViT

NEW_PARAMS = {'generator.centres', 'generator.layer1.ls1.gamma', 'generator.layer1.ls2.gamma',
              'generator.layer2.ls1.gamma', 'generator.layer2.ls2.gamma'}


def timm_deit_state_dict(dim=192, depth=12, classes=1000):
    """Random tensors with the exact names and shapes of an official DeiT-Tiny checkpoint."""
    sd = {'cls_token': torch.randn(1, 1, dim), 'pos_embed': torch.randn(1, 197, dim),
          'patch_embed.proj.weight': torch.randn(dim, 3, 16, 16),
          'patch_embed.proj.bias': torch.randn(dim), 'norm.weight': torch.randn(dim),
          'norm.bias': torch.randn(dim), 'head.weight': torch.randn(classes, dim),
          'head.bias': torch.randn(classes)}
    for i in range(depth):
        for name, shape in (('norm1', (dim, )), ('norm2', (dim, )), ('attn.qkv', (3 * dim, dim)),
                            ('attn.proj', (dim, dim)), ('mlp.fc1', (4 * dim, dim)),
                            ('mlp.fc2', (dim, 4 * dim))):
            sd[f'blocks.{i}.{name}.weight'] = torch.randn(shape)
            sd[f'blocks.{i}.{name}.bias'] = torch.randn(shape[0])
    return sd


@pytest.mark.parametrize('recovery', [False, True])
def test_mmpretrain_deit_maps_every_key(recovery):
    torch.manual_seed(0)
    deit = VisionTransformer(arch='deit-small')
    sd = deit.state_dict()
    model = STViT('small', recovery=recovery)
    result = model.load_state_dict(dict(sd), strict=False)
    new = NEW_PARAMS | ({'recovery.ls1.gamma', 'recovery.ls2.gamma'} if recovery else set())
    assert set(result.missing_keys) == new
    assert result.unexpected_keys == []
    assert model.last_load_report['layout'] == 'mmpretrain'
    assert set(model.last_load_report['not_loaded']) == {'cls_token'}
    ours = model.state_dict()
    C = 384
    torch.testing.assert_close(ours['blocks.3.attn.qkv.weight'], sd['layers.3.attn.qkv.weight'])
    torch.testing.assert_close(ours['blocks.0.mlp.fc1.weight'],
                               sd['layers.0.ffn.layers.0.0.weight'])
    torch.testing.assert_close(ours['generator.layer1.attn.q.weight'],
                               sd['layers.4.attn.qkv.weight'][:C])
    torch.testing.assert_close(ours['generator.layer2.attn.kv.bias'],
                               sd['layers.5.attn.qkv.bias'][C:])
    last = 'recovery' if recovery else 'semantic_blocks.5'
    torch.testing.assert_close(ours[f'{last}.norm2.weight'], sd['layers.11.ln2.weight'])
    torch.testing.assert_close(ours['norm.weight'], sd['ln1.weight'])
    torch.testing.assert_close(ours['pos_embed'], sd['pos_embed'][:, 1:])


def test_loaded_blocks_compute_what_deit_computes():
    torch.manual_seed(0)
    deit = VisionTransformer(arch='deit-small')
    deit.eval()  # mmpretrain's train() returns None: no chaining
    model = STViT('small').eval()
    model.load_state_dict(deit.state_dict(), strict=False)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        patches, _ = deit.patch_embed(x)
        ours = model.patch_embed.proj(x).flatten(2).transpose(1, 2)
        torch.testing.assert_close(ours, patches)
        tokens = torch.randn(2, 197, 384)
        for i in range(4):
            torch.testing.assert_close(model.blocks[i](tokens), deit.layers[i](tokens),
                                       rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(model.semantic_blocks[2](tokens), deit.layers[8](tokens),
                                   rtol=1e-4, atol=1e-4)


def test_official_deit_file_through_pretrained_init(tmp_path):
    sd = timm_deit_state_dict()
    path = tmp_path / 'deit_tiny_patch16_224.pth'
    torch.save({'model': sd}, path)  # the official release wraps the state dict
    model = STViT('tiny', img_size=160, init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    model.init_weights()
    report = model.last_load_report
    assert report['layout'] == 'timm'
    assert set(report['not_loaded']) == {'cls_token', 'head.weight', 'head.bias'}
    ours = model.state_dict()
    torch.testing.assert_close(ours['blocks.2.norm1.bias'], sd['blocks.2.norm1.bias'])
    torch.testing.assert_close(ours['generator.layer1.attn.kv.weight'],
                               sd['blocks.4.attn.qkv.weight'][192:])
    torch.testing.assert_close(ours['semantic_blocks.0.mlp.fc2.weight'],
                               sd['blocks.6.mlp.fc2.weight'])
    # pos_embed trained at 14x14 is resized to the 10x10 grid of 160x160 inputs
    assert ours['pos_embed'].shape == (1, 100, 192)


def test_our_own_checkpoint_round_trips_and_resizes_pos_embed():
    src = STViT('tiny', img_size=224)
    dst = STViT('tiny', img_size=128)
    result = dst.load_state_dict(src.state_dict())
    assert not result.missing_keys and not result.unexpected_keys
    assert dst.last_load_report is None
    assert dst.pos_embed.shape == (1, 64, 192)


def test_non_square_pos_embed_is_rejected():
    sd = STViT('tiny', img_size=(224, 160)).state_dict()
    with pytest.raises(ValueError, match='not a square grid'):
        STViT('tiny', img_size=224).load_state_dict(sd)
