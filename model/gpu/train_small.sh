#!/usr/bin/env bash
# Train the `small` preset on one GPU in about ten minutes, evaluate it, export it, and leave everything
# worth keeping in $OUT (the device tool brings back at most 8 files, 16 MiB each).
#
# From the repo root, with the datasets copied into an ignored folder that travels with the tree:
#   cp -r ../shared/datasets model/.data        # once; model/.data is git-ignored (~37 MB)
#   device run, carry ["model/.data"], command: bash model/gpu/train_small.sh
# A CPU dry run of the same steps (tiny preset, seconds):
#   OUT=/tmp/gpu-dry PRESET=tiny TOK_MIN=0.3 TR_MIN=0.3 HVAR_DATA_ROOT=../shared/datasets bash model/gpu/train_small.sh
set -euo pipefail
cd "$(dirname "$0")/.."                                  # model/
PRESET=${PRESET:-small}
TOK_MIN=${TOK_MIN:-4}                                    # tokenizer minutes
TR_MIN=${TR_MIN:-5}                                      # transformer minutes
OUT=${OUT:-runs/gpu}
RUNS=${RUNS:-/tmp/hvar-gpu-runs}
export HVAR_DATA_ROOT=${HVAR_DATA_ROOT:-$PWD/.data}
export PYTHONUNBUFFERED=1
PY=${PY:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
mkdir -p "$OUT" "$RUNS"
log="$OUT/train.log"
python_version=$($PY -c 'import torch, sys; print(sys.version.split()[0], "torch", torch.__version__, "cuda", torch.cuda.is_available())')
echo "python $python_version; preset $PRESET; tokenizer ${TOK_MIN} min, transformer ${TR_MIN} min" | tee "$log"

$PY -m hvar.train_tokenizer --preset "$PRESET" --out "$RUNS/tok" --minutes "$TOK_MIN" --no-eval 2>&1 | tee -a "$log"
$PY -m hvar.train_transformer --preset "$PRESET" --tokenizer "$RUNS/tok" --out "$RUNS/hvar" \
  --minutes "$TR_MIN" --lr-mode mixed --no-eval 2>&1 | tee -a "$log"
$PY -m hvar.eval_tokenizer --run "$RUNS/tok" 2>&1 | tail -n 20 | tee -a "$log"
$PY -m hvar.export --run "$RUNS/hvar" --out "$RUNS/model" --id "hvar-$PRESET" --precision mixed 2>&1 | tee -a "$log"
$PY -m hvar.eval_sr --run "$RUNS/model" --dataset Set5 Set14 --scale 2 4 --degradation bicubic realistic \
  --json "$OUT/eval.json" --md "$OUT/eval.md" 2>&1 | tail -n 20 | tee -a "$log"

# What comes back (8 files of at most 16 MiB): the numbers, the curves and, where it fits, the model.
# `small` as configured (a VAR-d12-sized transformer) exports far above that and above the 25 MB we
# commit: its run shows what a GPU buys; a shippable GPU model needs a narrower transformer or int8.
for run in tok hvar; do
  [ -f "$RUNS/$run/curves.png" ] && cp "$RUNS/$run/curves.png" "$OUT/curves-$run.png"
done
cp "$RUNS/model/manifest.json" "$OUT/"
if [ "$(stat -c %s "$RUNS/model/model.onnx")" -lt $((16 * 1024 * 1024)) ]; then
  cp "$RUNS/model/model.onnx" "$RUNS/model/parity.safetensors" "$OUT/"
fi
ls -la "$OUT" "$RUNS/model" | tee -a "$log"
