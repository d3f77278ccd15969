"""Detection/classification configs and the simple-pyramid neck, built with real mm* components.

No weights are downloaded: every ``Pretrained`` init_cfg is dropped before building (and SyncBN
becomes BN, as mmengine's runner does without distributed training).
"""
import math
import os

import pytest
import torch
from mmengine.config import Config, ConfigDict
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import init_default_scope

import stvit_mm.models  # noqa: F401  (registers STViT, STViTSwin)
import stvit_mm.models.necks  # noqa: F401  (STViTSimplePyramid, until models/ imports it)
from stvit_mm.models import STViT, STViTSwin
from stvit_mm.models.necks import STViTSimplePyramid
from stvit_mm.utils.config import resolve_config_path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMAGE = (3, 128, 160)  # (C, H, W); multiple of 32 as the detectors' pad_size_divisor

DETECTION_CONFIGS = [
    'mask_rcnn_stvit_r_swin_t.py', 'mask_rcnn_stvit_r_swin_t_3x.py',
    'mask_rcnn_stvit_r_swin_s_3x.py', 'cascade_mask_rcnn_stvit_r_swin_s_3x.py',
    'cascade_mask_rcnn_stvit_r_swin_b_3x.py', 'mask_rcnn_stvit_r_deit_s_simple_pyramid.py'
]
# official STViT-R-Swin parameter counts (classifier with head), see method.md
CLASSIFICATION_CONFIGS = {'stvit_r_swin_t_in1k.py': None, 'stvit_r_swin_s_in1k.py': 49_625_518,
                          'stvit_r_swin_b_in1k.py': 87_812_336}
# What docs/configs.md tells users to write in place of a stock backbone.
SWAP = dict(type='STViTSwin', arch='tiny', recovery=True)
SWIN_T_CHANNELS = [96, 192, 384, 768]


def _offline(node):
    """Drop ``Pretrained`` init_cfgs (no downloads) and turn SyncBN into BN, in place."""
    if isinstance(node, dict):
        init = node.get('init_cfg')
        if isinstance(init, dict) and init.get('type') == 'Pretrained':
            node['init_cfg'] = None
        elif isinstance(init, list):
            node['init_cfg'] = [c for c in init if c.get('type') != 'Pretrained'] or None
        if node.get('type') == 'SyncBN':
            node['type'] = 'BN'
        for value in node.values():
            _offline(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            _offline(value)
    return node


def _load(path: str) -> Config:
    return Config.fromfile(resolve_config_path(path))


def _few_proposals(cfg: Config) -> Config:
    """Keep CPU time low: the heads run on tens, not thousands, of random-weight proposals."""
    model = cfg.model
    if model.get('test_cfg', {}).get('rpn'):
        model.test_cfg.rpn.update(nms_pre=100, max_per_img=20)
    if model.get('train_cfg', {}).get('rpn_proposal'):
        model.train_cfg.rpn_proposal.update(nms_pre=100, max_per_img=20)
    return cfg


def _build(cfg: Config):
    init_default_scope(cfg.default_scope)
    _few_proposals(cfg)
    if cfg.default_scope == 'mmdet':
        from mmdet.registry import MODELS
    else:
        from mmpretrain.registry import MODELS
    model = revert_sync_batchnorm(MODELS.build(_offline(cfg.model)))
    model.eval()  # mmdet's SwinTransformer.train() returns None: never chained
    return model


def _batch(model, training: bool = False):
    from mmdet.testing import demo_mm_inputs
    packed = demo_mm_inputs(batch_size=1, image_shapes=[IMAGE], num_items=[1], num_classes=80,
                            with_mask=True)
    return model.data_preprocessor(packed, training)


def _tensors(out):
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, dict):
        out = list(out.values())
    return [t for item in out for t in _tensors(item)] if isinstance(out, (list, tuple)) else []


