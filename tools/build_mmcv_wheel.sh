#!/usr/bin/env bash
# Build an mmcv wheel with compiled ops from the PyPI source release, against the torch of $PYTHON.
#   PYTHON=python bash tools/build_mmcv_wheel.sh VERSION WHEEL_DIR [BUILD_DIR]
# tools/install.sh calls it when no prebuilt wheel is found (PIP_FIND_LINKS). About 20-25
# minutes on 2 cores (MAX_JOBS, default 2); CPU ops unless FORCE_CUDA=1. Prints compiler progress.
set -euo pipefail

PY=${PYTHON:-python}
VERSION=${1:?usage: build_mmcv_wheel.sh VERSION WHEEL_DIR [BUILD_DIR]}
WHEEL_DIR=${2:?usage: build_mmcv_wheel.sh VERSION WHEEL_DIR [BUILD_DIR]}
BUILD_DIR=${3:-$(mktemp -d)}

rm -rf "$BUILD_DIR/mmcv-src" && mkdir -p "$BUILD_DIR/mmcv-src" "$WHEEL_DIR"
"$PY" -m pip download --disable-pip-version-check -q --no-deps --no-binary :all: \
    --no-build-isolation "mmcv==$VERSION" -d "$BUILD_DIR/mmcv-src"
tar xzf "$BUILD_DIR/mmcv-src/mmcv-$VERSION.tar.gz" -C "$BUILD_DIR/mmcv-src"
src="$BUILD_DIR/mmcv-src/mmcv-$VERSION"
# torch >= 2.14 headers need C++20 (upstream mmcv#3341); harmless for older torch.
sed -i "s/'-std=c++17'/'-std=c++20'/g" "$src/setup.py"
# pipefail: a failed compile fails this script even though grep filters the log.
MMCV_WITH_OPS=1 FORCE_CUDA=${FORCE_CUDA:-0} MAX_JOBS=${MAX_JOBS:-2} \
    "$PY" -m pip wheel -v --no-build-isolation --no-deps "$src" -w "$WHEEL_DIR" 2>&1 |
    { grep --line-buffered -E '^\[[0-9]+/[0-9]+\]|error|Error' || true; }
ls "$WHEEL_DIR"/mmcv-"$VERSION"-*.whl
