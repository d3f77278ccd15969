"""Semantic segmentation with mmsegmentation: the UperNet configs build under mmseg's scope and
give the stock model's shapes, Swin weights initialise the backbone, and the tools train,
test, draw and run distributed on the generated ADE20K-layout set (real mmseg components).

No weights are downloaded: ``Pretrained`` init_cfgs are dropped (stvit_mm.analysis.build_model)
and SyncBN becomes BN as the tools do without GPUs.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmengine.config import Config
from PIL import Image

import test as test_tool  # tools/test.py (pytest pythonpath)
import train as train_tool
from stvit_mm.datasets.synthetic_ade20k import (
    SYNTHETIC_ADE20K_CLASSES,
    majority_class_baseline,
    make_ade20k_style,
)
from stvit_mm.models import STViTSwin
from stvit_mm.utils import build_model, load_config
from stvit_mm.utils.dist import sync_bn_to_bn, use_bn_without_gpus

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZES = dict(t='tiny', s='small', b='base')
SYNTHETIC = 'configs/segmentation/upernet_stvit_r_swin_t_synthetic.py'
HEAD_NORMS = ['model.decode_head.norm_cfg', 'model.auxiliary_head.norm_cfg']


def ours(letter):
    return os.path.join(ROOT, f'configs/segmentation/upernet_stvit_r_swin_{letter}_ade20k.py')


def stock(letter):
    return (f'mmseg::swin/swin-{SIZES[letter]}-patch4-window7-in1k-pre_upernet_8xb2-160k_'
            'ade20k-512x512.py')


def unscoped(node):
    """A config value without the ``_scope_`` keys mmengine adds to inherited ``pkg::`` parts."""
    if isinstance(node, dict):
        return {k: unscoped(v) for k, v in node.items() if k != '_scope_'}
    if isinstance(node, (list, tuple)):
        return [unscoped(v) for v in node]
    return node


def segmentor(config, options=None):
    """The config's EncoderDecoder with random weights, SyncBN -> BN (one CPU process)."""
    cfg = load_config(config, options)
    sync_bn_to_bn(cfg)
    return build_model(cfg)


@pytest.fixture(scope='module')
def swin_t_pair():
    return segmentor(stock('t')), segmentor(ours('t'))


# ----------------------------------------------------------------------------- configs


@pytest.mark.parametrize('letter', ['t', 's', 'b'])
def test_config_swaps_only_the_backbone(letter):
    cfg, base = load_config(ours(letter)), load_config(stock(letter))
    assert cfg.default_scope == 'mmseg'
    assert cfg.model.backbone.type == 'STViTSwin' and cfg.model.backbone.arch == SIZES[letter]
    assert cfg.model.backbone.recovery is True
    # Swin ImageNet weights through init_cfg, as the stock backbone
    assert cfg.model.backbone.init_cfg == dict(type='Pretrained', checkpoint=base.checkpoint_file)
    for key in ('decode_head', 'auxiliary_head', 'data_preprocessor', 'train_cfg', 'test_cfg'):
        assert unscoped(cfg.model[key]) == unscoped(base.model[key]), key
    for key in ('train_dataloader', 'test_dataloader', 'test_evaluator', 'optim_wrapper',
                'param_scheduler', 'train_cfg'):
        assert unscoped(cfg[key]) == unscoped(base[key]), key


@pytest.mark.parametrize('letter', ['s', 'b'])
def test_backbone_outputs_match_stock_swin_s_and_b(letter):
    stock_model, our_model = segmentor(stock(letter)), segmentor(ours(letter))
    assert isinstance(our_model.backbone, STViTSwin)
    x = torch.randn(1, 3, 61, 90)  # odd: padded to patches and windows inside the backbones
    with torch.no_grad():
        theirs, mine = stock_model.backbone(x), our_model.backbone(x)
    assert [o.shape for o in mine] == [o.shape for o in theirs]
    assert list(our_model.decode_head.in_channels) == [o.shape[1] for o in mine]


