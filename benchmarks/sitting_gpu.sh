#!/usr/bin/env bash
# One GPU sitting (H100 or H200, about 9 minutes of a 15-minute device session) that gathers every open GPU figure
# of issues 16, 18 and 13, in priority order; each step has its own `timeout`, capped by what is left of the
# sitting's budget, so one hang cannot eat the sitting. Results go to $OUT (one .txt table, .json and .err per step);
# a summary of every step and its table is printed last.
#
#   OUT=$OUT bash benchmarks/sitting_gpu.sh              # on the GPU machine, from the repository root
#   DRY=1 OUT=/tmp/dry PY=.venv/bin/python bash benchmarks/sitting_gpu.sh
#       # on a CPU: every command line, the same flags, at CI size (--backend cpu, tiny presets, 1 step, no compile)
#
# Install (GPU machine; not in DRY mode): the Python 3.12 wheels of /work/shared/gpu-wheels copied to .whl/ (the
# machine cannot download), then the project and the plugins the steps use, editable (docs/benchmarks.md).
#
# Steps (issue: what):
#  1 (16) ImageNet-config training, ours at batch 64 with the fp32 and the bf16 residual stream interleaved beside
#         HF at 64; HF alone at 32: best vs best, MFU, the grouped kernel profile of each variant
#  2 (16) ours alone at batch 128 (96 on an 80 GB card), both residual streams
#  3 (16) the split-key cross-attend's GPU test (bf16 gradients within 1e-2 of the plain path; memory growth)
#  4 (16) single-image training steps of the ImageNet config at 1024^2 and 2048^2 (split-key; time, peak memory)
#  5 (18) HiP-16 (encoder + class query) at 224, 512, 1024, 2048 (train and infer, batch 1)
#  6 (18) Perceiver IO (the ImageNet config) at the same sizes
#  7 (13) flow-sintel inference at 368x496 and tiled 1024x436 beside HF's PerceiverForOpticalFlow
#  8 (18) HiP-256 at the same sizes
#  9 (16) HF's model beside ours on one 1024^2 image (the HiP paper reports Perceiver IO out of memory there)
set -u
OUT=${OUT:-sitting-out}
PY=${PY:-python3}
DRY=${DRY:-}
BUDGET=${BUDGET:-$([ -n "$DRY" ] && echo 1800 || echo 540)}  # seconds for all the steps together
mkdir -p "$OUT"
START=$(date +%s)
SUMMARY="$OUT/summary.txt"
: > "$SUMMARY"

if [ -z "$DRY" ] && [ "${INSTALL:-1}" = 1 ]; then
    t0=$(date +%s)
    "$PY" -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl > "$OUT/install.txt" 2>&1
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
    "$PY" -m pip install -q --no-index --no-deps --no-build-isolation -e . -e plugins/perceiver-cpu \
        -e plugins/perceiver-cuda -e plugins/perceiver-image >> "$OUT/install.txt" 2>&1
    echo "install rc=$? $(( $(date +%s) - t0 ))s" | tee -a "$SUMMARY"
fi

# step NAME TIMEOUT CMD...: stdout to $OUT/NAME.txt, stderr to $OUT/NAME.err; skipped once the budget is spent
step() {
    local name=$1 limit=$2
    shift 2
    local left=$(( BUDGET - ($(date +%s) - START) ))
    if [ "$left" -lt 25 ]; then
        echo "$name: skipped (sitting budget spent)" | tee -a "$SUMMARY"
        return
    fi
    [ "$limit" -gt "$left" ] && limit=$left
    local t0=$(date +%s)
    echo "== $name (timeout ${limit}s): $*" >&2
    timeout -k 10 "$limit" "$@" > "$OUT/$name.txt" 2> "$OUT/$name.err"
    local rc=$?
    local why=""
    [ $rc = 124 ] || [ $rc = 137 ] && why=" (timed out)"
    echo "$name: rc=$rc$why $(( $(date +%s) - t0 ))s" | tee -a "$SUMMARY"
}

