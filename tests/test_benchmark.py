"""Benchmark tool: JSON structure, measurement helpers and input errors (speed is not asserted)."""
import json
import math
import os
import subprocess
import sys
import time

import pytest
import torch
from torch import nn

import benchmark
from stvit_mm.analysis import benchmark_configs, format_benchmark, peak_memory_mb, time_forward
from stvit_mm.utils import ConfigError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STVIT_T = os.path.join(ROOT, 'configs', 'classification', 'stvit_deit_t_in1k.py')
DEIT_T = 'mmpretrain::deit/deit-tiny_4xb256_in1k.py'


def positive(value: float) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def test_benchmark_json_cli():
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, 'tools', 'benchmark.py'), STVIT_T, DEIT_T,
         '--shape', '64', '64', '--batch-size', '2', '--warmup', '1', '--repeats', '2',
         '--iters', '1', '--threads', '1', '--json'],
        capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)  # exactly one JSON document on stdout
    assert report['device'].startswith('cpu') and report['threads'] == 1
    assert report['batch_size'] == 2 and report['shape'] == [64, 64]
    assert report['measure'] == 'model' and 'profile_memory' in report['memory_method']
    assert 'tools/benchmark.py' in report['command']
    configs = [r['config'] for r in report['results']]
    assert configs == [STVIT_T, DEIT_T]
    for result in report['results']:
        for key in ('images_per_s', 'latency_ms', 'peak_mem_mb', 'ratio', 'params'):
            assert positive(result[key]), (key, result[key])
        assert result['unit'] == 'images' and result['input_shape'] == [2, 3, 64, 64]
        assert len(result['throughput_repeats']) == 2
    assert report['results'][0]['ratio'] == 1.0
    assert report['results'][1]['backbone_type'] == 'VisionTransformer'
    ref, other = report['results']
    # each repeat's own ratio
    paired = sorted(a / b for a, b in zip(other['throughput_repeats'], ref['throughput_repeats']))
    assert other['paired_ratio'] == pytest.approx(sum(paired) / 2)  # median of two
    assert (other['paired_ratio_min'], other['paired_ratio_max']) == pytest.approx(paired)
    table = format_benchmark(report)
    assert 'paired ratio [min, max]' in table
    assert f"{other['paired_ratio']:.2f}x [{paired[0]:.2f}, {paired[1]:.2f}]" in table


def test_backbone_only_library_call():
    report = benchmark_configs([STVIT_T], shape=(32, 48), batch_size=1, warmup=0, repeats=1,
                               iters=1, backbone_only=True)
    (result, ) = report['results']
    assert report['measure'] == 'backbone' and result['backbone_type'] == 'STViT'
    assert result['input_shape'] == [1, 3, 32, 48]
    assert result['ratio'] == 1.0 and positive(result['throughput'])


def test_segmentor_backbones_side_by_side():
    stock = 'mmseg::swin/swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512.py'
    ours = os.path.join(ROOT, 'configs', 'segmentation', 'upernet_stvit_r_swin_t_ade20k.py')
    report = benchmark_configs([stock, ours], shape=(56, 72), batch_size=1, warmup=0,
                               repeats=1, iters=1, backbone_only=True)
    assert [r['backbone_type'] for r in report['results']] == ['SwinTransformer', 'STViTSwin']
    for result in report['results']:
        assert result['kind'] == 'segmentor' and result['model_type'] == 'EncoderDecoder'
        assert result['input_shape'] == [1, 3, 56, 72] and positive(result['throughput'])


def test_batch_1_latency_is_the_throughput_forwards(monkeypatch):
    """At batch 1 the timed forwards are the latency samples (none timed twice)."""
    from stvit_mm.analysis import benchmark as benchmark_module
    calls = []
    real = benchmark_module.time_forward

    def counting(fn, iters, *args, **kwargs):
        calls.append(iters)
        return real(fn, iters, *args, **kwargs)

    monkeypatch.setattr(benchmark_module, 'time_forward', counting)
    report = benchmark_configs([STVIT_T], shape=(32, 48), batch_size=1, warmup=0, repeats=3,
                               iters=2)
    assert sum(calls) == 3 * 2  # repeats x iters forwards timed, none twice for the latency
    (result, ) = report['results']
    assert result['latency_ms'] == pytest.approx(1000 / result['throughput'], rel=0.5)
    assert report['timing_method'].endswith('(the same forwards)')


