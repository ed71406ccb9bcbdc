#!/usr/bin/env bash
# tools/dist_train.sh CONFIG GPUS_PER_NODE [train.py args...]
# One process per GPU; on a machine without GPUs the processes use gloo on the CPU.
# Multi-node: run it on every node with NNODES, NODE_RANK and MASTER_ADDR set (MMDetection's
# convention), e.g. NNODES=8 NODE_RANK=0 MASTER_ADDR=10.1.1.1 tools/dist_train.sh CONFIG 8
CONFIG=$1
NPROCS=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
PORT=${PORT:-29500}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-${MMREFVLM_VENV:-$ROOT/.venv}/bin/python}
[[ -x $PY ]] || PY=python
PYTHONPATH="$ROOT:${PYTHONPATH:-}" exec "$PY" -m torch.distributed.run \
    --nnodes="$NNODES" --node_rank="$NODE_RANK" --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$NPROCS" --master_port="$PORT" \
    "$ROOT/tools/train.py" "$CONFIG" --launcher pytorch "${@:3}"
