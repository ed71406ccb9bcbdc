#!/usr/bin/env bash
# tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT [test.py args...]
# MMDetection's form: GPUS (default 8), GPUS_PER_NODE (8), CPUS_PER_TASK (5), SRUN_ARGS.
# CHECKPOINT is a plain weights file (work_dirs/<config>/final_weights.pth, or the output of
# tools/model_converters/consolidate_checkpoint.py for a DeepSpeed checkpoint directory).
exec "$(dirname "$0")/slurm_run.sh" "$1" "$2" test.py "$3" "$4" "${@:5}"
