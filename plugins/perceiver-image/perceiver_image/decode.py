"""Reading image files with Pillow, bounded: JPEG, PNG, WebP, TIFF, BMP (the first frame of multi-frame files).

-> a numpy array [H, W, C]: uint8 for 8-bit images, float32 in [0, 1] for 16-bit ones. Modes are converted to the
requested "RGB" or "L": grey and palette images are expanded, transparent images are composited onto white (or
refused), CMYK and YCbCr are converted; 16-bit greyscale (I;16) is scaled from 0..65535 to [0, 1] (or refused);
32-bit float images are refused. An image of more than `max_pixels` is refused from its header, before any pixel
is decoded (Pillow's decompression-bomb guard, applied by us rather than as a warning). Large images are decoded
at a reduced scale when Pillow can (JPEG DCT scaling, `reduce`) so a 40-megapixel photograph never needs
160 MB when the model takes 224 x 224.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp")
_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N", "I")


class ImageDecodeError(ValueError):
    """An image file that cannot be used (the message is the reason, without the path)."""


def decode_image(path: str, mode: Literal["RGB", "L"] | None = None, *, max_pixels: int = 89_478_485,
                 min_side: int | None = None, transparent: Literal["white", "refuse"] = "white",
                 sixteen_bit: Literal["scale", "refuse"] = "scale") -> np.ndarray:
    """Decode one file. `mode` None keeps grey images grey and colour images RGB. `min_side`: the image may be
    decoded smaller, down to a shorter side of at least this many pixels."""
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        raise ImageDecodeError("reading image files needs Pillow: pip install pillow") from None
    try:
        with Image.open(path) as im:
            w, h = im.size
            if w * h > max_pixels:
                raise ImageDecodeError(f"{w}x{h} = {w * h:,} pixels, more than max_pixels = {max_pixels:,} "
                                       "(a decompression bomb, or raise data.max_pixels)")
            if w == 0 or h == 0:
                raise ImageDecodeError(f"an image of {w}x{h} pixels")
            source = im.mode
            if source == "F":
                raise ImageDecodeError("32-bit floating-point images are not supported; save it as 8- or 16-bit")
            if source in _SIXTEEN_BIT:
                if sixteen_bit == "refuse":
                    raise ImageDecodeError(f"a 16-bit image (mode {source}); set data.sixteen_bit = \"scale\" to "
                                           "read it scaled to [0, 1]")
                im.load()
                array = np.asarray(im, dtype=np.float32)
                array = np.clip(array / 65535.0, 0.0, 1.0)[:, :, None]  # [H, W, 1]
                if mode == "RGB":
                    array = np.repeat(array, 3, axis=2)
                return array
            if min_side and im.format == "JPEG" and min(w, h) > 2 * min_side:
                im.draft(im.mode, (max(min_side, w * min_side // min(w, h)), max(min_side, h * min_side // min(w, h))))
            has_alpha = source in ("RGBA", "LA", "PA") or (source == "P" and "transparency" in im.info)
            if has_alpha:
                if transparent == "refuse":
                    raise ImageDecodeError(f"a transparent image (mode {source}); set data.transparent = \"white\" "
                                           "to composite it onto white")
                rgba = im.convert("RGBA")
                background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                im2 = Image.alpha_composite(background, rgba)
            else:
                im2 = im
            target = mode or ("L" if source in ("1", "L", "LA", "I", "I;16") or
                              (source == "P" and _palette_is_grey(im)) else "RGB")
            im2 = im2.convert(target)
            if min_side and min(im2.size) >= 2 * min_side:
                im2 = im2.reduce(min(im2.size) // min_side)
            array = np.asarray(im2, dtype=np.uint8)
    except ImageDecodeError:
        raise
    except UnidentifiedImageError:
        raise ImageDecodeError("not an image file Pillow can read (JPEG, PNG, WebP, TIFF, BMP)") from None
    except Image.DecompressionBombError as exc:
        raise ImageDecodeError(str(exc)) from None
    except (OSError, SyntaxError, ValueError) as exc:  # truncated or corrupt data
        raise ImageDecodeError(f"corrupt or truncated image ({exc})") from None
    return array if array.ndim == 3 else array[:, :, None]


def _palette_is_grey(im) -> bool:
    palette = im.getpalette() or []
    triples = [palette[i:i + 3] for i in range(0, len(palette), 3)]
    return all(r == g == b for r, g, b in triples)
