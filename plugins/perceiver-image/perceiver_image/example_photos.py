"""Write a folder of real photographs that installs offline: scikit-image's LFW subset (100 face and 100 non-face
greyscale photographs, 25 x 25 pixels, from Labeled Faces in the Wild, shipped inside the scikit-image wheel) as PNG
files in the ImageFolder layout:

    python -m perceiver_image.example_photos photos      # -> photos/face/000.png ... photos/non-face/099.png

Nothing is downloaded: the array is read from the installed package's data folder (`pip install scikit-image`).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import numpy as np

from perceiver_core.errors import UserError


def lfw_subset() -> np.ndarray:
    """[200, 25, 25] float in [0, 1]: the first 100 are faces, the next 100 are not (scikit-image's order)."""
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("the example photographs come with scikit-image: pip install scikit-image")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "lfw_subset.npy"
    if not path.is_file():
        raise UserError(f"scikit-image is installed but {path} is missing; reinstall scikit-image")
    array = np.load(path, allow_pickle=False)
    if array.shape != (200, 25, 25):
        raise UserError(f"{path}: expected 200 images of 25 x 25 pixels, got {list(array.shape)}")
    return array


def write_photos(out: str | Path) -> dict[str, int]:
    from PIL import Image

    images = (np.clip(lfw_subset(), 0.0, 1.0) * 255).round().astype(np.uint8)
    counts = {}
    for name, block in (("face", images[:100]), ("non-face", images[100:])):
        folder = Path(out) / name
        folder.mkdir(parents=True, exist_ok=True)
        for i, image in enumerate(block):
            Image.fromarray(image, mode="L").save(folder / f"{i:03d}.png")
        counts[name] = len(block)
    return counts


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m perceiver_image.example_photos",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("out", help="folder to write (class subfolders face/ and non-face/)")
    args = parser.parse_args(argv)
    try:
        counts = write_photos(args.out)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    classes = ", ".join(f"{k} {v}" for k, v in counts.items())
    print(f"wrote {sum(counts.values())} photographs to {args.out}: {classes}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
