"""The end-to-end demos (`make demo`, `make demo-video`, `make demo-seg`): generated data,
training and evaluation through tools/train.py and tools/test.py in subprocesses, then
FLOPs and CPU throughput against the stock models. The tools/demo*.py scripts parse the
arguments and call :func:`run_demo` of :mod:`.detection`, :mod:`.video` or
:mod:`.segmentation` with the checkout's root (configs and tools are read from there)."""
