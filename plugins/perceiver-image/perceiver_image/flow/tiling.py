"""Tiled inference for frames larger than the training size (DeepMind's optical-flow colab, generalised).

Tiles of the training size start every (tile - min_overlap) pixels, the last one flush with the frame's far edge,
so neighbours overlap by at least `min_overlap` (DeepMind: 20). Each tile's flow is weighted by its distance to
the tile's nearest edge (1 at the border, growing inward: min(y + 1, h - y, x + 1, w - x)), and the weighted sum
is divided by the summed weights: tile borders, where a tile sees least context, count least.

One refinement of DeepMind's weights (weights = "interior", the default): edges that lie on the frame's own border
are not counted, since no other tile covers the far side of them. With DeepMind's weights ("deepmind"), every tile
weighs 1 along the frame's border, so there the result is a plain average that steps wherever a tile begins or
ends; with interior edges the weights ramp across every overlap and the result is continuous everywhere.
A frame that fits in one tile is run as it is (tiled == untiled there); along a side shorter than the tile, the
tile takes the frame's side.
"""

from __future__ import annotations

from typing import Callable

import torch


def tile_starts(size: int, tile: int, min_overlap: int) -> list[int]:
    """Start offsets of tiles of `tile` pixels covering `size` pixels with >= min_overlap between neighbours."""
    if size <= tile:
        return [0]
    if min_overlap >= tile:
        raise ValueError(f"the tile overlap ({min_overlap}) must be smaller than the tile ({tile} pixels)")
    starts = list(range(0, size, tile - min_overlap))
    starts[-1] = size - tile  # the last tile is flush with the far edge
    return sorted(set(s for s in starts if s <= size - tile))


def edge_weights(h: int, w: int, *, edges: tuple[bool, bool, bool, bool] = (True, True, True, True),
                 device=None) -> torch.Tensor:
    """[h, w] weights: distance (in pixels, from 1) to the nearest of the tile's counted edges (top, bottom,
    left, right); with none counted, all ones."""
    if not any(edges):
        return torch.ones(h, w, device=device)
    y = torch.arange(h, device=device)
    x = torch.arange(w, device=device)
    top, bottom, left, right = edges
    far_y, far_x = torch.full((h,), h + w, device=device), torch.full((w,), h + w, device=device)
    wy = torch.minimum(y + 1 if top else far_y, h - y if bottom else far_y)  # [h]
    wx = torch.minimum(x + 1 if left else far_x, w - x if right else far_x)  # [w]
    return torch.minimum(wy[:, None], wx[None, :]).float()  # [h, w]


def tiled_apply(run: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, tile: tuple[int, int], *,
                min_overlap: int = 20, tile_batch: int = 8, weights: str = "interior") -> torch.Tensor:
    """x [B, ..., H, W] (frames or patches) -> outputs [B, H*W, K], from `run(x_tiles) -> [n, h*w, K]`.

    Tiles are cut from the last two dimensions and run `tile_batch` at a time (each a batch of B).
    """
    b = x.shape[0]
    height, width = x.shape[-2:]
    th, tw = min(tile[0], height), min(tile[1], width)
    if (th, tw) == (height, width):
        return run(x)  # one tile: the untiled model
    corners = [(y, x0) for y in tile_starts(height, th, min_overlap) for x0 in tile_starts(width, tw, min_overlap)]
    total = None
    count = torch.zeros(height, width, device=x.device)
    for i in range(0, len(corners), tile_batch):
        chunk = corners[i:i + tile_batch]
        pieces = torch.cat([x[..., y:y + th, x0:x0 + tw] for y, x0 in chunk])  # [n*B, ..., th, tw]
        out = run(pieces).float()  # [n*B, th*tw, K]
        out = out.reshape(len(chunk), b, th, tw, out.shape[-1])
        if total is None:
            total = torch.zeros(b, height, width, out.shape[-1], device=x.device)
        for (y, x0), piece in zip(chunk, out):
            edges = (True, True, True, True) if weights == "deepmind" else \
                (y > 0, y + th < height, x0 > 0, x0 + tw < width)  # only edges facing another tile
            weight = edge_weights(th, tw, edges=edges, device=x.device)  # [th, tw]
            total[:, y:y + th, x0:x0 + tw] += piece * weight[None, :, :, None]
            count[y:y + th, x0:x0 + tw] += weight
    flow = total / count[None, :, :, None]  # [B, H, W, K]
    return flow.reshape(b, height * width, -1)
