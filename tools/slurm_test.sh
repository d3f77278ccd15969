#!/usr/bin/env bash
# Test a checkpoint on a Slurm cluster, as mmdet's slurm_test.sh:
#   [GPUS=8] [GPUS_PER_NODE=8] [CPUS_PER_TASK=5] [SRUN_ARGS=...] [GRES=...] \
#       tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT [test.py args...]
# See tools/slurm_run.sh for the variables (GRES= on CPU-only partitions).
set -euo pipefail
if [ $# -lt 4 ]; then
    echo "usage: $0 PARTITION JOB_NAME CONFIG CHECKPOINT [tools/test.py arguments]" >&2
    exit 2
fi
HERE=$(cd "$(dirname "$0")" && pwd)
PARTITION=$1
JOB_NAME=$2
shift 2
exec bash "$HERE/slurm_run.sh" "$PARTITION" "$JOB_NAME" "$HERE/test.py" "$@"
