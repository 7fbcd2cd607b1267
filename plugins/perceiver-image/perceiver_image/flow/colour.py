"""The standard optical-flow colour coding (Baker et al., "A Database and Evaluation Methodology for Optical
Flow", the Middlebury colour wheel): hue = direction, saturation = length relative to the largest flow.

The wheel has 55 hues in six ramps (red-yellow 15, yellow-green 6, green-cyan 4, cyan-blue 11, blue-magenta 13,
magenta-red 6); a flow's angle picks a position between two hues (linear interpolation); its length r (scaled so
the largest is 1) blends white (r = 0) to the full colour (r = 1); longer flows (r > 1, with a given max_radius)
are darkened.
"""

from __future__ import annotations

import numpy as np

_RAMPS = [(15, (255, 0, 0), (255, 255, 0)), (6, (255, 255, 0), (0, 255, 0)), (4, (0, 255, 0), (0, 255, 255)),
          (11, (0, 255, 255), (0, 0, 255)), (13, (0, 0, 255), (255, 0, 255)), (6, (255, 0, 255), (255, 0, 0))]


def colour_wheel() -> np.ndarray:
    """[55, 3] float colours in [0, 255], starting at red."""
    rows = []
    for n, start, end in _RAMPS:
        t = np.arange(n)[:, None] / n
        rows.append((1 - t) * np.array(start, dtype=np.float64) + t * np.array(end, dtype=np.float64))
    return np.concatenate(rows)


def flow_to_colour(flow: np.ndarray, max_radius: float | None = None) -> np.ndarray:
    """flow [H, W, 2] (u right, v down; NaN = unknown) -> uint8 [H, W, 3] RGB; unknown pixels are black."""
    flow = np.asarray(flow, dtype=np.float64)
    known = np.isfinite(flow).all(-1)
    u, v = np.where(known, flow[..., 0], 0.0), np.where(known, flow[..., 1], 0.0)
    radius = np.hypot(u, v)
    scale = max_radius if max_radius is not None else float(radius.max(initial=0.0))
    if scale > 0:
        u, v, radius = u / scale, v / scale, radius / scale
    wheel = colour_wheel() / 255.0  # [N, 3]
    n = len(wheel)
    position = (np.arctan2(-v, -u) / np.pi + 1) / 2 * (n - 1)  # [0, n - 1]
    k0 = np.floor(position).astype(int)
    k1 = (k0 + 1) % n
    f = (position - k0)[..., None]
    colour = (1 - f) * wheel[k0] + f * wheel[k1]  # [H, W, 3]
    r = radius[..., None]
    colour = np.where(r <= 1, 1 - r * (1 - colour), colour * 0.75)
    colour[~known] = 0.0
    return np.clip(np.round(colour * 255), 0, 255).astype(np.uint8)
