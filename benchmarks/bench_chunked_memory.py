"""Peak memory and time of one inference forward (or, with --train, one training step) of the Perceiver IO
ImageNet config at a large input size, with the plain cross-attend and with the chunked one (online softmax over
key chunks; in training the split-key cross-attend, whose backward recomputes each chunk), each in a fresh
process so that peak memory is its own. Prints a table last and writes JSON.

    python benchmarks/bench_chunked_memory.py --size 512 --chunk 16384 --out chunked.json      # CPU
    python benchmarks/bench_chunked_memory.py --device cuda --dtype bf16 --size 4096 --out gpu.json
    python benchmarks/bench_chunked_memory.py --train --size 128,256 --chunk 4096 --out train.json

With --train a row also gives the bytes autograd saved for the backward (all tensors packed by
`saved_tensors_hooks`, storage counted once, the weights and the input excluded) and the norm of the latents'
gradient (equal on both paths).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, resource, sys, time, torch
from perceiver_core.commands.bench.models import build_ours, ours_batch
from perceiver_core.commands.bench.presets import PRESETS
size, chunk, device, dtype, train = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5] == "1"
torch.manual_seed(0)
key = "cross_attend_train_chunk_keys" if train else "cross_attend_chunk_keys"
model = build_ours(PRESETS["imagenet"], size, overrides={"encoder": {key: chunk}})
model = model.to(device).train(train)
images = torch.rand(1, size, size, 3, generator=torch.Generator().manual_seed(1)).to(device)
batch = {**ours_batch(images), "label": torch.tensor([7], device=device)}
ctx = torch.autocast(device, dtype=torch.bfloat16) if dtype == "bf16" else torch.autocast(device, enabled=False)
sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
exclude = {t.untyped_storage().data_ptr() for t in [*model.parameters(), batch["pixels"]]}
saved = {}
def pack(t):
    if t.untyped_storage().data_ptr() not in exclude:
        saved[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
    return t
if device == "cuda":
    torch.cuda.reset_peak_memory_stats()
start = time.perf_counter()
if train:
    with ctx, torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = model(batch)
        loss = model.task.loss(out, batch)
    loss.backward()
else:
    with torch.no_grad(), ctx:
        out = model(batch)
sync()
seconds = time.perf_counter() - start
peak = (torch.cuda.max_memory_allocated() if device == "cuda"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
row = {"size": size, "chunk": chunk, "seconds": seconds, "peak_bytes": peak,
       "logits": out.float().flatten()[:4].tolist()}
if train:
    row.update(saved_bytes=sum(saved.values()), latents_grad_norm=model.encoder.latents.grad.norm().item())
print(json.dumps(row))
"""


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", default="512", help="image side, or several comma-separated")
    p.add_argument("--chunk", type=int, default=16384)
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"])
    p.add_argument("--train", action="store_true", help="a training step (forward, loss, backward) instead")
    p.add_argument("--out")
    args = p.parse_args()
    rows = []
    for size in (int(s) for s in args.size.split(",")):
        for chunk in (0, args.chunk):
            run = subprocess.run([sys.executable, "-c", CHILD, str(size), str(chunk), args.device, args.dtype,
                                  "1" if args.train else "0"], capture_output=True, text=True)
            if run.returncode:
                rows.append({"size": size, "chunk": chunk, "error": run.stderr.strip().splitlines()[-1]})
            else:
                rows.append(json.loads(run.stdout.strip().splitlines()[-1]))
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump({"device": args.device, "dtype": args.dtype, "train": args.train, "rows": rows}, f, indent=2)
    extra = f"{'saved MiB':>10}  latents grad norm" if args.train else "  logits[:2]"
    print(f"{'size':>6}{'chunk':>8}{'seconds':>10}{'peak GiB':>10}{extra}")
    for r in rows:
        if "error" in r:
            print(f"{r['size']:>6}{r['chunk']:>8}  {r['error']}")
            continue
        line = f"{r['size']:>6}{r['chunk']:>8}{r['seconds']:>10.2f}{r['peak_bytes'] / 2**30:>10.2f}"
        if args.train:
            line += f"{r['saved_bytes'] / 2**20:>10.1f}  {r['latents_grad_norm']:.6g}"
        else:
            line += "  " + ", ".join(f"{v:.5f}" for v in r["logits"][:2])
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
