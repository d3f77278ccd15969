#!/usr/bin/env bash
# srun launcher shared by slurm_train.sh and slurm_test.sh (OpenMMLab's interface):
#   tools/slurm_run.sh PARTITION JOB_NAME SCRIPT [script args...]
# Environment: GPUS (tasks in all, default 8), GPUS_PER_NODE (tasks per node, default 8),
# CPUS_PER_TASK (default 5; also each task's OMP_NUM_THREADS unless set), SRUN_ARGS (extra srun
# arguments), GRES (default gpu:$GPUS_PER_NODE; set GRES= on a partition without GPUs: the tasks
# then run on CPU with gloo, tools/train.py and test.py set it up).
set -euo pipefail
if [ $# -lt 3 ]; then
    echo "usage: $0 PARTITION JOB_NAME SCRIPT [script arguments]" >&2
    exit 2
fi
PARTITION=$1
JOB_NAME=$2
SCRIPT=$3
shift 3
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
GRES=${GRES-gpu:$GPUS_PER_NODE}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$CPUS_PER_TASK}

srun_args=(--partition="$PARTITION" --job-name="$JOB_NAME" --ntasks="$GPUS"
           --ntasks-per-node="$GPUS_PER_NODE" --cpus-per-task="$CPUS_PER_TASK"
           --kill-on-bad-exit=1)
if [ -n "$GRES" ]; then
    srun_args+=(--gres="$GRES")
fi
# SRUN_ARGS is a word list by design (e.g. SRUN_ARGS="--quotatype=auto --time=1:00:00").
# shellcheck disable=SC2086
exec srun "${srun_args[@]}" ${SRUN_ARGS:-} "${PYTHON:-python}" -u "$SCRIPT" "$@" --launcher slurm
