#!/usr/bin/env bash
# tools/dist_train.sh CONFIG NUM_PROCS [train.py args...]
# One process per GPU; on a machine without GPUs the processes use gloo on the CPU.
CONFIG=$1
NPROCS=$2
PORT=${PORT:-29500}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-${MMREFVLM_VENV:-$ROOT/.venv}/bin/python}
[[ -x $PY ]] || PY=python
PYTHONPATH="$ROOT:${PYTHONPATH:-}" exec "$PY" -m torch.distributed.run \
    --nnodes=1 --nproc_per_node="$NPROCS" --master_port="$PORT" \
    "$ROOT/tools/train.py" "$CONFIG" --launcher pytorch "${@:3}"
