# Quick start: `make demo` (main job on generated data) and `make test` (test suite);
# `make demo-video`: video recognition (mmaction2) on generated clips;
# `make demo-seg`: semantic segmentation (mmsegmentation UperNet) on generated images.
# All install first; `make install` is idempotent (seconds when everything is in place).
# `make lint`: ruff on the whole tree (needs only ruff: `pip install ruff`).
# The active environment's interpreter (`python` in a venv; `python3` where no `python` exists).
PYTHON ?= $(shell command -v python >/dev/null 2>&1 && echo python || echo python3)
SHARED_WHEELS := $(abspath ../shared/wheels)
# A prebuilt mmcv wheel beside the checkout (this machine kind) saves a 20-minute source build.
ifneq ($(wildcard $(SHARED_WHEELS)/*.whl),)
export PIP_FIND_LINKS := $(strip $(PIP_FIND_LINKS) $(SHARED_WHEELS))
endif

.PHONY: install demo demo-video demo-seg test test-all lint
install:
	PYTHON=$(PYTHON) bash tools/install.sh

demo: install
	$(PYTHON) tools/demo.py

demo-video: install
	$(PYTHON) tools/demo_video.py

demo-seg: install
	$(PYTHON) tools/demo_seg.py

test: install
	$(PYTHON) -m pytest -q tests

# What CI runs: the fast suite plus the slow tests (Slurm, rank failures, the stock-config
# swap sweep, install tests); prints why each skipped test skipped and the slowest tests.
test-all: install
	$(PYTHON) -m pytest -q -rs --durations=25 --runslow tests

# ruff with the rules and line length of pyproject.toml (the default test suite runs it too)
lint:
	$(PYTHON) -m ruff check .

# `make bench-gpu`: the GPU speed suite, ours vs stock (docs/speed.md); needs CUDA.
.PHONY: bench-gpu
bench-gpu: install
	$(PYTHON) tools/bench_gpu.py --device cuda
