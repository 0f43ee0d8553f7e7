#!/usr/bin/env bash
# Fine-tune the restoration stage (hvar.floor, from SPAN-ch28) on one GPU in about eight minutes: build a
# larger pair cache on the machine's cores, train the arms side by side on the one GPU (the network is
# small: one run alone leaves most of the GPU idle), and bring back each run folder as a tar in $OUT
# (weights, metrics, curves, log), refreshed every ten seconds so a cut-off run still returns.
# An arm is preset:lr[:frozen|:restore]. The default trains the shipped two-stage floor (preset cascade,
# from FLOOR_INIT: a restorer in front of SPAN-ch28 as published) two ways, each restorer on x1 alone
# with SPAN frozen and not run (restore: --restore-only with RESTORE_SHARES of JPEG, fine-texture and
# light defects and heavy defects weighted up, what moved the restorer on the CPU; 2.5.0, and 2.6.0 on
# pairs cropped from the photos at DOWNSCALE sizes, model/checkpoints/floor-restore-dense): at 28 channels,
# and grown to 40 (cascade-wide: the capacity test, whose curves matched the 28-channel restorer's for
# 1500 CPU steps through SPAN; model/checkpoints/floor-cascade-wide), and given the tile-wide damage
# reading (cascade-context, hvar.floor.DegradationContext: the blindness test; on realistic LR the
# local restorer is 0.35-0.7 dB below a per-image oracle linear filter,
# model/checkpoints/floor-restore-heavy/ceiling-probe.md; it reads with DAMAGE_READER, taught to measure
# the damage on the CPU, model/checkpoints/damage-reader-dense); and the generative stage's two parts
# (below). `frozen` trains a restorer through the frozen SPAN on x1, x2 and x4 (MILD, LIGHT).
# `cascade:2e-4` (both stages), `wide:5e-4` (SPAN grown to 48 channels, hvar.floor.widen) and
# `base:5e-4` remain possible arms. `detail:lr` trains the generative stage's decoder
# (hvar.train_detail: DETAIL_TOKENIZER's tokens decoded on CASCADE_INIT's outputs; its CPU run is
# model/checkpoints/detail-base) and `transformer:lr` the transformer that predicts those tokens from
# the floor's x4, hinted with the floor's own tokens (hvar.train_transformer --floor --hint, from
# TRANSFORMER_INIT; its CPU runs are model/checkpoints/hvar-floor*). MILD (--mild) gives a share of the
# clean pairs one faint defect, so that x1 learns to do no harm on lightly damaged photos (issue 20's
# ladder); LIGHT (--light) a share one defect of degrade.light's whole range (JPEG q30-95, noise, blur),
# so that x1 repairs a photo damaged once.
#
# The photos travel in two parts: a device call takes at most 64 MiB in all (tracked files and carry), the
# repository is about 45 MiB and the 65 training photos 27 MiB. From the repo root, once (model/.data is
# git-ignored): `cd model && .venv/bin/python gpu/pack_carry.py` writes model/.data/carry-1, -2, ... each
# sized to fit a call beside the repository (part 1 also holds Set5, SPAN-ch28 and NIQE's parameters).
# Then, one call right after the other (a warm machine keeps the ignored folders earlier calls brought):
#   device run, carry ["model/.data/carry-1"], command: true, timeout_s 60
#   device run, carry ["model/.data/carry-2"] (the last part: two since 2.7.1's repository), command:
#     DEADLINE_S=560 CARRY_PARTS=".data/carry-*" bash model/gpu/train_floor.sh, timeout_s 600
# DEADLINE_S: the arms train what is left of it once the pair cache is built (at most MINUTES), so that a
# slower build costs training time instead of the runs' last checks and weights (cut off by the call's limit).
# The script merges the parts and stops at once if a photo of the manifest is missing (a cold machine
# between the calls): then run all the calls again.
# Back here: for t in <files_at>/*.tar; do tar xf "$t" -C model/runs; done, then export (a floor as 2.7.1 is:
# --tile 384 --tile-step 16 --overlap 32, docs/model-and-training.md) and evaluate on the CPU (a detail
# or transformer run first gets its frozen parts back: cp -r checkpoints/tok-base-dg RUN/tokenizer, and
# for a detail run cp -r checkpoints/floor-cascade-mild RUN/floor; the same two into RUN/best).
# Then, if the device time allows, a second call for issue 19's GPU reading (about a minute):
#   device run, command: cd model && python gpu/bench_floor.py --seconds 3 --json "$OUT/bench-floor.json"
# A CPU dry run of the same steps, the calls' parts and the deadline too (5-8 minutes on 2 cores, most of
# it the arms' checks, which overrun the deadline here; ARMS=... for fewer arms):
#   DEADLINE_S=150 END_S=30 CARRY_PARTS=".data/carry-*" OUT=/tmp/gpu-dry RUNS=/tmp/gpu-dry-runs COUNT=400 BATCH=4 \
#     EVAL_EVERY=20 DETAIL_EVAL_EVERY=10 bash model/gpu/train_floor.sh
set -euo pipefail
t0=$(date +%s)
cd "$(dirname "$0")/.."                                  # model/
export PYTHONUNBUFFERED=1
COUNT=${COUNT:-32000}                                    # pairs of each kind
MINUTES=${MINUTES:-9}                                    # training time of each run, at most
DEADLINE_S=${DEADLINE_S:-}                               # seconds from the start by which the arms have stopped
END_S=${END_S:-45}                                       # what the arms' last checks and the tars take after training
BATCH=${BATCH:-64}                                       # pairs of each kind per step
ARMS=${ARMS:-"cascade:2e-4:restore cascade-wide:2e-4:restore cascade-context:2e-4:restore detail:2e-4 transformer:2e-4"}  # preset:peak lr[:flag]
CASCADE_INIT=${CASCADE_INIT:-checkpoints/floor-cascade-mild}  # the floor the detail and transformer arms read (2.3.0: detail-base's)
FLOOR_INIT=${FLOOR_INIT:-checkpoints/floor-restore-dense}  # the cascade a cascade run starts from (2.6.0; 2.7.0 is it with
# x2 blocks of its own, which growing to cascade-wide / -context would drop: ship a restorer trained here with
# `train_floor --init RUN --preset cascade-x2 --x2-only`, as 2.7.0 was made, model/checkpoints/floor-x2)
DOWNSCALE=${DOWNSCALE:-"1 0.5 0.33 0.25"}                # photo sizes the pairs' crops come from (hvar.pairs --downscale; 2.6.0's)
DAMAGE_READER=${DAMAGE_READER-checkpoints/damage-reader-dense}  # a cascade-context arm's reader (hvar.damage, taught on dense pairs), frozen; empty: learned through the restorer's loss
DETAIL_TOKENIZER=${DETAIL_TOKENIZER:-checkpoints/tok-base-dg}  # the tokens a detail or transformer arm learns
TRANSFORMER_INIT=${TRANSFORMER_INIT:-checkpoints/hvar-base}  # where a transformer arm starts (hvar-floor kept no weights)
# A detail arm goes on from the CPU decoder (DETAIL_INIT; empty: a new decoder on DETAIL_TOKENIZER and
# CASCADE_INIT) with the patch critic on the residual over the floor's x4, at the weight that held the
# critic on the CPU (at 0.5 it outran the decoder; checkpoints/detail-texture), and half its tiles
# decoded from the floor's own tokens, whose x4 L1 sees only the blurred images (--lowpass 2: the one
# loss that moved the decoder off the floor on the CPU, with streaks the critic had no time to punish):
# the thousands of critic steps the CPU could not give. Its Set5 checks score NIQE every
# DETAIL_EVAL_EVERY steps, and the run keeps in best/ the check with the lowest NIQE that holds the
# floor's PSNR within 0.5 dB on realistic and clean LR, adds no streaks (train_detail.STREAK_LIMIT; the
# CPU runs' NIQE dips were streaks) and whose HR tokens still add 1 dB (train_detail.ORACLE_MARGIN).
# --equivariance 1 keeps the decoder from drawing a pattern of its own frame (those streaks; gone within
# 100 CPU steps); it tokenizes the turned floor's x4 of the floor-token tiles only, as turning the token
# map cost the HR tokens 1.4 dB and the term on the HR tiles 0.5 dB (checkpoints/detail-texture,
# equivariant-image and the probes). Look at its pictures before believing it.
DETAIL_INIT=${DETAIL_INIT-checkpoints/detail-base}
DETAIL_LOSSES=${DETAIL_LOSSES:-"--adversarial 2 --critic-warmup 300 --floor-tokens 0.5 --lowpass 2 --equivariance 1 --niqe"}
DETAIL_EVAL_EVERY=${DETAIL_EVAL_EVERY:-500}
EVAL_EVERY=${EVAL_EVERY:-2000}
MILD=${MILD:-0.3}                                        # share of clean pairs given a faint defect (--mild)
LIGHT=${LIGHT:-0.4}                                      # share given one defect of light's range (--light)
RESTORE_SHARES=${RESTORE_SHARES:-"--jpeg 0.45 --texture 0.15 --jpeg-quality 60 100 --light 0.2 --relative-floor 6"}  # 2.5.0's and 2.6.0's
OUT=${OUT:-runs/gpu-floor}
RUNS=${RUNS:-/tmp/floor-runs}
PY=${PY:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
mkdir -p "$OUT" "$RUNS"
log="$OUT/train.log"
$PY -c 'import torch, sys; print("python", sys.version.split()[0], "torch", torch.__version__,
  "cuda", torch.cuda.is_available() and torch.cuda.get_device_name())' | tee "$log"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null | tee -a "$log" || true