@pytest.mark.parametrize('size', [(512, 512), (512, 683)])
def test_swin_t_backbone_outputs_match_stock_at_ade20k_sizes(swin_t_pair, size):
    stock_model, our_model = swin_t_pair
    x = torch.randn(1, 3, *size)
    with torch.no_grad():
        theirs, mine = stock_model.backbone(x), our_model.backbone(x)
    assert [o.shape for o in mine] == [o.shape for o in theirs]
    assert all(torch.isfinite(o).all() for o in mine)


def test_predict_returns_the_input_size(swin_t_pair):
    from mmseg.structures import SegDataSample
    for model in swin_t_pair:
        image = torch.randint(0, 256, (3, 75, 101), dtype=torch.uint8)
        sample = SegDataSample(metainfo=dict(img_shape=(75, 101), ori_shape=(75, 101)))
        with torch.no_grad():
            result, = model.test_step(dict(inputs=[image], data_samples=[sample]))
        assert result.pred_sem_seg.data.shape == (1, 75, 101)
        assert result.seg_logits.data.shape == (150, 75, 101)


def test_mmseg_swin_weights_initialise_the_backbone_through_init_cfg(tmp_path, swin_t_pair):
    """The stock checkpoint_file is mmseg's Swin layout (mmdet's names, unfold order)."""
    swin = swin_t_pair[0].backbone
    path = str(tmp_path / 'swin_t_mmseg.pth')
    torch.save({'state_dict': swin.state_dict()}, path)
    cfg = load_config(ours('t'))
    backbone = STViTSwin(**{k: v for k, v in cfg.model.backbone.items()
                            if k not in ('type', 'init_cfg')},
                         init_cfg=dict(type='Pretrained', checkpoint=path))
    backbone.init_weights()
    torch.testing.assert_close(backbone.patch_embed.proj.weight,
                               swin.patch_embed.projection.weight)
    # stage 1 is plain Swin in both: same weights give the same output (at whole windows:
    # mmseg's Swin attends to its window padding, ours masks it)
    backbone.eval(), swin.eval()
    x = torch.randn(1, 3, 56, 56)
    with torch.no_grad():
        torch.testing.assert_close(backbone(x)[0], swin(x)[0], rtol=1e-4, atol=1e-4)


def test_mmseg_upernet_checkpoint_converts_with_its_heads(tmp_path):
    """tools/convert_checkpoint.py --from mmseg: a whole UperNet Swin-T into our config."""
    from mmengine.runner import load_checkpoint

    import convert_checkpoint as tool
    from stvit_mm.checkpoints import whole_checkpoint as conversion
    small_heads = {'model.decode_head.channels': 16, 'model.auxiliary_head.channels': 8}
    stock_model = segmentor(stock('t'), small_heads)
    target = tool.target_from_config(ours('t'), small_heads)
    result = conversion.convert_checkpoint({'state_dict': stock_model.state_dict()}, 'mmseg',
                                           target)
    assert result.carried_checked
    assert {k.split('.')[0] for k in result.carried} == {'decode_head', 'auxiliary_head'}
    assert result.new and all(k.startswith('backbone.stages.2.units.0.') for k in result.new)
    conversion.save_result(result, str(tmp_path / 'converted.pth'))
    load_checkpoint(target.model, str(tmp_path / 'converted.pth'), strict=False)
    torch.testing.assert_close(target.model.decode_head.conv_seg.weight,
                               stock_model.decode_head.conv_seg.weight)
    # mmseg's Swin ImageNet files (the stock checkpoint_file) are bare backbones: the heads
    # are reported new
    bare = {k[len('backbone.'):]: v for k, v in stock_model.state_dict().items()
            if k.startswith('backbone.')}
    result = conversion.convert_checkpoint(bare, 'mmseg', target)
    assert {k.split('.')[0] for k in result.new} == {'backbone', 'decode_head', 'auxiliary_head'}


# ----------------------------------------------------------------------------- SyncBN


def test_sync_bn_becomes_bn_only_without_gpus(monkeypatch):
    cfg = load_config(ours('t'))
    assert cfg.model.decode_head.norm_cfg.type == 'SyncBN'
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    assert use_bn_without_gpus(cfg) == [] and cfg.model.decode_head.norm_cfg.type == 'SyncBN'
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    assert use_bn_without_gpus(cfg) == HEAD_NORMS
    for where in ('decode_head', 'auxiliary_head'):
        assert cfg.model[where].norm_cfg == dict(type='BN', requires_grad=True)
    assert use_bn_without_gpus(cfg) == []  # nothing left to switch


