#!/usr/bin/env bash
usage() {
    cat <<'USAGE'
usage: tools/dist_test.sh CONFIG CHECKPOINT NUM_PROCS [test.py args...]

Evaluate with NUM_PROCS processes on one node (torchrun); without GPUs they use gloo on the CPU.
test.py args: --work-dir DIR, --out FILE, --show-dir DIR, --with-baseline,
--cfg-options KEY=VALUE ... (python tools/test.py --help lists them).
Environment: PORT (29500), PYTHON (the interpreter; default .venv/bin/python).
USAGE
}
case ${1:-} in -h | --help) usage; exit 0 ;; esac
if [[ $# -lt 3 || ${3:-} == -* ]]; then
    usage >&2
    exit 2
fi
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
