"""STViTVideoSwin: any clip size, gradients, mmaction2 equivalence, 2-D -> 3-D inflation,
the K400 configs, and the real Runner on a generated raw-frame set."""
import json

import pytest
import torch
from mmaction.models.backbones.swin import SwinTransformer3D
from mmdet.models.backbones import SwinTransformer
from mmengine.config import Config

import test as test_tool
import train as train_tool
from stvit_mm.checkpoints.swin import to_canonical
from stvit_mm.datasets.synthetic_kinetics import MOTION_CLASSES, make_kinetics_rawframes
from stvit_mm.models import STViTSwin
from stvit_mm.models.backbones.stvit_video_swin import STViTVideoSwin
from stvit_mm.models.layers import fused_attn
from stvit_mm.utils import load_config

CHANNELS = (96, 192, 384, 768)
SWIN_T = dict(embed_dims=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24))
UNSPARSIFIED_T = dict(SWIN_T, units=(0, 0, 0, 0))
ALL_STAGES = (0, 1, 2, 3)


@pytest.fixture(autouse=True)
def seed():
    torch.manual_seed(0)


@pytest.fixture(scope='module')
def tiny():
    return STViTVideoSwin('tiny', out_indices=ALL_STAGES).eval()


def _ceil(a, b):
    return -(-a // b)


@pytest.mark.parametrize('shape', [(1, 3, 8, 64, 64), (2, 3, 5, 97, 130), (1, 3, 16, 56, 56)])
def test_any_clip_size(tiny, shape):
    B, _, T, H, W = shape
    with torch.no_grad():
        outs = tiny(torch.randn(*shape))
    assert isinstance(outs, tuple)
    expected = [(B, c, _ceil(T, 2), _ceil(H, 4 * 2**i), _ceil(W, 4 * 2**i))
                for i, c in enumerate(CHANNELS)]
    assert [tuple(o.shape) for o in outs] == expected
    assert all(torch.isfinite(o).all() for o in outs)


def test_out_type_tensor_feeds_i3d_head():
    from mmaction.models.heads import I3DHead
    from mmengine.registry import init_default_scope
    init_default_scope('mmaction')  # the head builds its loss in mmaction's scope
    model = STViTVideoSwin('tiny', out_type='tensor').eval()
    with torch.no_grad():
        feats = model(torch.randn(2, 3, 4, 32, 32))
        scores = I3DHead(num_classes=5, in_channels=768)(feats)
    assert feats.shape == (2, 768, 2, 1, 1) and scores.shape == (2, 5)


@pytest.mark.parametrize('recovery', [True, False])
def test_every_parameter_gets_a_gradient(recovery):
    # without recovery stage 3 hands its semantic grid on and is no output
    model = STViTVideoSwin('tiny', recovery=recovery,
                           out_indices=ALL_STAGES if recovery else (0, 1, 3))
    outs = model(torch.randn(2, 3, 6, 64, 130))  # stage 3: (3, 4, 9), W padded to 2 windows
    sum(o.square().mean() for o in outs).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    assert not missing, f'parameters without gradient: {missing}'


def test_gradient_checkpointing_gives_the_same_gradients():
    x = torch.randn(1, 3, 6, 48, 64)
    grads = []
    for with_cp in (False, True):
        torch.manual_seed(0)
        model = STViTVideoSwin('tiny', with_cp=with_cp, drop_path_rate=0.0)
        model(x)[0].square().mean().backward()
        grads.append({n: p.grad for n, p in model.named_parameters()})
    for name, grad in grads[0].items():
        torch.testing.assert_close(grads[1][name], grad, rtol=1e-4, atol=1e-6, msg=name)


def test_fused_and_explicit_attention_agree(tiny):
    x = torch.randn(1, 3, 10, 72, 90)
    with torch.no_grad(), fused_attn(True):
        fused = tiny(x)
    with torch.no_grad(), fused_attn(False):
        explicit = tiny(x)
    for a, b in zip(fused, explicit):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_padding_never_changes_real_tokens():
    """Windows shrink to small grids, otherwise pad + mask: more padding, same result."""
    model = STViTVideoSwin('tiny', out_indices=(0, )).eval()
    for name, p in model.named_parameters():  # make the new layers' outputs visible
        if name.endswith('gamma'):
            p.data.fill_(0.5)
    stage = model.stages[0]
    x = torch.randn(1, 5, 9, 11, 96)
    padded = torch.randn(1, 12, 20, 23, 96) * 10
    padded[:, :5, :9, :11] = x
    keep = torch.zeros(1, 12, 20, 23, dtype=torch.bool)
    keep[:, :5, :9, :11] = True
    block = stage.blocks[0]  # unshifted: windows line up on both grids
    with torch.no_grad():
        plain = block(x.reshape(1, -1, 96), (5, 9, 11))
        with_padding = block(padded.reshape(1, -1, 96), (12, 20, 23), keep)
    torch.testing.assert_close(with_padding.reshape(1, 12, 20, 23, 96)[:, :5, :9, :11],
                               plain.reshape(1, 5, 9, 11, 96), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('arch, window, shape', [
    # temporal shift active (grid 4 > window 2); stage 4 fits one spatial window: no shift
    (SWIN_T, (2, 3, 3), (1, 3, 8, 96, 96)),
    # the stock window at 224: 8 frames fit one window; stage 4 is one 7x7 window
    (dict(embed_dims=24, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8)), (8, 7, 7),
     (1, 3, 16, 224, 224)),
])
def test_unsparsified_model_with_mmaction_weights_equals_mmaction(arch, window, shape):
    ref = SwinTransformer3D(arch={k: list(v) if isinstance(v, tuple) else v
                                  for k, v in arch.items()},
                            pretrained2d=False, window_size=window, drop_path_rate=0.0,
                            out_indices=ALL_STAGES)
    ref.eval()  # not chained: mmaction's train() returns None
    ours = STViTVideoSwin(dict(arch, units=(0, 0, 0, 0)), window_size=window,
                          drop_path_rate=0.0, out_indices=ALL_STAGES).eval()
    result = ours.load_state_dict(ref.state_dict(), strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    report = ours.last_load_report
    assert report['layout'] == 'official' and report['source_dims'] == 3
    assert not report['inflated'] and not report['missing']
    assert set(report['not_loaded'].values()) == {'buffer recomputed from the window size'}
    x = torch.randn(*shape)
    with torch.no_grad():
        for a, b in zip(ref(x), ours(x)):
            torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-4)


def _new_parameters(unit='stages.2.units.0.'):
    layers = ('generator.layer1', 'generator.layer2', 'semantic_blocks.0', 'semantic_blocks.1',
              'recovery')
    return {unit + 'generator.centres'} | {f'{unit}{layer}.ls{i}.gamma'
                                           for i in (1, 2) for layer in layers}


TABLES = ['stages.0.blocks.0', 'stages.0.blocks.1', 'stages.1.blocks.0', 'stages.1.blocks.1',
          'stages.2.units.0.window_block', 'stages.3.blocks.0', 'stages.3.blocks.1']


def test_inflate_our_2d_stvit_r_swin(tmp_path):
    image_model = STViTSwin('tiny')
    path = tmp_path / 'stvit_r_swin_t.pth'
    torch.save({'state_dict': image_model.state_dict()}, path)
    video_model = STViTVideoSwin('tiny', init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    video_model.init_weights()
    report = video_model.last_load_report
    assert report['source_dims'] == 2 and report['missing'] == []
    assert set(report['loaded']) == set(video_model.state_dict())
    assert set(report['inflated']) == ({'patch_embed.proj.weight',
                                        'stages.2.units.0.generator.centres',
                                        'stages.2.units.0.generator.pooled_grid'}
                                       | {f'{t}.attn.relative_position_bias_table'
                                          for t in TABLES})
    assert report['not_loaded'] == {f'norm{i}.{p}': 'no such tensor in this model'
                                    for i in range(3) for p in ('weight', 'bias')}
    src, ours = image_model.state_dict(), video_model.state_dict()
    torch.testing.assert_close(ours['patch_embed.proj.weight'],
                               src['patch_embed.proj.weight'][:, :, None].repeat(1, 1, 2, 1, 1)
                               / 2)
    table = 'stages.3.blocks.1.attn.relative_position_bias_table'
    assert src[table].shape == (13 * 13, 24) and ours[table].shape == (15 * 13 * 13, 24)
    for dt in range(15):  # every temporal offset carries the 2-D table
        torch.testing.assert_close(ours[table][dt * 169:(dt + 1) * 169], src[table])
    centres = 'stages.2.units.0.generator.centres'
    torch.testing.assert_close(ours[centres], src[centres].repeat(1, 2, 1))
    key = 'stages.2.units.0.recovery.mlp.fc1.weight'
    torch.testing.assert_close(ours[key], src[key])


def test_inflate_mmdet_swin_reports_what_was_not_loaded():
    ref = SwinTransformer(**SWIN_T)
    model = STViTVideoSwin('tiny')
    result = model.load_state_dict(ref.state_dict(), strict=False)
    assert set(result.missing_keys) == _new_parameters()
    assert result.unexpected_keys == []
    report = model.last_load_report
    assert report['layout'] == 'openmmlab' and report['source_dims'] == 2
    assert set(report['missing']) == _new_parameters()
    assert set(report['loaded']) == set(model.state_dict()) - _new_parameters()
    assert len(report['inflated']) == 8
    dropped = report['not_loaded']
    assert {k for k, why in dropped.items() if why == 'buffer recomputed from the window size'} \
        == {k for k in ref.state_dict() if k.endswith('relative_position_index')}
    assert {k for k, why in dropped.items()
            if why == 'only window blocks have a relative position bias'} == {
        f'stages.2.blocks.{j}.attn.w_msa.relative_position_bias_table' for j in range(1, 6)}
    assert {k for k, why in dropped.items() if 'out_indices' in why} == {
        f'norm{i}.{p}' for i in range(3) for p in ('weight', 'bias')}
    assert len(dropped) == 12 + 5 + 6
    sd = ref.state_dict()
    q = model.state_dict()['stages.2.units.0.generator.layer1.attn.q.weight']
    torch.testing.assert_close(q, sd['stages.2.blocks.1.attn.w_msa.qkv.weight'][:384])


def test_inflate_mmpretrain_classifier_checkpoint(tmp_path):
    from mmpretrain.models.backbones import SwinTransformer as MMPretrainSwin
    backbone = MMPretrainSwin('tiny').state_dict()
    checkpoint = {f'backbone.{k}': v for k, v in backbone.items()}
    checkpoint.update({'head.fc.weight': torch.randn(1000, 768), 'head.fc.bias': torch.zeros(1000)})
    path = tmp_path / 'swin-tiny_in1k.pth'
    torch.save({'state_dict': checkpoint, 'meta': {}}, path)
    model = STViTVideoSwin('tiny', init_cfg=dict(type='Pretrained', checkpoint=str(path),
                                                 prefix='backbone.'))
    model.init_weights()
    report = model.last_load_report
    assert report['layout'] == 'openmmlab' and report['source_dims'] == 2
    assert set(report['missing']) == _new_parameters()
    assert set(report['not_loaded']) == {k for k in backbone if k.endswith('index')} | {
        f'stages.2.blocks.{j}.attn.w_msa.relative_position_bias_table' for j in range(1, 6)}
    torch.testing.assert_close(model.patch_embed.norm.weight, backbone['patch_embed.norm.weight'])
    # mmpretrain's merging weights come in nn.Unfold order; ours (and mmaction's) in Swin's
    reduction = model.stages[0].downsample.reduction.weight
    assert not torch.equal(reduction, backbone['stages.0.downsample.reduction.weight'])
    torch.testing.assert_close(reduction.reshape(192, 4, 96)[:, 1],
                               backbone['stages.0.downsample.reduction.weight'][:, 2::4])


def _official_2d_file(tmp_path, window=7):
    """A Microsoft-layout Swin-T release file ({'model': ...}, `layers.`, `norm`, `head`)."""
    ref = SwinTransformer(**SWIN_T, window_size=window)
    canonical, _, _ = to_canonical(ref.state_dict(), 'openmmlab')
    sd = {('norm.' + k[len('norm3.'):] if k.startswith('norm3.') else k): v
          for k, v in canonical.items() if not k.startswith(('norm0', 'norm1', 'norm2'))}
    sd.update({'head.weight': torch.randn(1000, 768), 'head.bias': torch.zeros(1000)})
    path = tmp_path / 'swin_tiny_patch4_window7_224.pth'
    torch.save({'model': sd}, path)
    return path, sd


def test_pretrained_official_2d_file_is_inflated(tmp_path):
    path, sd = _official_2d_file(tmp_path)
    model = STViTVideoSwin('tiny', pretrained=str(path), pretrained2d=True)
    model.init_weights()
    report = model.last_load_report
    assert report['layout'] == 'official' and set(report['missing']) == _new_parameters()
    assert set(report['not_loaded']) == {'head.weight', 'head.bias'} | {
        f'layers.2.blocks.{j}.attn.relative_position_bias_table' for j in range(1, 6)}
    torch.testing.assert_close(model.norm3.weight, sd['norm.weight'])
    with pytest.raises(ValueError, match='pretrained2d=False but .* holds a 2-D model'):
        STViTVideoSwin('tiny', pretrained=str(path), pretrained2d=False).init_weights()


def test_2d_table_of_another_window_is_resized(tmp_path):
    path, _ = _official_2d_file(tmp_path, window=12)
    model = STViTVideoSwin('tiny', init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    model.init_weights()
    how = model.last_load_report['inflated']['stages.0.blocks.0.attn.relative_position_bias_table']
    assert how.startswith('bicubic-resized 23x23 -> 13x13')


def test_inflated_model_sees_a_static_clip_as_the_image():
    """Video Swin's inflation: a clip of one repeated image gives the 2-D model's features."""
    image_model = STViTSwin(UNSPARSIFIED_T, window_size=3, drop_path_rate=0.0).eval()
    video_model = STViTVideoSwin(UNSPARSIFIED_T, window_size=(8, 3, 3), drop_path_rate=0.0,
                                 out_indices=ALL_STAGES).eval()
    video_model.load_state_dict(image_model.state_dict(), strict=True)
    image = torch.randn(1, 3, 128, 160)  # stage grids > 3 in both dims: same shifts in 2-D/3-D
    with torch.no_grad():
        for a, b in zip(image_model(image), video_model(image[:, :, None].expand(-1, -1, 6, -1,
                                                                                  -1))):
            torch.testing.assert_close(b, a[:, :, None].expand_as(b), rtol=1e-4, atol=1e-4)


def test_frozen_stages():
    model = STViTVideoSwin('tiny', frozen_stages=2, out_indices=ALL_STAGES)
    model.train()
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    assert frozen and all(n.startswith(('patch_embed.', 'stages.0.', 'stages.1.', 'norm0.',
                                        'norm1.')) for n in frozen)
    assert not model.stages[1].training and model.stages[2].training
    assert all(p.requires_grad for p in model.stages[2].parameters())


@pytest.mark.parametrize('kwargs, message', [
    (dict(arch='huge'), "unknown arch 'huge'"),
    (dict(arch=dict(embed_dims=96, depths=(2, 2, 6, 2))), "misses \\['num_heads'\\]"),
    (dict(pool_size=(2, 8, 2)), 'larger than the window \\(8, 7, 7\\)'),
    (dict(window_size=(8, 7)), 'window_size must be one positive int or three'),
    (dict(out_indices=(4, )), 'out_indices'),
    (dict(out_type='tensor', out_indices=(2, 3)), "out_type='tensor' needs exactly one"),
    (dict(layer2_scope='regional'), 'layer2_scope must be one of'),
])
def test_bad_config_gets_one_clear_line(kwargs, message):
    with pytest.raises(ValueError, match=message):
        STViTVideoSwin(**kwargs)


@pytest.mark.parametrize('x, message', [
    (torch.randn(1, 4, 8, 32, 32), 'expected 3 input channels, got 4'),
    (torch.randn(1, 3, 32, 32), 'expected clips \\(B, C, T, H, W\\), got a 4-D'),
    (torch.randn(0, 3, 8, 32, 32), 'empty batch'),
    (torch.randn(1, 3, 0, 32, 32), 'empty clip'),
])
def test_bad_input_gets_one_clear_line(tiny, x, message):
    with pytest.raises(ValueError, match=message):
        tiny(x)


def _without_scope(node):
    """Drop the ``_scope_`` keys mmengine adds to dicts inherited through ``mmaction::``."""
    if isinstance(node, dict):
        return {k: _without_scope(v) for k, v in node.items() if k != '_scope_'}
    if isinstance(node, (list, tuple)):
        return type(node)(_without_scope(v) for v in node)
    return node


@pytest.mark.parametrize('size', ['tiny', 'small'])
def test_k400_config_changes_only_the_backbone(size, repo_root, monkeypatch):
    monkeypatch.chdir(repo_root)
    ours = load_config(f'configs/video/video_stvit_r_swin_{size[0]}_k400.py')
    stock = load_config(f'mmaction::recognition/swin/swin-{size}-p244-w877_in1k-pre_8xb8-amp-'
                        '32x2x1-30e_kinetics400-rgb.py')
    a, b = _without_scope(ours.to_dict()), _without_scope(stock.to_dict())
    assert a.pop('custom_imports') == dict(imports=['stvit_mm.models', 'stvit_mm.engine'],
                                           allow_failed_imports=False)
    ours_backbone, stock_backbone = a['model'].pop('backbone'), b['model'].pop('backbone')
    assert a == b
    assert ours_backbone['type'] == 'STViTVideoSwin' and ours_backbone['arch'] == size
    assert ours_backbone['pretrained'] == stock_backbone['pretrained']
    for key in ('patch_size', 'window_size'):
        assert tuple(ours_backbone[key]) == tuple(stock_backbone[key])
    assert ours_backbone['drop_path_rate'] == stock_backbone['drop_path_rate']


def test_generated_rawframes_are_deterministic(tmp_path):
    first = make_kinetics_rawframes(str(tmp_path / 'a'), 1, 1, num_frames=4, size=32)
    make_kinetics_rawframes(str(tmp_path / 'b'), 1, 1, num_frames=4, size=32)
    assert first['train'] == first['val'] == len(MOTION_CLASSES)
    lines = (tmp_path / 'a' / 'train_list.txt').read_text().split('\n')
    assert lines[0] == 'train_moving_right_000 4 0'
    files = sorted(p.relative_to(tmp_path / 'a') for p in (tmp_path / 'a').rglob('*.jpg'))
    assert len(files) == 2 * 4 * len(MOTION_CLASSES)
    assert all((tmp_path / 'a' / f).read_bytes() == (tmp_path / 'b' / f).read_bytes()
               for f in files)


CONFIG = 'configs/video/video_stvit_r_swin_t_synthetic.py'


def test_runner_trains_and_evaluates_on_generated_rawframes(tmp_path, repo_root, monkeypatch):
    monkeypatch.chdir(repo_root)
    data, work = tmp_path / 'data', tmp_path / 'work'
    # 8 training clips = one batch per epoch: the real pipeline, loop, hooks and metric, fast.
    make_kinetics_rawframes(str(data), train_per_class=1, val_per_class=1)
    options = [f'{split}_dataloader.dataset.data_root={data}' for split in ('train', 'val',
                                                                              'test')]
    train_tool.main([CONFIG, '--work-dir', str(work), '--cfg-options', *options,
                     'train_cfg.max_epochs=2'])
    checkpoint = work / 'epoch_2.pth'
    assert checkpoint.is_file()
    scalars = [json.loads(line) for line in
               next(work.glob('*/vis_data/scalars.json')).read_text().splitlines()]
    losses = [s['loss'] for s in scalars if 'loss' in s]
    assert losses and all(torch.isfinite(torch.tensor(losses)))
    assert len([s for s in scalars if 'acc/top1' in s]) == 2  # validated after each epoch
    metrics = test_tool.main([CONFIG, str(checkpoint), '--work-dir', str(work), '--cfg-options',
                              *options])
    assert {'acc/top1', 'acc/top5', 'acc/mean1'} <= set(metrics)
    assert 0.0 <= metrics['acc/top1'] <= metrics['acc/top5'] <= 1.0
    cfg = Config.fromfile(CONFIG)
    assert cfg.model.backbone.type == 'STViTVideoSwin' and cfg.optim_wrapper.type == 'OptimWrapper'
