"""Model analysis: parameters, multiply-adds (FLOPs), speed and memory from configs.

One module per concern; ``tools/get_flops.py``, ``tools/benchmark.py`` and
``tools/visualize_semantic_tokens.py`` are thin command lines over them:

- :mod:`.forward`: the forward measured per model kind, on generated inputs;
- :mod:`.flops`: multiply-add counting (fused attention included);
- :mod:`.complexity`: parameters and MACs of a config (``complexity_from_config``);
- :mod:`.measure`: time and peak memory of one call, the training step;
- :mod:`.benchmark`: configs timed side by side (``benchmark_configs``);
- :mod:`.report`: text tables and a JSON-only stdout;
- :mod:`.semantic_maps` (computation), :mod:`.plotting` (figures) and
  :mod:`.visualize` (end to end on image files): semantic token maps; import
  them from their modules.

Config and model loading live in :mod:`stvit_mm.utils`.
"""
from .benchmark import benchmark_configs
from .complexity import complexity_from_config
from .flops import count_flops, count_params
from .forward import DEFAULT_CLIP_LEN, DEFAULT_SHAPES, ForwardCase, make_forward
from .measure import peak_memory_mb, time_forward, training_step
from .report import format_benchmark, format_complexity, json_stdout, report_to_stdout

__all__ = [
    'DEFAULT_CLIP_LEN', 'DEFAULT_SHAPES', 'ForwardCase', 'benchmark_configs',
    'complexity_from_config', 'count_flops', 'count_params', 'format_benchmark',
    'format_complexity', 'json_stdout', 'make_forward', 'peak_memory_mb', 'report_to_stdout',
    'time_forward', 'training_step'
]