BENCH=("$PY" -m perceiver_core bench --quiet --precision bf16)
if [ -n "$DRY" ]; then
    DEV=(--backend cpu); COMPILE=(); STEPS=(--steps 1 --warmup 0)
    IMAGENET=tiny; LARGE=(--preset tiny --size 32 --chunk-keys 256); HIP16=hip-tiny; HIP256=hip-tiny
    B_HF=2; B_BIG=4; HF_BATCHES=1,2; SIZES=16,32; HF_LARGE=(--preset tiny --size 32 --chunk-keys 256)
    FLOW=(--backend cpu --tiny --steps 1 --warmup 0)
else
    DEV=(--backend cuda); COMPILE=(--compile); STEPS=()
    IMAGENET=imagenet; LARGE=(--preset imagenet-large-train); HIP16=hip-16; HIP256=hip-256
    B_HF=64; SIZES=224,512,1024,2048; HF_LARGE=(--preset imagenet-large-train --size 1024 --steps 10 --warmup 1)
    FLOW=(--backend cuda --compile)
    HF_BATCHES=32  # and HF at 64 beside ours in step 1 (out of memory on an 80 GB card: ours then runs alone)
    # an 80 GB card (H100) runs out at batch 128 with the fp32 stream (96 fits in 68.6 GiB): ask for what fits
    if "$PY" -c "import torch, sys; sys.exit(torch.cuda.get_device_properties(0).total_memory < 100 * 2**30)"; then
        B_BIG=128
    else
        B_BIG=96
    fi
fi
"$PY" -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'cpu')" \
    | tee -a "$SUMMARY"

step 1-imagenet-train-residual 240 "${BENCH[@]}" "${DEV[@]}" "${COMPILE[@]}" "${STEPS[@]}" --preset "$IMAGENET" \
    --modes train --batch "$B_HF" --hf-batch "$HF_BATCHES" --residual-dtype float32,bfloat16 \
    --out "$OUT/1-imagenet-train-residual.json" --profile "$OUT/1-imagenet-train-residual-profile.txt"
step 2-imagenet-train-big 150 "${BENCH[@]}" "${DEV[@]}" "${COMPILE[@]}" "${STEPS[@]}" --preset "$IMAGENET" \
    --modes train --batch "$B_BIG" --no-hf --residual-dtype float32,bfloat16 --out "$OUT/2-imagenet-train-big.json"
step 3-split-key-gpu-test 90 "$PY" -m pytest -q -p no:cacheprovider -m gpu tests/test_split_key.py
step 4-large-train 120 "${BENCH[@]}" "${DEV[@]}" "${COMPILE[@]}" "${STEPS[@]}" "${LARGE[@]}" --no-hf \
    --out "$OUT/4-large-train.json" --profile "$OUT/4-large-train-profile.txt"
step 5-hip-16 110 "${BENCH[@]}" "${DEV[@]}" "${STEPS[@]}" --preset "$HIP16" --size "$SIZES" \
    --out "$OUT/5-hip-16.json"
step 6-perceiver-io-sizes 100 "${BENCH[@]}" "${DEV[@]}" "${STEPS[@]}" --preset "$IMAGENET" --size "$SIZES" \
    --batch 1 --modes train,infer --no-hf --out "$OUT/6-perceiver-io-sizes.json"
step 7-flow-sintel 100 "$PY" benchmarks/bench_flow.py "${FLOW[@]}" --precision bf16 --out "$OUT/7-flow-sintel.json"
step 8-hip-256 110 "${BENCH[@]}" "${DEV[@]}" "${STEPS[@]}" --preset "$HIP256" --size "$SIZES" \
    --out "$OUT/8-hip-256.json"
step 9-large-train-hf 90 "${BENCH[@]}" "${DEV[@]}" "${STEPS[@]}" "${HF_LARGE[@]}" --out "$OUT/9-large-train-hf.json"

echo
echo "== summary ($(( $(date +%s) - START ))s; tables follow)"
cat "$SUMMARY"
for f in "$OUT"/[1-9]-*.txt; do
    case "$f" in *-profile.txt) continue ;; esac
    echo
    echo "-- $(basename "$f" .txt)"
    tail -n 25 "$f"
done
