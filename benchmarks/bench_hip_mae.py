"""One masked auto-encoding training step of a HiP preset on every pixel of a square image (256 x 256 = 65,536
inputs by default): forward, MSE on the hidden pixels, backward, AdamW. Each configuration runs in a fresh process
so its peak memory is its own (CPU: peak resident set size of the process, model and optimizer included; CUDA:
peak allocated). Prints a table last and optionally writes JSON.

    python benchmarks/bench_hip_mae.py                                   # HiP-16, 256x256, batch 1, CPU
    python benchmarks/bench_hip_mae.py --preset hip-256 --size 256 --batch 2 --steps 3 --out hip.json
    python benchmarks/bench_hip_mae.py --device cuda --dtype bf16 --size 1024
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, resource, sys, time, torch
from perceiver_core import build_preset
from perceiver_core.data.loader import collate
preset, size, batch, steps, mask, device, dtype = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), sys.argv[6], sys.argv[7]
torch.manual_seed(0)
overrides = [f"data.image_shape=[{size}, {size}, 3]", f"encoder.mask_ratio={mask}"]
model = build_preset(preset, device="cpu", overrides=overrides).to(device).train()
params = sum(p.numel() for p in model.parameters())
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
images = torch.rand(batch, size, size, 3, generator=torch.Generator().manual_seed(1))
data = collate([model.prepare({"image": image}) for image in images])
data = {k: v.to(device) for k, v in data.items()}
ctx = torch.autocast(device, dtype=torch.bfloat16) if dtype == "bf16" else torch.autocast(device, enabled=False)
sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
if device == "cuda":
    torch.cuda.reset_peak_memory_stats()
times, losses = [], []
for _ in range(steps):
    start = time.perf_counter()
    with ctx:
        loss = model.task.loss(model(data), data)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    sync()
    times.append(time.perf_counter() - start)
    losses.append(float(loss))
peak = (torch.cuda.max_memory_allocated() if device == "cuda"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
print(json.dumps({"preset": preset, "inputs": size * size, "batch": batch, "mask_ratio": mask, "params": params,
                  "step_seconds": times, "peak_bytes": peak, "losses": losses, "threads": torch.get_num_threads()}))
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", action="append", help="HiP preset(s) (default: hip-16)")
    ap.add_argument("--size", type=int, default=256, help="image side: size^2 inputs (default 256: 65,536)")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--steps", type=int, default=2, help="training steps; the first includes warm-up")
    ap.add_argument("--mask-ratio", type=float, default=0.75)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
    ap.add_argument("--out", help="write the results as JSON here")
    args = ap.parse_args(argv)
    rows = []
    for preset in args.preset or ["hip-16"]:
        proc = subprocess.run([sys.executable, "-c", CHILD, preset, str(args.size), str(args.batch), str(args.steps),
                               str(args.mask_ratio), args.device, args.dtype], capture_output=True, text=True,
                              check=False)
        if proc.returncode != 0:
            print(proc.stderr[-2000:], file=sys.stderr)
            return 1
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(rows, f, indent=2)
    print(f"{'preset':<10} {'inputs':>8} {'batch':>5} {'mask':>5} {'params':>12} {'first s':>8} {'later s':>8} "
          f"{'peak MiB':>9}  device")
    for r in rows:
        later = min(r["step_seconds"][1:]) if len(r["step_seconds"]) > 1 else float("nan")
        print(f"{r['preset']:<10} {r['inputs']:>8,} {r['batch']:>5} {r['mask_ratio']:>5} {r['params']:>12,} "
              f"{r['step_seconds'][0]:>8.2f} {later:>8.2f} {r['peak_bytes'] / 2**20:>9.0f}  "
              f"{args.device} {args.dtype} ({r['threads']} threads)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
