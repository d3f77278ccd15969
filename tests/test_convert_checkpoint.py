"""tools/convert_checkpoint.py: every source layout converts completely, converted models compute
what the stock models compute, and a key the tool does not know stops it unless --ignore'd.

Synthetic checkpoints carry the exact names and shapes of the real releases: OpenMMLab ones
are stock models' state dicts, official Swin / DeiT / timm / STViT-R-Swin ones are renamed
from them (names as in the official code), holding random tensors.
"""
import json
import os
import re
import subprocess
import sys

import pytest
import torch
from mmdet.models.backbones import SwinTransformer as MMDetSwin
from mmdet.models.backbones.swin import swin_converter
from mmengine.runner import load_checkpoint
from mmpretrain.models import SwinTransformer as MMPretrainSwin
from mmpretrain.models import VisionTransformer
from safetensors.torch import save_file

import convert_checkpoint as tool
from stvit_mm.checkpoints import compact_keys
from stvit_mm.checkpoints import whole_checkpoint as conversion
from stvit_mm.models import STViT, STViTSwin
from stvit_mm.models.layers.blocks import CrossBlock
from stvit_mm.utils import build_model, load_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_SWIN = dict(embed_dims=32, depths=(2, 2, 6, 2), num_heads=(1, 2, 4, 8))
UNSPARSIFIED = dict(TINY_SWIN, units=(0, 0, 0, 0))
TINY_VIT = dict(embed_dims=64, num_layers=12, num_heads=2, feedforward_channels=256)
# mmdet's Mask R-CNN Swin-T, shrunk: a 32-dim Swin and a narrow box head keep it quick
TINY_DETECTOR = {'model.neck.in_channels': [32, 64, 128, 256],
                 'model.roi_head.bbox_head.fc_out_channels': 64}


@pytest.fixture(autouse=True)
def seed():
    torch.manual_seed(0)


def bare(backbone, name='test backbone'):
    return conversion.Target(model=backbone, backbone=backbone, name=name, whole_model=False)


def assert_every_source_key_accounted_for(result):
    mapped, dropped, ignored = set(result.mapped), set(result.dropped), set(result.ignored)
    assert not mapped & dropped
    assert set(result.source_keys) <= mapped | dropped | ignored | set(result.carried)


def gammas_to_one(module):
    """New layer scales start at 1e-5; at 1 a cross block on (x, x) is a plain ViT block."""
    for name, p in module.named_parameters():
        if name.endswith('gamma'):
            p.data.fill_(1.0)
    return module


def mmdet_swin(**kwargs):
    model = MMDetSwin(window_size=7, drop_path_rate=0.0, **TINY_SWIN, **kwargs)
    model.eval()  # not chained: mmdet's SwinTransformer.train() returns None
    return model


