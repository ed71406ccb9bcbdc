#!/usr/bin/env bash
# The main job on the offline default: generate the synthetic VT-Instruct set, validate it, build
# its tokenizer, train the tiny config, evaluate it with tools/test.py (run by `make demo`).
#
# Knobs (environment): WORK_DIR (work_dirs/refvlm_tiny), NUM_TRAIN (4000), NUM_VAL (300),
# GROUNDING_ROUNDS (6).
# The data and tokenizer paths are the tiny config's `data_root` (data/synthetic).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${MMREFVLM_VENV:-.venv}/bin/python
DATA=data/synthetic
WORK_DIR=${WORK_DIR:-work_dirs/refvlm_tiny}
NUM_TRAIN=${NUM_TRAIN:-4000}
NUM_VAL=${NUM_VAL:-300}
GROUNDING_ROUNDS=${GROUNDING_ROUNDS:-6}
CONFIG=configs/refvlm/refvlm_tinyllama_tinyconv_stage2_synthetic.py
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
step() { echo; echo "==> [$(date +%H:%M:%S)] $*"; }
t0=$(date +%s)

step "1/4 generating the synthetic dataset into $DATA"
# every task is trained; REC and RES, the two metrics the main job is judged on, get most samples,
# and each of their training records asks GROUNDING_ROUNDS expressions about its image
$PY tools/dataset_converters/generate_synthetic.py --out "$DATA" \
    --num-train "$NUM_TRAIN" --num-val "$NUM_VAL" --seed 0 --task-weights rec=12,res=12 \
    --grounding-rounds "$GROUNDING_ROUNDS"
step "2/4 validating it and building its tokenizer (three processes at once)"
logs=$(mktemp -d)
pids=()
for split in train val; do
    $PY tools/dataset_converters/validate_vtinstruct.py "$DATA/$split.jsonl" \
        --image-root "$DATA" --meta "$DATA/meta.json" --check-images > "$logs/$split" 2>&1 &
    pids+=($!)
done
$PY tools/misc/build_tokenizer.py --data "$DATA" > "$logs/tokenizer" 2>&1 &
pids+=($!)
failed=0
for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
cat "$logs/train" "$logs/val" "$logs/tokenizer"
rm -r "$logs"
if [ "$failed" != 0 ]; then
    echo "demo: the data check or the tokenizer failed (messages above)" >&2
    exit 1
fi
t_data=$(date +%s)
step "3/4 training $CONFIG"
$PY tools/train.py "$CONFIG" --work-dir "$WORK_DIR"
t_train=$(date +%s)
CKPT=$(cat "$WORK_DIR/last_checkpoint")
step "4/4 evaluating $CKPT on the held-out split (model beside a trivial baseline)"
$PY tools/test.py "$CONFIG" "$CKPT" --work-dir "$WORK_DIR" --show-dir "$WORK_DIR/vis" \
    --with-baseline
t_end=$(date +%s)
echo
echo "data: $((t_data - t0)) s, training: $((t_train - t_data)) s, evaluation: $((t_end - t_train)) s"
echo "checkpoint: $CKPT"
echo "logs:       $WORK_DIR/"
echo "pictures:   $WORK_DIR/vis/"