def test_sync_bn_switch_walks_lists_and_nested_dicts():
    cfg = Config(dict(model=dict(type='M', heads=[dict(type='H', norm_cfg=dict(type='MMSyncBN'))],
                                 neck=dict(type='N', norm=dict(type='SyncBN', eps=1e-3)))))
    assert sync_bn_to_bn(cfg) == ['model.heads[0].norm_cfg', 'model.neck.norm']
    assert cfg.model.neck.norm == dict(type='BN', eps=1e-3)


# ----------------------------------------------------------------------------- data


def test_generated_set_has_ade20k_layout_and_a_majority_baseline(tmp_path):
    made = make_ade20k_style(str(tmp_path), num_train=3, num_val=2, image_size=(40, 56))
    assert made['classes'] == SYNTHETIC_ADE20K_CLASSES
    for split, count in (('training', 3), ('validation', 2)):
        images = sorted(os.listdir(tmp_path / 'images' / split))
        labels = sorted(os.listdir(tmp_path / 'annotations' / split))
        assert images == [f'{i:06d}.jpg' for i in range(1, count + 1)]
        assert labels == [f'{i:06d}.png' for i in range(1, count + 1)]
    label = np.array(Image.open(tmp_path / 'annotations' / 'training' / '000001.png'))
    assert label.shape == (40, 56) and label.dtype == np.uint8
    assert 0 in label and label.max() <= len(SYNTHETIC_ADE20K_CLASSES)  # 0: unlabelled
    # deterministic
    again = tmp_path / 'again'
    make_ade20k_style(str(again), num_train=3, num_val=2, image_size=(40, 56))
    assert (again / 'annotations/validation/000002.png').read_bytes() == \
        (tmp_path / 'annotations/validation/000002.png').read_bytes()

    baseline = majority_class_baseline(str(tmp_path), len(SYNTHETIC_ADE20K_CLASSES))
    labels = np.concatenate([np.array(Image.open(p)).ravel() for p in
                             sorted((tmp_path / 'annotations/validation').glob('*.png'))])
    labelled = labels[labels > 0] - 1  # reduce_zero_label
    counts = np.bincount(labelled, minlength=5)
    present = (counts > 0).sum()  # classes absent from prediction and truth are NaN in mmseg
    assert baseline['class'] == counts.argmax()
    assert baseline['mIoU'] == pytest.approx(100 * counts.max() / counts.sum() / present,
                                             rel=1e-4)
    with pytest.raises(ValueError, match='need >= 1 image per split'):
        make_ade20k_style(str(tmp_path / 'bad'), num_val=0)


# ----------------------------------------------------------------------------- tools


@pytest.fixture(scope='module')
def ade20k_synthetic(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('ade20k'))
    make_ade20k_style(root, num_train=8, num_val=4)
    return root


def _losses_and_miou(work):
    """(training losses logged, whether validation logged mIoU) of a finished run."""
    scalars_file, = work.glob('*/vis_data/scalars.json')
    scalars = [json.loads(line) for line in scalars_file.read_text().splitlines()]
    return sum('loss' in s for s in scalars), any('mIoU' in s for s in scalars)


def _data_options(root):
    return [f'{s}_dataloader.dataset.data_root={root}' for s in ('train', 'val', 'test')]


