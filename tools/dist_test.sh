#!/usr/bin/env bash
# Multi-process testing with torchrun, as mmdet's dist_test.sh:
#   tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py args...]
# Multi-node: NNODES, NODE_RANK, MASTER_ADDR, PORT. Without GPUs, GPUS CPU processes test with
# gloo (tools/test.py sets it up).
set -euo pipefail
if [ $# -lt 3 ]; then
    echo "usage: $0 CONFIG CHECKPOINT GPUS [tools/test.py arguments]" >&2
    exit 2
fi
HERE=$(cd "$(dirname "$0")" && pwd)
CONFIG=$1
CHECKPOINT=$2
GPUS=$3
shift 3
exec bash "$HERE/dist_run.sh" "$GPUS" "$HERE/test.py" "$CONFIG" "$CHECKPOINT" --launcher pytorch "$@"
