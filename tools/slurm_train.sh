#!/usr/bin/env bash
# tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [train.py args...]
# MMDetection's form: GPUS (total, default 8), GPUS_PER_NODE (8), CPUS_PER_TASK (5) and
# SRUN_ARGS from the environment, e.g. a 64-GPU stage 2:
#   GPUS=64 tools/slurm_train.sh a800 refvlm_s2 configs/refvlm_stage2.py work_dirs/refvlm_stage2
exec "$(dirname "$0")/slurm_run.sh" "$1" "$2" train.py "$3" --work-dir="$4" "${@:5}"
