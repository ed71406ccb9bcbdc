#!/usr/bin/env bash
# tools/dist_test.sh CONFIG CHECKPOINT NUM_PROCS [test.py args...]
CONFIG=$1
CHECKPOINT=$2
NPROCS=$3
PORT=${PORT:-29500}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-${MMREFVLM_VENV:-$ROOT/.venv}/bin/python}
[[ -x $PY ]] || PY=python
PYTHONPATH="$ROOT:${PYTHONPATH:-}" exec "$PY" -m torch.distributed.run \
    --nnodes=1 --nproc_per_node="$NPROCS" --master_port="$PORT" \
    "$ROOT/tools/test.py" "$CONFIG" "$CHECKPOINT" --launcher pytorch "${@:4}"
