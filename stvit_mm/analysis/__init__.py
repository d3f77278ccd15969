"""Model analysis: parameters, multiply-adds (FLOPs), speed and memory from configs.

The tools ``tools/get_flops.py`` and ``tools/benchmark.py`` are thin command
lines over :mod:`stvit_mm.analysis.complexity`; scripts can call the same
functions directly.
"""
from .complexity import (ConfigError, ForwardCase, benchmark_configs, build_model,
                         complexity_from_config, count_flops, count_params, format_benchmark,
                         format_complexity, json_stdout, load_config, make_forward, model_kind,
                         peak_memory_mb, resolve_config_path, time_forward)

__all__ = [
    'ConfigError', 'ForwardCase', 'benchmark_configs', 'build_model', 'complexity_from_config',
    'count_flops', 'count_params', 'format_benchmark', 'format_complexity', 'json_stdout',
    'load_config', 'make_forward', 'model_kind', 'peak_memory_mb', 'resolve_config_path',
    'time_forward'
]
