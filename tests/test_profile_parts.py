"""Per-part profile: the parts add up to the total, each part of STViT-R is found, and the
wrappers leave the models as they were (times are never asserted)."""
import pytest
import torch

import profile_parts
from stvit_mm.analysis import make_forward
from stvit_mm.analysis.part_report import format_parts, profile_configs
from stvit_mm.analysis.parts import PARTS, TOTAL, classify, instrument
from stvit_mm.analysis.parts import profile_parts as run
from stvit_mm.utils import build_model, load_config

SWIN = 'mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py'
STVIT_R = 'stvit_mm::detection/mask_rcnn_stvit_r_swin_t.py'
OURS_ONLY = ('generator neighbourhood gather', 'generator layers', 'semantic blocks',
             'recovery')


def check_sums(parts: dict) -> None:
    """Parts add up to the total within 1% (the walk gives every microsecond a part)."""
    total = parts[TOTAL]['time_ms']
    assert total > 0
    assert sum(parts[p]['time_ms'] for p in PARTS) == pytest.approx(total, rel=0.01)
    assert sum(parts[p]['ops'] for p in PARTS) == parts[TOTAL]['ops']


def test_stvit_r_parts_sum_and_each_is_found():
    model = build_model(load_config(STVIT_R))
    case = make_forward(model, (64, 96), 1)
    with torch.inference_mode():
        case.run_backbone()
        parts = run(model.backbone, case.run_backbone, rounds=1)['parts']
    check_sums(parts)
    for part in PARTS:
        assert parts[part]['ops'] > 0 and parts[part]['time_ms'] > 0, part


@pytest.mark.slow
def test_detection_backbones_side_by_side():
    """Stock Swin and ours at two batch sizes through the tool's library call (a minute)."""
    result = profile_configs([SWIN, STVIT_R], (64, 96), [1, 2], rounds=1, warmup=1)
    runs = result['runs']
    assert [(r['backbone'], r['batch_size']) for r in runs] == [
        ('SwinTransformer', 1), ('STViTSwin', 1), ('SwinTransformer', 2), ('STViTSwin', 2)]
    for run_ in runs:
        check_sums(run_['parts'])
        parts = run_['parts']
        for part in ('attention (window / image tokens)', 'padding and partition copies',
                     'everything else'):
            assert parts[part]['ops'] > 0, (run_['backbone'], part)
        for part in OURS_ONLY:
            if run_['backbone'] == 'STViTSwin':
                assert parts[part]['ops'] > 0 and parts[part]['time_ms'] > 0, part
            else:
                assert parts[part]['ops'] == 0, part
    table = format_parts(result)
    assert all(part in table for part in PARTS) and 'STViTSwin b=2' in table


def test_classification_backbones_and_wrappers_removed():
    models = [build_model(load_config(c)) for c in (
        'mmpretrain::deit/deit-small_4xb256_in1k.py',
        'stvit_mm::classification/stvit_deit_s_in1k.py')]
    for model, ours in zip(models, (False, True)):
        case = make_forward(model, (64, 64), 2)
        before = {id(m): set(vars(m)) for m in model.modules()}
        with torch.inference_mode():
            result = run(model.backbone, case.run_backbone, rounds=1)
        assert {id(m): set(vars(m)) for m in model.modules()} == before  # wrappers gone
        parts = result['parts']
        check_sums(parts)
        assert result['marked'] > 0
        assert parts['attention (window / image tokens)']['ops'] > 0
        assert (parts['generator layers']['ops'] > 0) == ours
        assert (parts['semantic blocks']['ops'] > 0) == ours


def test_instrument_marks_stvit_r_parts():
    model = build_model(load_config(STVIT_R))
    with instrument(model.backbone) as marked:
        wrapped = [type(m).__name__ for m in model.backbone.modules()
                   if {'forward', 'generate', 'window_attention'} & set(vars(m))]
    assert marked == len(wrapped) + 1  # + the unit's recover_locally
    assert {'WindowBlock', 'WindowedDumbbellUnit', 'Block'} <= set(wrapped)


def test_classify_copies_and_gathers():
    attention, copies, gather, generator = PARTS[:2] + PARTS[2:4]
    assert classify('aten::index_select', attention) == copies
    assert classify('aten::linear', attention) == attention
    assert classify('aten::index', generator) == gather
    assert classify('aten::index_select', generator) == copies
    assert classify('aten::addmm', generator) == generator
    assert classify('aten::index', 'recovery') == 'recovery'


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the error without CUDA')
def test_cuda_unavailable_is_one_line(capsys):
    assert profile_parts.main([SWIN, '--device', 'cuda']) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        'profile_parts.py: error: --device cuda: CUDA is not available on this machine']
