"""Training augmentation of image pairs: random crop to the training size, left-right and top-bottom mirroring,
frame reversal (when the backward flow is known) and brightness. Each draws only from the given generator, so a
resumed run repeats it exactly.

Geometry changes the flow with the frames: mirroring left-right negates u (and mirrors the field), top-bottom
negates v; reversal swaps the frames and takes the backward flow as the target (the negated forward flow is not
the backward flow where things move or are occluded, so examples without one are never reversed).
"""

from __future__ import annotations

from typing import Any, Mapping

import torch

from .pair import as_flow, as_frames, valid_mask


def _coin(p: float, generator: torch.Generator) -> bool:
    draw = float(torch.rand((), generator=generator))  # drawn whatever p is: the stream stays aligned
    return draw < p


def _mirror(t: torch.Tensor | None, dim: int, negate: int | None = None) -> torch.Tensor | None:
    if t is None:
        return None
    t = t.flip(dim)
    if negate is not None:
        t = t.clone()
        t[..., negate] = -t[..., negate]
    return t


def augment_pair(example: Mapping[str, Any], generator: torch.Generator, *, size: tuple[int, int] | None,
                 random_crop: bool = True, hflip: float = 0.0, vflip: float = 0.0, reverse: float = 0.0,
                 brightness: float = 0.0) -> dict[str, Any]:
    frames = as_frames(example["frames"])  # [2, H, W, C]
    h, w = frames.shape[1:3]
    out: dict[str, Any] = {k: v for k, v in example.items()
                           if k not in ("frames", "flow", "valid", "flow_backward", "valid_backward")}
    flows: dict[str, torch.Tensor | None] = {"flow": None, "flow_backward": None}
    valids: dict[str, torch.Tensor | None] = {"flow": None, "flow_backward": None}
    for key, vkey in (("flow", "valid"), ("flow_backward", "valid_backward")):
        if example.get(key) is not None:
            flows[key] = as_flow(example[key], (h, w), key)
            valids[key] = valid_mask(flows[key], example.get(vkey))
    # crop to the training size at a random position
    if random_crop and size is not None and (h > size[0] or w > size[1]):
        ch, cw = min(h, size[0]), min(w, size[1])
        y = int(torch.randint(0, h - ch + 1, (), generator=generator))
        x = int(torch.randint(0, w - cw + 1, (), generator=generator))
        frames = frames[:, y:y + ch, x:x + cw]
        flows = {k: None if f is None else f[y:y + ch, x:x + cw] for k, f in flows.items()}
        valids = {k: None if v is None else v[y:y + ch, x:x + cw] for k, v in valids.items()}
    if _coin(hflip, generator):  # x -> W-1-x: u changes sign
        frames = frames.flip(2)
        flows = {k: _mirror(f, 1, negate=0) for k, f in flows.items()}
        valids = {k: _mirror(v, 1) for k, v in valids.items()}
    if _coin(vflip, generator):  # y -> H-1-y: v changes sign
        frames = frames.flip(1)
        flows = {k: _mirror(f, 0, negate=1) for k, f in flows.items()}
        valids = {k: _mirror(v, 0) for k, v in valids.items()}
    if _coin(reverse, generator) and flows["flow_backward"] is not None:
        frames = frames.flip(0)
        flows = {"flow": flows["flow_backward"], "flow_backward": flows["flow"]}
        valids = {"flow": valids["flow_backward"], "flow_backward": valids["flow"]}
    if brightness > 0:
        scale = 1 + brightness * (2 * torch.rand(2, generator=generator) - 1)  # one factor per frame
        frames = (frames * scale[:, None, None, None]).clamp(0.0, 1.0)
    out["frames"] = frames.contiguous()
    for key, vkey in (("flow", "valid"), ("flow_backward", "valid_backward")):
        if flows[key] is not None:
            out[key], out[vkey] = flows[key].contiguous(), valids[key].contiguous()
    return out