def _check_detector(model):
    """Pyramid levels match the anchor strides; tensor-mode outputs are finite."""
    data = _batch(model)
    H, W = data['inputs'].shape[-2:]
    head = model.rpn_head if hasattr(model, 'rpn_head') else model.bbox_head
    strides = [s[0] for s in head.prior_generator.strides]
    with torch.no_grad():
        feats = model.extract_feat(data['inputs'])
        assert [tuple(f.shape) for f in feats] == [
            (1, 256, math.ceil(H / s), math.ceil(W / s)) for s in strides]
        outs = _tensors(model(**data, mode='tensor'))
    assert outs and all(torch.isfinite(t).all() for t in outs)


def _check_loss(model):
    model.train()
    losses = model(**_batch(model, training=True), mode='loss')
    total, _ = model.parse_losses(losses)
    assert torch.isfinite(total)
    total.backward()
    # the STViT-R recovery blocks are part of the detector's graph
    grads = [p.grad for n, p in model.backbone.named_parameters() if '.recovery.' in n]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)
    model.eval()


@pytest.mark.parametrize('name', DETECTION_CONFIGS)
def test_detection_config_builds_and_runs(name):
    cfg = _load(os.path.join(ROOT, 'configs', 'detection', name))
    assert cfg.custom_imports['imports'][0] == 'stvit_mm.models'
    init = cfg.model.backbone.init_cfg
    assert init.type == 'Pretrained' and init.checkpoint.startswith('https://')
    neck_in = cfg.model.neck.in_channels
    torch.manual_seed(0)
    model = _build(cfg)
    backbone = model.backbone
    if isinstance(backbone, STViTSwin):  # STViT-R, neck in_channels = the stage channels
        assert backbone.recovery
        assert neck_in == [backbone.num_features[i] for i in backbone.out_indices]
    else:
        assert isinstance(backbone, STViT) and backbone.recovery_enabled
        assert neck_in == backbone.embed_dims
    _check_detector(model)


@pytest.mark.parametrize('name', ['mask_rcnn_stvit_r_swin_t.py',
                                  'mask_rcnn_stvit_r_deit_s_simple_pyramid.py'])
def test_detector_features_are_contiguous_nchw(name):
    """mmcv's CPU RoIAlign reads channels-last strided maps as NCHW (scrambled RoI features,
    Mask R-CNN trained to ~0 mAP): every map handed to the neck and heads must be contiguous."""
    model = _build(_load(os.path.join(ROOT, 'configs', 'detection', name)))
    with torch.no_grad():
        maps = model.backbone(torch.randn(2, *IMAGE))
        pyramid = model.neck(maps)
    assert all(m.is_contiguous() for m in maps + pyramid)


@pytest.mark.parametrize('name', sorted(CLASSIFICATION_CONFIGS))
def test_classification_config_builds_and_runs(name):
    cfg = _load(os.path.join(ROOT, 'configs', 'classification', name))
    torch.manual_seed(0)
    model = _build(cfg)
    assert isinstance(model.backbone, STViTSwin) and model.backbone.out_indices == (3, )
    expected = CLASSIFICATION_CONFIGS[name]
    if expected is not None:  # the official STViT-R-Swin architecture, parameter for parameter
        assert sum(p.numel() for p in model.parameters()) == expected
    with torch.no_grad():
        logits = model(torch.randn(1, 3, 64, 64), mode='tensor')
    assert logits.shape == (1, 1000) and torch.isfinite(logits).all()


@pytest.mark.parametrize('stock, loss', [
    ('mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py', True),
    ('mmdet::swin/retinanet_swin-t-p4-w7_fpn_1x_coco.py', False),
    ('mmdet::cascade_rcnn/cascade-mask-rcnn_r50_fpn_1x_coco.py', True),
])
def test_backbone_swap_into_stock_mmdet_config(stock, loss):
    cfg = _load(stock)
    old = cfg.model.backbone
    # docs/configs.md's lines; a stock config's out_indices stay (RetinaNet: (1, 2, 3))
    cfg.model.backbone = ConfigDict(SWAP, out_indices=tuple(old.get('out_indices', (0, 1, 2, 3))))
    if old.type != 'SwinTransformer':  # e.g. ResNet: its neck expects ResNet's channels
        cfg.model.neck.in_channels = SWIN_T_CHANNELS
    cfg.custom_imports = dict(imports=['stvit_mm.models'], allow_failed_imports=False)
    torch.manual_seed(0)
    model = _build(cfg)
    _check_detector(model)
    if loss:
        _check_loss(model)


