"""The GPU speed suite's logic on the CPU (tiny shapes): JSON, spread, SDPA record, errors.

Speed is never asserted: only that every figure is there with its spread.
"""
import json
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

import bench_gpu
import benchmark
from stvit_mm.analysis.rounds import ratio_rounds, spread, time_rounds
from stvit_mm.analysis.sdpa import SdpaRecorder, record_sdpa
from stvit_mm.analysis.suite import GPU_CASES, TINY_CASES, TINY_PAIRS, run_suite, select_cases

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAST_CASES = ['deit_s/model/b1/fp32', 'deit_s/model/b1/bf16']  # train, predict...: slow test


def check_spread(values: dict, rounds: int) -> None:
    assert values['rounds'] == rounds
    assert 0 < values['min'] <= values['median'] <= values['max']


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the error without CUDA')
def test_cuda_unavailable_is_one_line():
    proc = subprocess.run([sys.executable, os.path.join(ROOT, 'tools', 'bench_gpu.py')],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 2 and proc.stdout == ''
    assert proc.stderr.strip().splitlines() == [
        'bench_gpu.py: error: --device cuda: CUDA is not available on this machine']


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the error without CUDA')
def test_benchmark_tool_cuda_unavailable_is_one_line(capsys):
    assert benchmark.main(['configs/stvit_deit_t_in1k.py', '--device', 'cuda']) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ['benchmark.py: error: --device cuda: CUDA is not available on this machine']


def test_gpu_cases_cover_the_issue():
    names = {c.name for c in GPU_CASES}
    for name in ('deit_s/model/b1/fp32', 'deit_s/model/b64/bf16', 'deit_s/model/b256/fp32',
                 'mask_rcnn_swin_t/backbone/b8/bf16', 'mask_rcnn_swin_t/predict/b1/fp32',
                 'mask_rcnn_swin_t/predict/b8/fp16', 'upernet_swin_t/model/b1/fp32',
                 'video_swin_t/model/b1/bf16', 'deit_s/train/b64/bf16',
                 'mask_rcnn_swin_t/backbone/b1/bf16/compiled'):
        assert name in names, name
    assert len(names) == len(GPU_CASES)

    def kinds(cases):
        return {(c.pair, c.measure, c.precision, c.compile) for c in cases}
    assert kinds(TINY_CASES) == kinds(GPU_CASES)  # tiny: the same kinds at small batches


def test_tiny_suite_cli_writes_every_case_with_spread(tmp_path, capsys):
    argv = ['--device', 'cpu', '--tiny', '--cases', *FAST_CASES, '--rounds', '2',
            '--warmup', '1', '--min-time', '0', '--out-dir', str(tmp_path)]
    assert bench_gpu.main(argv) == 0
    table = capsys.readouterr().out
    with open(tmp_path / 'bench_gpu.json', encoding='utf-8') as f:
        result = json.load(f)
    assert [c['name'] for c in result['cases']] == FAST_CASES
    assert result['device'].startswith('cpu') and result['rounds'] == 2
    for case in result['cases']:
        assert 'error' not in case, case.get('error')
        assert case['name'] in table
        check_spread(case['speedup'], 2)
        for side in ('stock', 'ours'):
            check_spread(case[side]['ms'], 2)
            assert len(case[side]['ms_rounds']) == 2 and case[side]['peak_mem_mb'] > 0
        # ours runs every attention through SDPA; the CPU's fused kernel is 'flash'
        assert case['ours']['sdpa']['sdpa_calls'] > 0
        assert set(case['ours']['sdpa']['backends']) <= {'flash', 'math'}
    bf16 = result['cases'][1]['ours']['sdpa']['kinds']
    assert {kind['dtype'] for kind in bf16} == {'bfloat16'}  # autocast reached attention
    assert (tmp_path / 'bench_gpu.md').read_text().startswith('device cpu')


def test_failed_case_is_recorded_and_the_suite_goes_on():
    cases = select_cases(TINY_CASES, ['deit_s/model/b1/fp32'])
    pairs = dict(TINY_PAIRS, deit_s=TINY_PAIRS['deit_s'].__class__(
        'classification', 'mmpretrain::deit/deit-small_4xb256_in1k.py', 'missing_config.py',
        (64, 64)))
    result = run_suite(cases * 2, pairs, 'cpu', rounds=1, warmup=0, min_time=0)
    assert len(result['cases']) == 2
    assert all('missing_config.py' in case['error'] for case in result['cases'])


def test_time_budget_skips_the_remaining_cases():
    cases = select_cases(TINY_CASES, ['deit_s/model/b1/fp32', 'deit_s/model/b4/fp32'])
    result = run_suite(cases, TINY_PAIRS, 'cpu', rounds=1, warmup=0, min_time=0, budget_s=0)
    assert [c['skipped'] for c in result['cases']] == ['time budget spent'] * 2


@pytest.mark.slow
def test_every_tiny_case_runs(tmp_path):
    """All kinds of case (predict, segmentation, video, compile) at tiny shapes: minutes."""
    result = run_suite(TINY_CASES, TINY_PAIRS, 'cpu', rounds=1, warmup=1, min_time=0)
    assert [c['name'] for c in result['cases']] == [c.name for c in sorted(
        TINY_CASES, key=lambda c: list(TINY_PAIRS).index(c.pair))]
    errors = {c['name']: c['error'] for c in result['cases'] if 'error' in c}
    # mmcv's CPU RoI ops take float only: the fp16 predict cases run on CUDA, not here
    half_predict = {name for name in errors if '/predict/' in name and name.endswith('fp16')}
    assert all('Half' in errors[name] for name in half_predict), errors
    assert set(errors) == half_predict, errors


def test_rounds_alternate_and_spread():
    calls = []
    times = time_rounds([lambda: calls.append('a'), lambda: calls.append('b')], rounds=3,
                        iters=[1, 2])
    assert calls == ['a', 'b', 'b', 'b', 'b', 'a', 'a', 'b', 'b']
    assert [len(t) for t in times] == [3, 3]
    assert spread([3.0, 1.0, 2.0]) == dict(median=2.0, min=1.0, max=3.0, rounds=3)
    assert ratio_rounds([2.0, 4.0], [1.0, 2.0]) == [2.0, 2.0]
    with pytest.raises(ValueError):
        spread([])


def test_sdpa_recorder_counts_backends_and_explicit_softmax():
    q = torch.randn(2, 3, 7, 8)
    mask = torch.ones(7, 7, dtype=torch.bool)

    def forward():
        F.scaled_dot_product_attention(q, q, q)
        F.scaled_dot_product_attention(q, q, q, attn_mask=mask)
        (q @ q.transpose(-2, -1)).softmax(-1)  # explicit attention, no SDPA call

    summary = record_sdpa(forward)
    assert summary['sdpa_calls'] == 2 and summary['softmax_calls'] == 1
    assert sum(summary['backends'].values()) == 2
    assert sorted(kind['mask'] for kind in summary['kinds']) == [False, True]
    bias = torch.zeros(1, 3, 7, 7, requires_grad=True)  # a learned bias: needs its gradient
    (kind, ) = record_sdpa(lambda: F.scaled_dot_product_attention(q, q, q, bias))['kinds']
    assert kind['mask'] and kind['mask_grad']
    with SdpaRecorder() as recorder, torch.autocast('cpu', dtype=torch.bfloat16):
        F.scaled_dot_product_attention(q, q, q)
    assert recorder.summary()['kinds'][0]['dtype'] == 'bfloat16'
