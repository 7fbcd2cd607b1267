#!/bin/sh
# One GPU sitting for issue 16's large-input training and bench figures (about 8-10 minutes on an H100/H200).
# Run from the repository root after installing the project as docs/benchmarks.md says; OUT=folder for results.
#
#   OUT=$OUT sh benchmarks/sitting_large_train.sh
#
# 1. the split-key cross-attend's GPU test: bf16 gradients within 1e-2 of the plain path's, memory growth
# 2. single-image training steps of the Perceiver IO ImageNet config at 1024^2 and 2048^2 (ours alone; time, peak
#    memory) with the grouped kernel table of those steps
# 3. HF's model beside ours at 1024^2 (the HiP paper reports Perceiver IO out of memory there)
# 4. ImageNet-config training at 224^2, ours over batches 64 and 128, HF alone at 32 and 64: the best-vs-best ratio
set -u
OUT=${OUT:-.}
mkdir -p "$OUT"
python -m pytest -q -p no:cacheprovider -m gpu tests/test_split_key.py 2>&1 | tail -3 | tee "$OUT/gpu-tests.txt"
perceiver bench --backend cuda --preset imagenet-large-train --no-hf --compile \
    --out "$OUT/large-train.json" --profile "$OUT/large-train-profile.txt" | tee "$OUT/large-train.txt"
perceiver bench --backend cuda --preset imagenet-large-train --size 1024 --steps 10 --warmup 1 \
    --out "$OUT/large-train-hf.json" | tee "$OUT/large-train-hf.txt"
perceiver bench --backend cuda --preset imagenet --modes train --compile --batch 64,128 --hf-batch 32,64 \
    --out "$OUT/train.json" --profile "$OUT/train-profile.txt" | tee "$OUT/train.txt"
echo "== summary"
cat "$OUT/gpu-tests.txt" "$OUT/large-train.txt" "$OUT/large-train-hf.txt" "$OUT/train.txt"