def test_train_test_show_dir_and_inferencer_on_the_generated_set(ade20k_synthetic, tmp_path,
                                                                 capsys, monkeypatch):
    """tools/train.py then tools/test.py (IoUMetric, overlays), then mmseg's own inferencer."""
    monkeypatch.chdir(ROOT)
    work = str(tmp_path / 'work')
    options = _data_options(ade20k_synthetic) + [
        'train_cfg.max_iters=3', 'train_cfg.val_interval=3', 'train_dataloader.batch_size=2',
        'default_hooks.checkpoint.interval=3', 'default_hooks.logger.interval=1',
        'param_scheduler.0.end=1', 'param_scheduler.1.begin=1', 'param_scheduler.1.end=3']
    train_tool.main([SYNTHETIC, '--work-dir', work, '--cfg-options', *options])
    assert 'SyncBN -> BN (no GPU' in capsys.readouterr().out
    checkpoint = str(tmp_path / 'work' / 'iter_3.pth')
    assert _losses_and_miou(tmp_path / 'work') == (3, True)

    # the test data alone is enough to test (the training set is never built)
    show = str(tmp_path / 'show')
    test_options = [f'test_dataloader.dataset.data_root={ade20k_synthetic}']
    metrics = test_tool.main([SYNTHETIC, checkpoint, '--work-dir', str(tmp_path / 'test'),
                              '--show-dir', show, '--cfg-options', *test_options,
                              'train_dataloader.dataset.data_root=/nonexistent'])
    assert set(metrics) >= {'aAcc', 'mIoU', 'mAcc'} and 0 <= metrics['mIoU'] <= 100
    drawn = sorted(os.listdir(os.path.join(show, 'vis_data', 'vis_image')))
    assert len(drawn) == 4 and all(name.endswith('.png') for name in drawn)

    from mmseg.apis import MMSegInferencer
    inferencer = MMSegInferencer(model=os.path.join(ROOT, SYNTHETIC), weights=checkpoint,
                                 device='cpu')
    image = os.path.join(ade20k_synthetic, 'images', 'validation', '000001.jpg')
    result = inferencer(image, return_datasamples=True)
    assert result.pred_sem_seg.data.shape == (1, 128, 160)
    assert inferencer.model.dataset_meta['classes'] == SYNTHETIC_ADE20K_CLASSES


def test_semantic_token_maps_of_a_segmentor(ade20k_synthetic, tmp_path):
    import visualize_semantic_tokens
    image = os.path.join(ade20k_synthetic, 'images', 'validation', '000001.jpg')
    out = tmp_path / 'maps'
    assert visualize_semantic_tokens.main([os.path.join(ROOT, SYNTHETIC), 'none', image,
                                           '--out', str(out)]) == 0
    assert (out / '000001' / 'stage2_unit0_recovery.png').is_file()


def test_dist_train_two_cpu_processes(ade20k_synthetic, tmp_path):
    """tools/dist_train.sh CONFIG 2 without GPUs: gloo, SyncBN switched to BN, 2 per process."""
    work = tmp_path / 'work'
    options = _data_options(ade20k_synthetic) + [
        'train_cfg.max_iters=2', 'train_cfg.val_interval=2', 'train_dataloader.batch_size=2',
        'default_hooks.checkpoint.interval=2', 'default_hooks.logger.interval=1',
        'param_scheduler.0.end=1', 'param_scheduler.1.begin=1', 'param_scheduler.1.end=2']
    env = dict(os.environ, PORT='29641', PYTHON=sys.executable)
    proc = subprocess.run(['bash', 'tools/dist_train.sh', SYNTHETIC, '2', '--work-dir',
                           str(work), '--cfg-options', *options], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert 'Distributed training: True' in log and 'GPU number: 2' in log
    # one line, from rank 0 only
    assert log.count('SyncBN -> BN (no GPU') == 1
    assert (work / 'iter_2.pth').is_file()
    assert _losses_and_miou(work) == (2, True)


@pytest.mark.slow
def test_learns_far_above_the_majority_class_baseline(tmp_path, monkeypatch):
    """What `make demo-seg` shows, shorter: 40 steps from scratch beat the trivial predictor."""
    monkeypatch.chdir(ROOT)
    root = str(tmp_path / 'data')
    make_ade20k_style(root, num_train=64, num_val=16)
    work = str(tmp_path / 'work')
    options = _data_options(root) + [
        'train_cfg.max_iters=40', 'train_cfg.val_interval=40',
        'default_hooks.checkpoint.interval=40', 'param_scheduler.1.end=40']
    train_tool.main([SYNTHETIC, '--work-dir', work, '--cfg-options', *options])
    metrics = test_tool.main([SYNTHETIC, os.path.join(work, 'iter_40.pth'), '--work-dir', work,
                              '--cfg-options', *options])
    baseline = majority_class_baseline(root, len(SYNTHETIC_ADE20K_CLASSES))
    assert metrics['mIoU'] > baseline['mIoU'] + 30, (metrics, baseline)
