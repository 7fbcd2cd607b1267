"""Memory and speed of the file-backed datasets: peak RSS of one epoch over 1,000 vs 20,000 generated image files
(memory must stay flat: the index holds 16 bytes per example, images are decoded one batch at a time), and
throughput with 0 vs 2 data workers. Each case runs in a fresh process so its peak RSS is its own. Prints a table.

    python benchmarks/bench_file_dataset.py                       # 1,000 and 20,000 files, 0 and 2 workers
    python benchmarks/bench_file_dataset.py --sizes 1000 --workers 0 2 --side 640   # decoding-bound: 640 x 533

One epoch = image.folder's training split through the loader with the training transforms (random resized crop
to 64 x 64 + flip) and a normalising prepare, batches of 64; no model (the data path alone). The first build of a
folder verifies every file and computes the channel statistics (one pass, cached): its time is reported apart.
Files: JPEG, 96 x 80 pixels (or --side) of smooth random colour, 10 class folders. Data workers are threads
(torchdata's ParallelMapper): Pillow's decoder releases the GIL, the Python around it does not.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
def rss_kib(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1])
root, workers = sys.argv[1], int(sys.argv[2])
import torch
from perceiver_core.data.loader import ChainAugment, make_loader
from perceiver_image.configs import ImageFolderConfig
from perceiver_image.folder import ImageFolderDataset
torch.set_num_threads(1)
base = rss_kib("VmRSS")
t0 = time.perf_counter()
ds = ImageFolderDataset(ImageFolderConfig(root=root, image_size=64, test_fraction=0.1, num_workers=max(workers, 1)))
ds.info()
index_s = time.perf_counter() - t0
train = ds.examples("train")
mean = torch.tensor(ds.info()["channel_mean"]); std = torch.tensor(ds.info()["channel_std"])
def prepare(example):
    return {"pixels": ((torch.as_tensor(example["image"]) - mean) / std).reshape(-1, 3)}
loader = make_loader(train, prepare, batch_size=64, shuffle=True, seed=0, num_workers=workers,
                     target_keys=("label",), augment=ChainAugment(ds.augment))
t0 = time.perf_counter(); n = 0
for batch in loader:
    n += batch["pixels"].shape[0]
epoch_s = time.perf_counter() - t0
print(json.dumps({"examples": n, "index_s": round(index_s, 2), "epoch_s": round(epoch_s, 2),
                  "images_per_s": round(n / epoch_s, 1), "base_rss_mib": round(base / 1024, 1),
                  "peak_rss_mib": round(rss_kib("VmHWM") / 1024, 1),
                  "peak_over_base_mib": round((rss_kib("VmHWM") - base) / 1024, 1)}))
"""


def make_folder(root: Path, count: int, side: int, classes: int = 10) -> None:
    import numpy as np
    from PIL import Image

    marker = root / f".complete-{count}-{side}"
    if marker.exists():
        return
    rng = np.random.default_rng(0)
    for i in range(count):
        folder = root / f"class{i % classes:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        small = rng.integers(0, 255, (5, 6, 3), dtype=np.uint8)  # smooth colour fields compress like photos
        size = (side, side * 5 // 6)
        Image.fromarray(small).resize(size, Image.BILINEAR).save(folder / f"{i:06d}.jpg", quality=90)
    marker.touch()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 20000])
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--side", type=int, default=96, help="width of the generated JPEGs (height 5/6 of it)")
    parser.add_argument("--dir", help="keep the generated folders here (default: a temporary folder)")
    parser.add_argument("--out", help="also write the rows as JSON")
    args = parser.parse_args()
    base = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="bench-images-"))
    rows = []
    for size in args.sizes:
        root = base / f"n{size}-{args.side}"
        make_folder(root, size, args.side)
        for workers in args.workers:
            out = subprocess.run([sys.executable, "-c", CHILD, str(root), str(workers)], capture_output=True,
                                 text=True, check=True)
            result = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append({"files": size, "side": args.side, "workers": workers, **result})
            print(json.dumps(rows[-1]), file=sys.stderr)
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=2) + "\n")
    print(f"{'files':>7} {'workers':>7} {'first build s':>13} {'epoch s':>8} {'images/s':>9} "
          f"{'peak RSS MiB':>12} {'over start MiB':>14}")
    for r in rows:
        print(f"{r['files']:>7,} {r['workers']:>7} {r['index_s']:>13} {r['epoch_s']:>8} {r['images_per_s']:>9} "
              f"{r['peak_rss_mib']:>12} {r['peak_over_base_mib']:>14}")


if __name__ == "__main__":
    main()
