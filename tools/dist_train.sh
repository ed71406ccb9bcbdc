#!/usr/bin/env bash
# Multi-node: run it on every node with NNODES, NODE_RANK and MASTER_ADDR set (MMDetection's
# convention), e.g. NNODES=8 NODE_RANK=0 MASTER_ADDR=10.1.1.1 tools/dist_train.sh CONFIG 8
usage() {
    cat <<'USAGE'
usage: tools/dist_train.sh CONFIG GPUS_PER_NODE [train.py args...]

Train with one process per GPU (torchrun); without GPUs the processes use gloo on the CPU.
train.py args: --work-dir DIR, --resume [CKPT], --amp, --cfg-options KEY=VALUE ...
(python tools/train.py --help lists them).
Environment: NNODES (1), NODE_RANK (0), MASTER_ADDR (127.0.0.1), PORT (29500),
PYTHON (the interpreter; default .venv/bin/python).
USAGE
}
case ${1:-} in -h | --help) usage; exit 0 ;; esac
if [[ $# -lt 2 || ${2:-} == -* ]]; then
    usage >&2
    exit 2
fi
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
