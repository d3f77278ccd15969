#!/usr/bin/env bash
# Multi-process training with torchrun, as mmdet's dist_train.sh:
#   tools/dist_train.sh CONFIG GPUS [train.py args...]
# Multi-node: NNODES, NODE_RANK, MASTER_ADDR, PORT. Without GPUs, GPUS CPU processes train with
# gloo (tools/train.py sets it up).
set -euo pipefail
if [ $# -lt 2 ]; then
    echo "usage: $0 CONFIG GPUS [tools/train.py arguments]" >&2
    exit 2
fi
HERE=$(cd "$(dirname "$0")" && pwd)
CONFIG=$1
GPUS=$2
shift 2
exec bash "$HERE/dist_run.sh" "$GPUS" "$HERE/train.py" "$CONFIG" --launcher pytorch "$@"