CARRY=${CARRY:-$PWD/.data/carry}                        # one folder, or CARRY_PARTS merged into one
if [ -n "${CARRY_PARTS:-}" ]; then
  CARRY=$RUNS/carry && rm -rf "$CARRY" && mkdir -p "$CARRY"
  for part in $CARRY_PARTS; do cp -r "$part"/. "$CARRY"/; done   # unquoted: CARRY_PARTS may be a glob
  want=$(grep -c '\.jpg,' "$CARRY/datasets/train/MANIFEST.csv") got=$(find "$CARRY/datasets/train" -name '*.jpg' | wc -l)
  echo "carry: $got of $want photos from $(echo $CARRY_PARTS)" | tee -a "$log"
  [ "$got" = "$want" ] || { echo "carry: photos are missing (a part's call went to another machine?)" | tee -a "$log"; exit 3; }
fi
export HVAR_DATA_ROOT=${HVAR_DATA_ROOT:-$CARRY/datasets} HVAR_METRICS_ROOT=${HVAR_METRICS_ROOT:-$CARRY/metrics}

start=$(date +%s)
# shellcheck disable=SC2086  # DOWNSCALE is a list of factors
$PY -m hvar.pairs --count "$COUNT" --workers "$(nproc)" --out "$RUNS/pairs" --downscale $DOWNSCALE 2>&1 | tail -n 1 | tee -a "$log"
echo "pairs: $((2 * COUNT)) in $(( $(date +%s) - start )) s on $(nproc) cores" | tee -a "$log"
if [ -n "$DEADLINE_S" ]; then                            # train what is left, at least half a minute
  left=$(( DEADLINE_S - END_S - ($(date +%s) - t0) ))
  MINUTES=$(awk -v m="$MINUTES" -v s="$left" 'BEGIN { t = s / 60; if (t < m) m = t; if (m < 0.5) m = 0.5; printf "%.2f", m }')
  echo "training: $MINUTES min per arm ($left s left of DEADLINE_S $DEADLINE_S)" | tee -a "$log"
