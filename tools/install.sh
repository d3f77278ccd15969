#!/usr/bin/env bash
# Idempotent install of stvit-mm and its OpenMMLab stack into the active Python environment.
# Each step is skipped when what it provides already imports, so a second run takes seconds.
# Order matters: torch first (mmcv compiles against it), mmcv with ops, the rest, setuptools
# pinned last (the mm packages may upgrade it past 82, which breaks `mmdet::` config paths).
set -euo pipefail

PY=${PYTHON:-python}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TORCH_VERSION=2.14.1
TORCHVISION_VERSION=0.29.1
MMCV_VERSION=2.1.0
BUILD_DIR=${STVIT_BUILD_DIR:-$ROOT/.build}

say() { printf '[install] %s\n' "$*"; }
pip_install() { "$PY" -m pip install --disable-pip-version-check -q "$@"; }

MMENGINE_VERSION=$(sed -n 's/^mmengine==//p' "$ROOT/requirements.txt")
# One Python start checks everything; a complete install stops here.
status=$("$PY" "$ROOT/tools/install_check.py" "$MMENGINE_VERSION" "$MMCV_VERSION" 2>/dev/null || true)
if [ "$(grep -c ' ok$' <<< "$status")" = 5 ]; then
    say "torch, mmcv with ops, requirements.txt, setuptools and stvit-mm already work: nothing to do ($SECONDS s)"
    exit 0
fi
say "to install: $(grep ' missing$' <<< "$status" | cut -d' ' -f1 | tr '\n' ' ')"

# 1. torch + torchvision: keep any working matching pair (e.g. a GPU user's CUDA build).
if "$PY" - <<'EOF' 2>/dev/null
import torch, torchvision  # noqa: F401
from torchvision.ops import nms  # fails when torchvision does not match torch
import torch as t
nms(t.zeros(1, 4), t.zeros(1), 0.5)
EOF
then
    say "torch $("$PY" -c 'import torch; print(torch.__version__)') + torchvision already work: kept"
else
    say "installing torch==$TORCH_VERSION torchvision==$TORCHVISION_VERSION (large download the first time)"
    pip_install "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION"
fi

# 2. mmcv with compiled ops (mmdet needs mmcv._ext for RoIAlign/NMS; mmcv-lite lacks it).
#    mmengine first: `import mmcv.ops` needs it, and it is what tells a working mmcv.
if ! "$PY" -c "import mmengine; assert mmengine.__version__ == '$MMENGINE_VERSION'" 2>/dev/null; then
    say "installing mmengine==$MMENGINE_VERSION"
    pip_install "mmengine==$MMENGINE_VERSION"
fi
mmcv_ok() { "$PY" -c "import mmcv, mmcv.ops; assert mmcv.__version__ == '$MMCV_VERSION'" 2>/dev/null; }
if mmcv_ok; then
    say "mmcv $MMCV_VERSION with ops already works: kept"
else
    pip_install "setuptools>=77,<82" wheel numpy ninja packaging
    say "looking for a prebuilt mmcv $MMCV_VERSION wheel in PIP_FIND_LINKS='${PIP_FIND_LINKS:-}'"
    if pip_install --only-binary mmcv "mmcv==$MMCV_VERSION" 2>/dev/null && mmcv_ok; then
        say "mmcv $MMCV_VERSION installed from a prebuilt wheel"
    else
        say "no usable wheel: building mmcv $MMCV_VERSION with ops from source."
        say "This takes about 20-25 minutes on 2 cores; compiler progress follows."
        PYTHON="$PY" bash "$ROOT/tools/build_mmcv_wheel.sh" "$MMCV_VERSION" "$BUILD_DIR/wheels" "$BUILD_DIR"
        pip_install "$BUILD_DIR"/wheels/mmcv-$MMCV_VERSION-*.whl
        mmcv_ok || { say "ERROR: mmcv built but 'import mmcv.ops' fails"; exit 1; }
        say "mmcv $MMCV_VERSION built and installed"
    fi
fi

# 3. The rest of requirements.txt, then exactly one OpenCV (mmcv pulls opencv-python, mmaction2
#    pulls opencv-contrib-python; both write the same cv2 folder and break each other).
#    The first check above compared every requirements.txt line with what is installed.
if grep -q '^stack ok$' <<< "$status"; then
    say "requirements.txt already satisfied, one OpenCV: kept"
else
    say "installing requirements.txt (mmengine, mmdet, mmsegmentation, mmpretrain, mmaction2, pycocotools, ...)"
    pip_install -r "$ROOT/requirements.txt"
    cv_version=$("$PY" -m pip show opencv-contrib-python 2>/dev/null | awk '/^Version:/{print $2}')
    say "keeping a single OpenCV: opencv-contrib-python ${cv_version}"
    "$PY" -m pip uninstall -y -q opencv-python opencv-python-headless opencv-contrib-python 2>/dev/null || true
    pip_install --no-deps "opencv-contrib-python==${cv_version}"
fi

# 4. setuptools last: mmengine needs pkg_resources (removed in 82), torch wants >= 77.
if "$PY" -c "import pkg_resources, setuptools as s; v=tuple(map(int, s.__version__.split('.')[:2])); assert (77,0) <= v < (82,0)" 2>/dev/null; then
    say "setuptools $("$PY" -c 'import setuptools; print(setuptools.__version__)') ok"
else
    say "pinning setuptools>=77,<82"
    pip_install "setuptools>=77,<82"
fi

# 5. The package itself (editable, no deps: everything above is already in place).
if "$PY" -c "import stvit_mm, os, sys; sys.exit(0 if os.path.dirname(os.path.dirname(stvit_mm.__file__)) == '$ROOT' else 1)" 2>/dev/null \
    && "$PY" -m pip show stvit-mm >/dev/null 2>&1; then
    say "stvit-mm already installed (editable) from $ROOT"
else
    say "installing stvit-mm (editable) from $ROOT"
    pip_install --no-deps --no-build-isolation -e "$ROOT"
fi

"$PY" -c "import stvit_mm.models" || { say "ERROR: 'import stvit_mm.models' fails after install"; exit 1; }
say "done in $SECONDS s: $("$PY" -c 'import torch, mmcv, mmdet, mmseg, mmpretrain, mmaction, mmengine; print(f"torch {torch.__version__}, mmengine {mmengine.__version__}, mmcv {mmcv.__version__}, mmdet {mmdet.__version__}, mmseg {mmseg.__version__}, mmpretrain {mmpretrain.__version__}, mmaction2 {mmaction.__version__}")')"