# ----------------------------------------------------------- official layouts, from stock names
def official_swin_state_dict(mmdet_state, depths=TINY_SWIN['depths'], img=224, window=7):
    """A Microsoft Swin release's tensors (what its ``{'model': ...}`` holds), random values.

    Names from mmdet's by the official code's naming; the classifier normalises only the last
    stage (``norm``); shifted blocks keep their attention mask as a buffer where the map is
    larger than a window.
    """
    renames = (('attn.w_msa.', 'attn.'), ('ffn.layers.0.0.', 'mlp.fc1.'),
               ('ffn.layers.1.', 'mlp.fc2.'), ('patch_embed.projection.', 'patch_embed.proj.'))
    state = {}
    for key, value in mmdet_state.items():
        if re.match(r'norm[012]\.', key):
            continue
        name = 'norm.' + key[len('norm3.'):] if key.startswith('norm3.') else key
        name = name.replace('stages.', 'layers.', 1)
        for old, new in renames:
            name = name.replace(old, new)
        state[name] = torch.randn_like(value) if value.is_floating_point() else value.clone()
    side = img // 4
    for i, depth in enumerate(depths):
        for j in range(1, depth, 2) if side > window else ():
            state[f'layers.{i}.blocks.{j}.attn_mask'] = torch.zeros((side // window)**2, 49, 49)
        side //= 2
    dim = state['norm.weight'].shape[0]
    state['head.weight'], state['head.bias'] = torch.randn(1000, dim), torch.randn(1000)
    return state


_UNIT_LAYERS = ('window_block', 'generator.layer1', 'generator.layer2', 'semantic_blocks.0',
                'semantic_blocks.1', 'recovery')


def official_stvit_r_swin_state_dict(model, img=224, window=7):
    """An official STViT-R-Swin release's tensors, taken from our model of the same settings.

    Official names (changsn/STViT-R, models/swin_transformer.py and layers.py): stage 3 is one
    list of blocks, 6 per unit; new layers hold ``layer_scale_{1,2}`` and separate ``attn.q``
    / ``attn.kv`` (also the semantic self-attention blocks); Swin blocks keep their
    ``relative_position_index`` buffer; the classifier has one final ``norm`` and a ``head``.
    """
    state = {}
    for key, value in model.state_dict().items():
        if key.endswith('pooled_grid'):  # our generators' pool-size record: not official
            continue
        unit = re.match(r'stages\.(\d)\.units\.(\d+)\.(.+?)\.(attn|norm|mlp|ls)(.*)$', key)
        if unit:
            stage, u, layer, rest = unit.group(1), int(unit.group(2)), unit.group(3), \
                unit.group(4) + unit.group(5)
            base = f'layers.{stage}.blocks.{6 * u + _UNIT_LAYERS.index(layer)}.'
            rest = re.sub(r'^ls(\d)\.gamma$', r'layer_scale_\1', rest)
            if layer.startswith('semantic') and rest.startswith('attn.qkv.'):
                C = value.shape[0] // 3
                kind = rest.split('.')[-1]
                state[f'{base}attn.q.{kind}'], state[f'{base}attn.kv.{kind}'] = \
                    value[:C], value[C:]
            else:
                state[base + rest] = value
        elif key.startswith('stages.'):
            state['layers.' + key[len('stages.'):]] = value
        elif key.startswith('norm3.'):
            state['norm.' + key[len('norm3.'):]] = value
        elif not re.match(r'norm[012]\.', key):  # the classifier normalises stage 4 only
            state[key] = value
    side = img // 4
    for i, depth in enumerate(model.arch_settings['depths']):
        swin_blocks = range(0, depth, 6) if i == 2 else range(depth)
        for j in swin_blocks:
            state[f'layers.{i}.blocks.{j}.attn.relative_position_index'] = \
                torch.zeros(49, 49, dtype=torch.long)
            if j % 2 and side > window:
                state[f'layers.{i}.blocks.{j}.attn_mask'] = torch.zeros((side // window)**2,
                                                                        49, 49)
        side //= 2
    dim = state['norm.weight'].shape[0]
    state['head.weight'], state['head.bias'] = torch.randn(1000, dim), torch.randn(1000)
    return state


def official_stvit_r_swin(**kwargs):
    return STViTSwin(TINY_SWIN, preset='official', drop_path_rate=0.0,
                     **kwargs).eval()


def timm_deit_state_dict(mmpretrain_state, num_classes=1000):
    """An official DeiT / timm ViT file's tensors, renamed from mmpretrain's VisionTransformer."""
    renames = (('ln1.', 'norm1.'), ('ln2.', 'norm2.'), ('ffn.layers.0.0.', 'mlp.fc1.'),
               ('ffn.layers.1.', 'mlp.fc2.'))
    state = {}
    for key, value in mmpretrain_state.items():
        if key.startswith('layers.'):
            name = 'blocks.' + key[len('layers.'):]
            for old, new in renames:
                name = name.replace(old, new)
        elif key.startswith('ln1.'):
            name = 'norm.' + key[len('ln1.'):]
        else:
            name = key.replace('patch_embed.projection.', 'patch_embed.proj.')
        state[name] = torch.randn_like(value)
    dim = mmpretrain_state['cls_token'].shape[-1]
    state['head.weight'], state['head.bias'] = torch.randn(num_classes, dim), torch.randn(
        num_classes)
    return state


# ---------------------------------------------------------------------------------- Swin
def test_mmdet_swin_gives_mmdet_output():
    ref = mmdet_swin()
    ours = STViTSwin(UNSPARSIFIED, drop_path_rate=0.0).eval()
    result = conversion.convert_checkpoint(ref.state_dict(), 'mmdet', bare(ours))
    assert_every_source_key_accounted_for(result)
    assert set(result.dropped.values()) == {'buffer recomputed from the window size'}
    assert result.new == {} and result.backbone_prefix == ''
    fresh = STViTSwin(UNSPARSIFIED, drop_path_rate=0.0).eval()
    fresh.load_state_dict(result.state_dict, strict=True)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        for a, b in zip(ref(x), fresh(x)):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_mmpretrain_swin_classifier_keeps_its_head_and_gives_mmpretrain_output():
    # 448: every stage map is larger than a window, where mmpretrain and mmdet Swin agree
    ref = MMPretrainSwin(arch=dict(TINY_SWIN), img_size=448, drop_path_rate=0.0)
    ref.eval()
    checkpoint = {'backbone.' + k: v for k, v in ref.state_dict().items()}
    checkpoint.update({'head.fc.weight': torch.randn(10, 256), 'head.fc.bias': torch.randn(10)})
    ours = STViTSwin(UNSPARSIFIED, drop_path_rate=0.0).eval()
    result = conversion.convert_checkpoint({'state_dict': checkpoint, 'meta': {}}, 'mmpretrain',
                                     bare(ours))
    assert_every_source_key_accounted_for(result)
    assert result.backbone_prefix == 'backbone.'
    assert result.carried == ['head.fc.bias', 'head.fc.weight'] and not result.carried_checked
    # an ImageNet classifier normalises only its last stage; the other output norms are new
    assert set(result.new) == {f'backbone.norm{i}.{p}' for i in range(3) for p in ('weight',
                                                                                    'bias')}
    torch.testing.assert_close(result.state_dict['head.fc.weight'], checkpoint['head.fc.weight'])
    x = torch.randn(1, 3, 448, 448)
    with torch.no_grad():
        torch.testing.assert_close(ours(x)[3], ref(x)[0], rtol=1e-4, atol=1e-4)


def test_official_swin_gives_what_mmdets_own_converter_gives():
    official = official_swin_state_dict(mmdet_swin().state_dict())
    ref = mmdet_swin()
    converted_by_mmdet = {k[len('backbone.'):]: v for k, v in swin_converter(official).items()}
    missing = ref.load_state_dict(converted_by_mmdet, strict=False).missing_keys
    assert {k.split('.')[0] for k in missing} == {'norm0', 'norm1', 'norm2', 'norm3'}
    ref.norm3.load_state_dict({'weight': official['norm.weight'], 'bias': official['norm.bias']})

    ours = STViTSwin(UNSPARSIFIED, drop_path_rate=0.0).eval()
    result = conversion.convert_checkpoint({'model': official}, 'swin-official', bare(ours))
    assert_every_source_key_accounted_for(result)
    assert {k for k, why in result.dropped.items() if 'classifier head' in why} == {
        'head.weight', 'head.bias'}
    assert any(k.endswith('attn_mask') for k in result.dropped)
    assert {k.split('.')[0] for k in result.new} == {'norm0', 'norm1', 'norm2'}
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(ours(x)[3], ref(x)[3], rtol=1e-4, atol=1e-4)


def test_swin_weights_leave_only_the_stvit_layers_new():
    official = official_swin_state_dict(mmdet_swin().state_dict())
    result = conversion.convert_checkpoint(official, 'swin-official', bare(STViTSwin(TINY_SWIN)))
    unit = 'stages.2.units.0.'
    layer_scales = {f'{unit}{layer}.ls{i}.gamma' for i in (1, 2) for layer in _UNIT_LAYERS[1:]}
    norms = {f'norm{i}.{p}' for i in range(3) for p in ('weight', 'bias')}
    assert set(result.new) == layer_scales | norms | {unit + 'generator.centres'}
    C = 128
    torch.testing.assert_close(result.state_dict[unit + 'generator.layer2.attn.kv.weight'],
                               official['layers.2.blocks.2.attn.qkv.weight'][C:])


def test_official_stvit_r_swin_round_trips_into_the_same_model():
    original = official_stvit_r_swin(out_indices=(3, ))
    official = official_stvit_r_swin_state_dict(original)
    for name, shape in (('layers.2.blocks.1.attn.kv.weight', (256, 128)),
                        ('layers.2.blocks.3.attn.q.weight', (128, 128)),
                        ('layers.2.blocks.5.layer_scale_2', (128, )),
                        ('layers.2.blocks.0.attn.relative_position_bias_table', (169, 4)),
                        ('patch_embed.proj.2.bn.running_var', (32, )),
                        ('layers.0.blocks.1.attn_mask', (64, 49, 49))):
        assert official[name].shape == shape, name
    assert 'layers.2.blocks.4.attn.qkv.weight' not in official
    official['layers.2.semantic_token2'] = torch.randn(1, 36, 128)  # a USE_GLOBAL=True run

    torch.manual_seed(1)
    fresh = official_stvit_r_swin(out_indices=(3, ))
    result = conversion.convert_checkpoint({'model': official, 'epoch': 299},
                                           'official-stvit-r-swin',
                                     bare(fresh))
    assert_every_source_key_accounted_for(result)
    assert result.new == {}
    assert 'official centres G' in result.dropped['layers.2.semantic_token2']
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(fresh(x)[0], original(x)[0])


def test_official_stvit_r_swin_head_lands_in_the_classifier_config():
    cfg_options = {'model.backbone.arch': dict(TINY_SWIN, _delete_=True),
                   'model.head.in_channels': 256}
    target = tool.target_from_config(
        os.path.join(ROOT, 'configs/classification/stvit_r_swin_s_in1k.py'), cfg_options)
    assert target.whole_model
    official = official_stvit_r_swin_state_dict(official_stvit_r_swin(out_indices=(3, )))
    result = conversion.convert_checkpoint(official, 'official-stvit-r-swin', target)
    assert result.new == {} and result.backbone_prefix == 'backbone.'
    torch.testing.assert_close(result.state_dict['head.fc.weight'], official['head.weight'])
    assert 'head.weight' in result.mapped


def official_release_from_key_list(size):
    """A release file ``{'model': ...}`` holding exactly the tensors (names and shapes) of the
    official STViT-R-Swin model, random values: tests/data lists them as read off the official
    repository (its training log's module tree and model code), independently of our mapping."""
    with open(os.path.join(ROOT, f'tests/data/official_stvit_r_swin_{size}_keys.json')) as f:
        listed = json.load(f)
    state = {k: torch.randn(shape) for k, shape in listed['parameters'].items()}
    for key, shape in listed['buffers'].items():
        state[key] = (torch.zeros(shape, dtype=torch.long) if key.endswith(
            ('index', 'num_batches_tracked')) else torch.rand(shape))
    return {'model': state}, listed


@pytest.mark.parametrize('size, arch', [('s', 'small'), ('b', 'base')])
def test_official_release_key_list_converts_completely(size, arch):
    release, listed = official_release_from_key_list(size)
    official = release['model']
    # the official classifier normalises stage 4 only
    target = bare(STViTSwin(arch, out_indices=(3, ), preset='official').eval())
    result = conversion.convert_checkpoint(release, 'official-stvit-r-swin', target)
    # every official tensor is used or dropped for a stated reason; every one of ours is filled
    assert_every_source_key_accounted_for(result)
    assert result.new == {} and result.ignored == {}
    assert set(result.dropped) == set(listed['buffers']) - {
        k for k in listed['buffers'] if k.startswith('patch_embed.')} | {'head.weight',
                                                                          'head.bias'}
    # the same number of trained values on both sides (the official head is not a backbone's)
    head = sum(official[k].numel() for k in ('head.weight', 'head.bias'))
    ours = sum(p.numel() for p in target.backbone.parameters())
    assert ours + head == listed['parameter_count']
    # roles, by the official block index in stage 3 (6 per unit): window, generator 1 and 2,
    # local and global semantic blocks (q/kv joined into one qkv), recovery
    ckpt = result.state_dict
    for u in range(3):
        j, unit = 6 * u, f'stages.2.units.{u}.'
        assert torch.equal(ckpt[unit + 'window_block.attn.qkv.weight'],
                           official[f'layers.2.blocks.{j}.attn.qkv.weight'])
        assert torch.equal(ckpt[unit + 'generator.layer1.attn.kv.weight'],
                           official[f'layers.2.blocks.{j + 1}.attn.kv.weight'])
        assert torch.equal(ckpt[unit + 'generator.layer2.ls1.gamma'],
                           official[f'layers.2.blocks.{j + 2}.layer_scale_1'])
        for s in (0, 1):
            assert torch.equal(ckpt[f'{unit}semantic_blocks.{s}.attn.qkv.bias'], torch.cat([
                official[f'layers.2.blocks.{j + 3 + s}.attn.q.bias'],
                official[f'layers.2.blocks.{j + 3 + s}.attn.kv.bias']]))
        assert torch.equal(ckpt[unit + 'recovery.mlp.fc2.weight'],
                           official[f'layers.2.blocks.{j + 5}.mlp.fc2.weight'])
    assert torch.equal(ckpt['patch_embed.proj.2.bn.running_var'],
                       official['patch_embed.proj.2.bn.running_var'])
    assert torch.equal(ckpt['norm3.weight'], official['norm.weight'])
    assert torch.equal(ckpt['stages.1.downsample.reduction.weight'],
                       official['layers.1.downsample.reduction.weight'])


# ------------------------------------------------------------------------------- detectors
@pytest.fixture(scope='module')
def stock_detector():
    torch.manual_seed(0)
    return build_model(load_config('mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py', {
        'model.backbone.embed_dims': 32, 'model.backbone.num_heads': [1, 2, 4, 8],
        **TINY_DETECTOR}))


def our_detector(arch):
    return tool.target_from_config(
        os.path.join(ROOT, 'configs/detection/mask_rcnn_stvit_r_swin_t.py'),
        {'model.backbone.arch': dict(arch, _delete_=True), **TINY_DETECTOR})


def test_mmdet_detector_keeps_neck_and_heads_and_computes_the_same_features(stock_detector,
                                                                          tmp_path):
    target = our_detector(UNSPARSIFIED)
    checkpoint = {'state_dict': stock_detector.state_dict(), 'meta': {'epoch': 12}}
    result = conversion.convert_checkpoint(checkpoint, 'mmdet', target)
    assert_every_source_key_accounted_for(result)
    assert result.carried_checked and result.new == {}
    assert {k.split('.')[0] for k in result.carried} == {'neck', 'rpn_head', 'roi_head'}
    conversion.save_result(result, str(tmp_path / 'converted.pth'))  # what load_from reads
    load_checkpoint(target.model, str(tmp_path / 'converted.pth'), strict=True)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        for a, b in zip(stock_detector.extract_feat(x), target.model.extract_feat(x)):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_mmdet_detector_into_stvit_r_config_leaves_only_the_unit_layers_new(stock_detector):
    result = conversion.convert_checkpoint(stock_detector.state_dict(), 'mmdet',
                                     our_detector(TINY_SWIN))
    unit = 'backbone.stages.2.units.0.'
    assert set(result.new) == {unit + 'generator.centres'} | {
        f'{unit}{layer}.ls{i}.gamma' for i in (1, 2) for layer in _UNIT_LAYERS[1:]}
    for key in ('neck.fpn_convs.0.conv.weight', 'roi_head.mask_head.conv_logits.weight'):
        assert torch.equal(result.state_dict[key], stock_detector.state_dict()[key])


def test_imagenet_swin_into_detector_config_reports_neck_and_heads_new():
    official = official_swin_state_dict(mmdet_swin().state_dict())
    result = conversion.convert_checkpoint(official, 'swin-official', our_detector(UNSPARSIFIED))
    assert {k.split('.')[0] for k in result.new} == {'backbone', 'neck', 'rpn_head', 'roi_head'}
    assert result.dropped['head.weight'] == 'classifier head (not part of the backbone)'


# ---------------------------------------------------------------------------------- DeiT
@pytest.mark.parametrize('source', ['mmpretrain', 'timm'])
def test_deit_layers_compute_what_deit_layers_compute(source):
    deit = VisionTransformer(arch=dict(TINY_VIT), img_size=96, patch_size=16)
    deit.eval()
    if source == 'timm':  # a timm / official DeiT file; the stock model gets the same tensors
        checkpoint = timm_deit_state_dict(deit.state_dict())
        deit.load_state_dict(_timm_to_mmpretrain(checkpoint))
    else:  # an mmpretrain classifier file
        checkpoint = {'backbone.' + k: v for k, v in deit.state_dict().items()}
        checkpoint['head.layers.head.weight'] = torch.randn(10, 64)
    model = STViT(dict(embed_dims=64, num_heads=2, num_semantic_layers=5), img_size=96,
                  recovery=True).eval()
    result = conversion.convert_checkpoint(checkpoint, source, bare(model))
    assert_every_source_key_accounted_for(result)
    prefix = result.backbone_prefix
    assert set(result.dropped) == ({'cls_token', 'head.weight', 'head.bias'} if source == 'timm'
                                   else {'backbone.cls_token'})
    assert set(result.new) == {prefix + k for k in (
        'generator.centres', 'generator.layer1.ls1.gamma', 'generator.layer1.ls2.gamma',
        'generator.layer2.ls1.gamma', 'generator.layer2.ls2.gamma', 'recovery.ls1.gamma',
        'recovery.ls2.gamma')}
    gammas_to_one(model)  # the tool's check loaded the converted tensors into the target
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        tokens, _ = model.embed(x)
        torch.testing.assert_close(tokens, deit.patch_embed(x)[0] + deit.pos_embed[:, 1:])
        layers = [*model.blocks, model.generator.layer1, model.generator.layer2,
                  *model.semantic_blocks, model.recovery]
        assert len(layers) == len(deit.layers)
        for ours, theirs in zip(layers, deit.layers):
            out = ours(tokens, tokens) if isinstance(ours, CrossBlock) else ours(tokens)
            torch.testing.assert_close(out, theirs(tokens), rtol=1e-4, atol=1e-4)
        # tolerances: DeiT's LayerNorms use eps 1e-6, STViT's 1e-5
        torch.testing.assert_close(model.norm(tokens), deit.ln1(tokens), rtol=1e-4, atol=1e-4)


def _timm_to_mmpretrain(state):
    """The inverse of :func:`timm_deit_state_dict`'s renaming (head dropped)."""
    out = {}
    for key, value in state.items():
        if key.startswith('head.'):
            continue
        if key.startswith('blocks.'):
            key = 'layers.' + key[len('blocks.'):]
            for old, new in (('norm1.', 'ln1.'), ('norm2.', 'ln2.'),
                             ('mlp.fc1.', 'ffn.layers.0.0.'), ('mlp.fc2.', 'ffn.layers.1.')):
                key = key.replace(old, new)
        elif key.startswith('norm.'):
            key = 'ln1.' + key[len('norm.'):]
        out[key.replace('patch_embed.proj.', 'patch_embed.projection.')] = value
    return out


def test_timm_safetensors_file_is_read(tmp_path):
    state = timm_deit_state_dict(VisionTransformer(arch=dict(TINY_VIT), img_size=96).state_dict())
    path = tmp_path / 'model.safetensors'
    save_file(state, str(path))
    loaded = conversion.load_source(str(path))
    assert loaded.keys() == state.keys()
    result = conversion.convert_checkpoint(loaded, 'timm', bare(
        STViT(dict(embed_dims=64, num_heads=2), img_size=96)))
    assert_every_source_key_accounted_for(result)


def test_command_line_converts_official_deit_file_for_pretrained_init(tmp_path):
    deit = VisionTransformer(arch='deit-tiny')
    state = timm_deit_state_dict(deit.state_dict())
    src, dst = tmp_path / 'deit_tiny_patch16_224.pth', tmp_path / 'out' / 'stvit_deit_t.pth'
    torch.save({'model': state}, src)  # the official release wraps the state dict
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, 'tools', 'convert_checkpoint.py'), str(src),
         str(dst), '--from', 'deit-official', '--arch', 'stvit-deit-t'],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    report = proc.stdout.strip()
    assert '\n' not in report  # one paragraph
    assert f'{len(state)} source tensors, {len(state) - 3} mapped' in report  # cls_token, head
    assert 'left at initialisation (new, the source cannot have them) 5' in report
    assert "init_cfg=dict(type='Pretrained'" in report

    saved = torch.load(dst, weights_only=False)
    assert saved['meta']['source'] == 'deit-official'
    model = STViT('tiny', init_cfg=dict(type='Pretrained', checkpoint=str(dst)))
    model.init_weights()
    torch.testing.assert_close(model.generator.layer1.attn.q.weight,
                               state['blocks.4.attn.qkv.weight'][:192])
    torch.testing.assert_close(model.semantic_blocks[5].mlp.fc2.bias,
                               state['blocks.11.mlp.fc2.bias'])


# ------------------------------------------------------------------------------ failures
@pytest.fixture(scope='module')
def mmdet_state():
    torch.manual_seed(0)
    return mmdet_swin().state_dict()


@pytest.mark.parametrize('stray', ['stages.0.blocks.0.attn.w_msa.extra_scale', 'extra_scale'])
def test_stray_key_fails_clearly_unless_ignored(mmdet_state, stray):
    checkpoint = dict(mmdet_state, **{stray: torch.randn(3)})
    target = bare(STViTSwin(UNSPARSIFIED))
    with pytest.raises(conversion.ConversionError) as error:
        conversion.convert_checkpoint(checkpoint, 'mmdet', target)
    message = str(error.value)
    assert '1 source key with no place in the target' in message
    assert stray in message and '--ignore REGEX' in message
    result = conversion.convert_checkpoint(checkpoint, 'mmdet', target, ignore=[r'extra_scale$'])
    assert list(result.ignored) == [stray]
    assert_every_source_key_accounted_for(result)


def test_missing_key_and_wrong_shape_fail_clearly(mmdet_state):
    checkpoint = dict(mmdet_state)
    del checkpoint['stages.1.blocks.0.norm2.bias']
    checkpoint['norm3.weight'] = torch.randn(7)
    target = bare(STViTSwin(UNSPARSIFIED))
    with pytest.raises(conversion.ConversionError) as error:
        conversion.convert_checkpoint(checkpoint, 'mmdet', target)
    message = str(error.value)
    assert '1 target key not in the checkpoint:\n    stages.1.blocks.0.norm2.bias' in message
    assert 'norm3.weight -> norm3.weight: shape (7,), the target has (256,)' in message
    result = conversion.convert_checkpoint(checkpoint, 'mmdet', target,
                                           ignore=['norm2.bias', 'norm3'])
    assert set(result.ignored) == {'stages.1.blocks.0.norm2.bias', 'norm3.weight'}


def test_command_line_failure_is_one_clear_message(tmp_path, capsys, mmdet_state):
    src = tmp_path / 'swin.pth'
    torch.save({'state_dict': dict(mmdet_state, extra_scale=torch.ones(1))}, src)
    config = tmp_path / 'tiny_swin.py'
    config.write_text("custom_imports = dict(imports=['stvit_mm.models'], "
                      "allow_failed_imports=False)\n"
                      f"model = dict(type='STViTSwin', arch={UNSPARSIFIED!r})\n")
    args = [str(src), str(tmp_path / 'out.pth'), '--from', 'mmdet', '--config', str(config)]
    assert tool.main(args) == 1
    err = capsys.readouterr().err
    assert err.startswith('convert_checkpoint.py: error: cannot convert for STViTSwin')
    assert 'extra_scale: not a key of a Swin backbone' in err
    assert not (tmp_path / 'out.pth').exists()
    assert tool.main(args + ['--ignore', 'extra']) == 0
    assert 'ignored (--ignore) 1: extra_scale' in capsys.readouterr().out


def test_wrong_layout_or_family_names_the_right_choice(mmdet_state):
    official = official_swin_state_dict(mmdet_state)
    with pytest.raises(conversion.ConversionError, match='use --from swin-official'):
        conversion.convert_checkpoint(official, 'mmdet', bare(STViTSwin(UNSPARSIFIED)))
    with pytest.raises(conversion.ConversionError, match='swin weights cannot initialise a STViT'):
        conversion.convert_checkpoint(official, 'swin-official', bare(STViT('tiny')))
    ours = STViTSwin(UNSPARSIFIED).state_dict()
    with pytest.raises(conversion.ConversionError, match='already converted'):
        conversion.convert_checkpoint(ours, 'mmdet', bare(STViTSwin(UNSPARSIFIED)))


def test_compact_keys_merges_only_what_exists():
    keys = [f'stages.{i}.blocks.{j}.norm1.{p}' for i, n in enumerate((2, 2, 6, 2))
            for j in range(n) for p in ('weight', 'bias')] + ['cls_token', 'a.0.b.1', 'a.1.b.0']
    assert compact_keys(keys) == ('stages.{0,1,3}.blocks.{0-1}.norm1.{weight,bias}, '
                                       'stages.2.blocks.{0-5}.norm1.{weight,bias}, cls_token, '
                                       'a.0.b.1, a.1.b.0')
