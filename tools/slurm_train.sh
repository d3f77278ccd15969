#!/usr/bin/env bash
# Train on a Slurm cluster, as mmdet's slurm_train.sh:
#   [GPUS=8] [GPUS_PER_NODE=8] [CPUS_PER_TASK=5] [SRUN_ARGS=...] [GRES=...] \
#       tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [train.py args...]
# See tools/slurm_run.sh for the variables (GRES= on CPU-only partitions).
set -euo pipefail
if [ $# -lt 4 ]; then
    echo "usage: $0 PARTITION JOB_NAME CONFIG WORK_DIR [tools/train.py arguments]" >&2
    exit 2
fi
HERE=$(cd "$(dirname "$0")" && pwd)
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
WORK_DIR=$4
shift 4
exec bash "$HERE/slurm_run.sh" "$PARTITION" "$JOB_NAME" "$HERE/train.py" "$CONFIG" \
    --work-dir "$WORK_DIR" "$@"