fi

# One tar per run (the folder and its log), replaced whole so a kill never leaves half of one. Each must
# stay under 16 MiB (the most one file brings back; at most 8 files): no optimizer states, and not the
# frozen tokenizer/ and floor/ copies, which are byte for byte DETAIL_TOKENIZER's and CASCADE_INIT's (copy
# them back in before loading a run).
bring_back() {
  for run in "$RUNS"/floor-gpu-*/; do
    name=$(basename "$run")
    tar cf "$OUT/$name.tar.tmp" -C "$RUNS" --exclude optim.pt --exclude discriminator-optim.pt --exclude tokenizer --exclude floor "$name" "$name.log" \
      2>/dev/null && mv "$OUT/$name.tar.tmp" "$OUT/$name.tar"
  done
}
read -ra arms <<< "$ARMS"
threads=$(( $(nproc) / ${#arms[@]} )); threads=$(( threads > 0 ? threads : 1 ))  # the cores shared by the arms
pids=()
run_name() { echo "floor-gpu-${1//:/-}"; }                 # cascade:2e-4:frozen -> floor-gpu-cascade-2e-4-frozen
for arm in "${arms[@]}"; do
  IFS=: read -r preset lr flag <<< "$arm"
  if [ "$preset" = detail ]; then                          # the decoder of the generative stage, on the floor
    read -ra losses <<< "$DETAIL_LOSSES"
    from=(--tokenizer "$DETAIL_TOKENIZER" --floor "$CASCADE_INIT") && [ -n "$DETAIL_INIT" ] && from=(--init "$DETAIL_INIT")
    $PY -m hvar.train_detail --out "$RUNS/$(run_name "$arm")" "${from[@]}" "${losses[@]}" --pairs "$RUNS/pairs" --minutes "$MINUTES" --batch-size "$BATCH" --lr "$lr" --eval-every "$DETAIL_EVAL_EVERY" \
      --threads "$threads" > "$RUNS/$(run_name "$arm").log" 2>&1 &
    pids+=($!)
    continue
  fi
  if [ "$preset" = transformer ]; then                     # the next-scale transformer, on the floor's x4, hinted
    $PY -m hvar.train_transformer --out "$RUNS/$(run_name "$arm")" --init "$TRANSFORMER_INIT" \
      --tokenizer "$DETAIL_TOKENIZER" --floor "$CASCADE_INIT" --hint --pairs "$RUNS/pairs" --minutes "$MINUTES" \
      --batch-size "$BATCH" --lr "$lr" --threads "$threads" --no-eval > "$RUNS/$(run_name "$arm").log" 2>&1 &
    pids+=($!)
    continue
  fi
  extra=()
  [[ "$preset" == cascade* ]] && extra+=(--init "$FLOOR_INIT")  # a trained restorer (grown: cascade-wide)
  [ "$preset" = cascade-context ] && [ -n "$DAMAGE_READER" ] && extra+=(--damage-reader "$DAMAGE_READER")
  if [ "$flag" = restore ]; then                           # the restorer on x1 alone, SPAN as published
    read -ra shares <<< "$RESTORE_SHARES"
    extra+=(--restore-only "${shares[@]}")
  else
    extra+=(--mild "$MILD" --light "$LIGHT")
    [ "$flag" = frozen ] && extra+=(--freeze-upscaler)         # SPAN kept as published
  fi
  $PY -m hvar.train_floor --out "$RUNS/$(run_name "$arm")" --preset "$preset" "${extra[@]}" \
    --span "$CARRY/span-ch28/team38_span_ch28_slim.pth" \
    --pairs "$RUNS/pairs" --steps 1000000 --minutes "$MINUTES" --batch-size "$BATCH" --lr "$lr" \
    --eval-every "$EVAL_EVERY" --threads "$threads" > "$RUNS/$(run_name "$arm").log" 2>&1 &
  pids+=($!)
done
while kill -0 "${pids[@]}" 2>/dev/null; do sleep 10; bring_back; done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
for arm in "${arms[@]}"; do tail -n 3 "$RUNS/$(run_name "$arm").log" | tee -a "$log"; done
bring_back
echo "total $(( $(date +%s) - start )) s, exit $status" | tee -a "$log"
ls -la "$OUT" | tee -a "$log"
exit $status