def test_deit_config_loads_mmpretrain_deit_checkpoint(tmp_path):
    """The simple-pyramid config's init_cfg (prefix 'backbone.') loads an mmpretrain DeiT file."""
    from mmpretrain.models import VisionTransformer
    torch.manual_seed(0)
    deit = VisionTransformer(arch='deit-small')
    path = tmp_path / 'deit-small.pth'
    torch.save({'state_dict': {'backbone.' + k: v for k, v in deit.state_dict().items()}}, path)
    cfg = _load(os.path.join(ROOT, 'configs', 'detection',
                             'mask_rcnn_stvit_r_deit_s_simple_pyramid.py'))
    backbone_cfg = cfg.model.backbone.copy()
    backbone_cfg.pop('type')
    backbone_cfg.init_cfg.checkpoint = str(path)
    backbone = STViT(**backbone_cfg)
    backbone.init_weights()
    assert backbone.last_load_report['layout'] == 'mmpretrain'
    torch.testing.assert_close(backbone.blocks[1].mlp.fc1.weight,
                               deit.layers[1].ffn.layers[0][0].weight)
    assert backbone.pos_embed.shape == (1, 64 * 64, 384)  # img_size 1024, resized from 14x14


def test_swin_config_init_cfg_loads_microsoft_release_file(tmp_path):
    from mmdet.models.backbones import SwinTransformer

    from stvit_mm.checkpoints.swin import to_canonical
    # a whole Swin-T in the Microsoft naming (a partial file of another depth is refused)
    release, _, _ = to_canonical(SwinTransformer().state_dict(), 'openmmlab')
    weight = torch.full((96, ), 3.0)
    release['layers.0.blocks.0.norm1.weight'] = weight
    path = tmp_path / 'swin_tiny_patch4_window7_224.pth'
    torch.save({'model': release}, path)
    backbone = STViTSwin(arch='tiny', init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    backbone.init_weights()
    torch.testing.assert_close(backbone.stages[0].blocks[0].norm1.weight.detach(), weight)


# ---- STViTSimplePyramid alone ----

@pytest.mark.parametrize('size', [(8, 10), (7, 9), (1, 1)])
def test_simple_pyramid_shapes(size):
    neck = STViTSimplePyramid(in_channels=64, out_channels=32, num_outs=5)
    outs = neck((torch.randn(2, 64, *size), ))
    H, W = size  # stride-16 grid; level i has ceil(H * 16 / stride_i) rows
    expected = [(2, 32, math.ceil(H * 16 / s), math.ceil(W * 16 / s)) for s in (4, 8, 16, 32, 64)]
    assert [tuple(o.shape) for o in outs] == expected


def test_simple_pyramid_num_outs_and_gradients():
    neck = STViTSimplePyramid(in_channels=64, out_channels=32, num_outs=4)
    neck.init_weights()
    x = torch.randn(1, 64, 6, 5, requires_grad=True)
    outs = neck((x, ))
    assert len(outs) == 4
    sum(o.square().mean() for o in outs).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    for name, p in neck.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_simple_pyramid_errors():
    neck = STViTSimplePyramid(in_channels=64)
    x = torch.randn(1, 64, 4, 4)
    with pytest.raises(ValueError, match='expected a 1-tuple.*got a Tensor'):
        neck(x)
    with pytest.raises(ValueError, match='expected a 1-tuple.*got a tuple of 2'):
        neck((x, x))
    with pytest.raises(ValueError, match=r'expected a \(B, C, H, W\) map, got \(64, 4, 4\)'):
        neck((x[0], ))
    with pytest.raises(ValueError, match='expected 64 input channels, got 32'):
        neck((torch.randn(1, 32, 4, 4), ))
    with pytest.raises(ValueError, match='num_outs=3, need at least 4'):
        STViTSimplePyramid(in_channels=64, num_outs=3)
