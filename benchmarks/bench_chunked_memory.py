"""Peak memory and time of one inference forward of the Perceiver IO ImageNet config at a large input size,
with the plain cross-attend and with the chunked one (online softmax over key chunks), each in a fresh process
so that peak memory is its own. Prints a table last and writes JSON.

    python benchmarks/bench_chunked_memory.py --size 512 --chunk 16384 --out chunked.json      # CPU
    python benchmarks/bench_chunked_memory.py --device cuda --dtype bf16 --size 4096 --out gpu.json
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
size, chunk, device, dtype = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
torch.manual_seed(0)
model = build_ours(PRESETS["imagenet"], size, overrides={"encoder": {"cross_attend_chunk_keys": chunk}})
model = model.to(device).eval()
images = torch.rand(1, size, size, 3, generator=torch.Generator().manual_seed(1)).to(device)
ctx = torch.autocast(device, dtype=torch.bfloat16) if dtype == "bf16" else torch.autocast(device, enabled=False)
sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
if device == "cuda":
    torch.cuda.reset_peak_memory_stats()
with torch.no_grad(), ctx:
    start = time.perf_counter()
    out = model(ours_batch(images))
    sync()
    seconds = time.perf_counter() - start
peak = (torch.cuda.max_memory_allocated() if device == "cuda"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
print(json.dumps({"size": size, "chunk": chunk, "seconds": seconds, "peak_bytes": peak,
                  "logits": out.float().flatten()[:4].tolist()}))
"""


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--chunk", type=int, default=16384)
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"])
    p.add_argument("--out")
    args = p.parse_args()
    rows = []
    for chunk in (0, args.chunk):
        run = subprocess.run([sys.executable, "-c", CHILD, str(args.size), str(chunk), args.device, args.dtype],
                             capture_output=True, text=True)
        if run.returncode:
            rows.append({"size": args.size, "chunk": chunk, "error": run.stderr.strip().splitlines()[-1]})
        else:
            rows.append(json.loads(run.stdout.strip().splitlines()[-1]))
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump({"device": args.device, "dtype": args.dtype, "rows": rows}, f, indent=2)
    print(f"{'size':>6}{'chunk':>8}{'seconds':>10}{'peak GiB':>10}  logits[:2]")
    for r in rows:
        if "error" in r:
            print(f"{r['size']:>6}{r['chunk']:>8}  {r['error']}")
        else:
            print(f"{r['size']:>6}{r['chunk']:>8}{r['seconds']:>10.2f}{r['peak_bytes'] / 2**30:>10.2f}  "
                  f"{', '.join(f'{v:.5f}' for v in r['logits'][:2])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