def test_peak_memory_of_known_forward():
    """Two Linear layers (256 -> 1024 -> 256), batch 64: the hidden output and the
    activation's output coexist (2 x 64 x 1024 float32 = 0.5 MiB) at the peak."""
    mlp = nn.Sequential(nn.Linear(256, 1024), nn.GELU(), nn.Linear(1024, 256))
    x = torch.randn(64, 256)
    with torch.inference_mode():
        peak = peak_memory_mb(lambda: mlp(x))
    assert peak == pytest.approx(2 * 64 * 1024 * 4 / 2**20, rel=0.05)


def test_time_forward_iterations_and_min_time():
    calls = []
    assert len(time_forward(lambda: calls.append(1), iters=3)) == 3 == len(calls)
    durations = time_forward(lambda: time.sleep(0.005), iters=1, min_time=0.02)
    assert sum(durations) >= 0.02 and all(d >= 0.005 for d in durations)


@pytest.mark.parametrize('argv, reason', [
    (['missing_config.py'], 'config file not found'),
    ([STVIT_T, '--shape', '-1', '64'], 'bad shape'),
    ([STVIT_T, '--batch-size', '0'], 'bad batch size'),
    ([STVIT_T, '--threads', '0'], 'bad --threads'),
])
def test_benchmark_bad_input_one_line(capsys, argv, reason):
    assert benchmark.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith('benchmark.py: error:') and reason in err[-1]


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the error without CUDA')
def test_benchmark_cuda_unavailable():
    with pytest.raises(ConfigError, match='CUDA is not available'):
        benchmark_configs([STVIT_T], device='cuda')


def test_training_step_backpropagates_every_output_and_releases_grads():
    from stvit_mm.analysis import training_step
    model = nn.ModuleDict(dict(a=nn.Linear(4, 3), b=nn.Linear(4, 2)))
    x = torch.randn(5, 4)
    reached = []
    for name, p in model.named_parameters():
        p.register_hook(lambda grad, name=name: reached.append(name))
    step = training_step(lambda: (model['a'](x), {'nested': [model['b'](x)]}), model)
    step()
    assert sorted(reached) == sorted(n for n, _ in model.named_parameters())
    assert all(p.grad is None for p in model.parameters())  # released after the step


def test_train_benchmark_times_training_steps():
    common = dict(shape=(64, 64), batch_size=4, warmup=0, repeats=1, iters=1)
    train = benchmark_configs([STVIT_T, DEIT_T], train=True, **common)
    infer = benchmark_configs([STVIT_T, DEIT_T], **common)
    assert train['step'].startswith('training') and infer['step'] == 'inference forward'
    assert 'training steps' in train['timing_method']
    for trained, inferred in zip(train['results'], infer['results']):
        assert positive(trained['images_per_s']) and positive(trained['latency_ms'])
        # activations are kept for the backward: a training step holds more at its peak
        assert trained['peak_mem_mb'] > inferred['peak_mem_mb']


def test_predict_mode_runs_post_processing_for_segmentors(monkeypatch):
    from mmseg.models.segmentors import EncoderDecoder
    seg = os.path.join(ROOT, 'configs', 'segmentation', 'upernet_stvit_r_swin_t_ade20k.py')
    common = dict(shape=(64, 96), batch_size=1, warmup=0, repeats=1, iters=1)
    calls = []
    original = EncoderDecoder.postprocess_result
    monkeypatch.setattr(EncoderDecoder, 'postprocess_result',
                        lambda self, *a, **k: calls.append(1) or original(self, *a, **k))
    result = benchmark_configs([seg], mode='predict', **common)
    assert result['mode'] == 'predict' and positive(result['results'][0]['images_per_s'])
    assert calls  # predict mode resizes the logits to the image: post-processing ran
    calls.clear()
    benchmark_configs([seg], **common)
    assert not calls  # tensor mode stops at the logits


@pytest.mark.parametrize('kwargs,reason', [
    (dict(mode='predict'), "mode 'predict' is for detectors and segmentors"),
    (dict(mode='predict', backbone_only=True), 'not with backbone only'),
    (dict(mode='guess'), "bad mode 'guess'"),
])
def test_predict_mode_bad_requests(kwargs, reason):
    with pytest.raises(ConfigError, match=reason):
        benchmark_configs([STVIT_T], shape=(64, 64), batch_size=1, warmup=0, repeats=1,
                          iters=1, **kwargs)
