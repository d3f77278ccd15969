#!/usr/bin/env bash
# torchrun launcher shared by dist_train.sh and dist_test.sh:
#   tools/dist_run.sh NPROC SCRIPT [script args...]
# Multi-node: NNODES, NODE_RANK, MASTER_ADDR, PORT (as mmdet). Without GPUs the processes run on
# CPU with gloo (train.py / test.py set it up).
set -euo pipefail
NPROC=$1
SCRIPT=$2
shift 2
# One BLAS thread per process unless told otherwise: N processes on N cores.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
exec "${PYTHON:-python}" -m torch.distributed.run \
    --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" \
    --master_addr="${MASTER_ADDR:-127.0.0.1}" --master_port="${PORT:-29500}" \
    --nproc_per_node="$NPROC" "$SCRIPT" "$@"
