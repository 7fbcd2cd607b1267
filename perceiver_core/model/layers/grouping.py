"""HiP's grouping: how input elements are ordered, split into groups, padded, regrouped between blocks, and put
back in place.

- `element_order(index_shape, order)`: the order of one modality's elements before grouping. `raster` is the
  row-major order of the index grid (the official code: groups of an image are row stripes); `morton` sorts the
  grid cells by their Z-order (bit-interleaved) code, so each group is a compact tile (locality-preserving).
  `point_order(positions)` is the same Z-order over explicit coordinates (point clouds, permuted pixels).
- `assign_groups(num_groups, lengths)`: each modality gets at least one group, extra groups go greedily to the
  modality with the most elements per group (google-deepmind/hierarchical_perceiver's rule); groups never mix
  modalities.
- `GroupLayout`: the gather index [G, n] of element ids (or -1 for padding) that groups a packed [B, M, C] array
  into [B, G, n, C] in one gather, and its inverse. Each modality is zero-padded to a multiple of its group count,
  and groups to a common length; padding is not masked (as in the official code).
- `regroup(x, G', kind)`: [B, G, N, C] -> [B, G', G N / G', C] between blocks: `reshape` merges neighbouring
  groups; `transpose_reshape` swaps G and N first, so every new group mixes all old ones.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import torch

ORDERS = ("raster", "morton")
REGROUPS = ("reshape", "transpose_reshape")


def morton_codes(coords: torch.Tensor, bits: int) -> torch.Tensor:
    """Integer coordinates [..., d] (each < 2**bits) -> Z-order codes [...] (int64): bit b of dimension k lands at
    bit b * d + (d - 1 - k), so dimension 0 (rows) is the most significant at every level."""
    d = coords.shape[-1]
    if bits * d > 62:
        raise ValueError(f"a {d}-D Morton order with {bits} bits per dimension does not fit 62 bits")
    coords = coords.to(torch.int64)
    codes = torch.zeros(coords.shape[:-1], dtype=torch.int64, device=coords.device)
    for b in range(bits):
        for k in range(d):
            codes |= ((coords[..., k] >> b) & 1) << (b * d + (d - 1 - k))
    return codes


@lru_cache(maxsize=64)
def element_order(index_shape: tuple[int, ...], order: str) -> torch.Tensor:
    """The permutation [M] (element ids in the order they are grouped) for one modality's index grid."""
    m = math.prod(index_shape)
    if order == "raster" or len(index_shape) == 1 and order == "morton":
        return torch.arange(m)  # a 1-D grid: raster order is already local
    if order != "morton":
        raise ValueError(f"unknown input order {order!r}; use one of {', '.join(ORDERS)}")
    grids = torch.meshgrid(*(torch.arange(n) for n in index_shape), indexing="ij")
    coords = torch.stack([g.reshape(-1) for g in grids], dim=1)  # [M, d], row-major ids
    bits = max(1, max(int(n - 1).bit_length() for n in index_shape))
    return torch.argsort(morton_codes(coords, bits), stable=True)  # [M]


def point_order(positions: torch.Tensor) -> torch.Tensor:
    """Explicit coordinates [..., M, d] -> the permutation [..., M] sorting them by Z-order: each dimension is
    quantised to as many bits as fit 62, over its own min..max range (per example)."""
    pos = positions.detach().float()
    d = pos.shape[-1]
    bits = max(1, min(21, 62 // d))
    lo, hi = pos.amin(-2, keepdim=True), pos.amax(-2, keepdim=True)
    scaled = (pos - lo) / (hi - lo).clamp_min(1e-12) * (2 ** bits - 1)  # [..., M, d] in [0, 2^bits - 1]
    return torch.argsort(morton_codes(scaled.round().to(torch.int64), bits), dim=-1, stable=True)


def assign_groups(num_groups: int, lengths: Sequence[int]) -> tuple[list[int], int]:
    """Groups per modality and the common group length (before padding to it)."""
    if len(lengths) > num_groups:
        raise ValueError(f"{len(lengths)} modalities but only {num_groups} groups in the first HiP block: "
                         "groups never mix modalities, so each modality needs one")
    per_modality = [1] * len(lengths)
    per_group = [float(n) for n in lengths]
    for _ in range(num_groups - len(lengths)):
        k = max(range(len(lengths)), key=lambda i: per_group[i])  # first of the largest, as np.argmax
        per_modality[k] += 1
        per_group[k] = lengths[k] / per_modality[k]
    return per_modality, math.ceil(max(per_group))


@dataclass(frozen=True)
class GroupLayout:
    """Where each element of a packed input goes: `index` [G, n] holds element ids (-1 = zero padding), or
    [B, G, n] when the order differs per example (explicit per-example positions).

    `groups_of[k]` lists the groups of modality k (in order), so outputs can be split back per modality.
    """

    index: torch.Tensor  # [G, n] or [B, G, n] int64
    groups_of: tuple[tuple[int, ...], ...]
    num_elements: int
    _on_device: dict = field(default_factory=dict, compare=False, repr=False)

    def index_on(self, device: torch.device) -> torch.Tensor:
        """`index` on `device`, copied there once (layouts are cached, so this is once per input shape)."""
        key = str(device)
        if key not in self._on_device:
            self._on_device[key] = self.index.to(device)
        return self._on_device[key]

    @property
    def num_groups(self) -> int:
        return self.index.shape[-2]

    @property
    def group_length(self) -> int:
        return self.index.shape[-1]

    def group(self, x: torch.Tensor) -> torch.Tensor:
        """[B|1, M, C] -> [B, G, n, C], padding slots zero."""
        idx = self.index_on(x.device)
        c = x.shape[-1]
        if idx.dim() == 2:  # one order for the whole batch: one index_select
            out = x.index_select(1, idx.clamp_min(0).reshape(-1)).view(x.shape[0], *idx.shape, c)  # [B, G, n, C]
            return out * (idx >= 0).view(1, *idx.shape, 1).to(out.dtype)
        b = idx.shape[0]
        flat = idx.clamp_min(0).reshape(b, -1, 1).expand(-1, -1, c)  # [B, G n, C]
        out = torch.gather(x.expand(b, -1, -1), 1, flat).view(*idx.shape, c)  # [B, G, n, C]
        return out * (idx >= 0)[..., None].to(out.dtype)

    def ungroup(self, x: torch.Tensor) -> torch.Tensor:
        """[B, G, n, C] -> [B, M, C] (padding slots dropped)."""
        return scatter_elements(x, self.index_on(x.device), self.num_elements)


def scatter_elements(x: torch.Tensor, index: torch.Tensor, num_elements: int) -> torch.Tensor:
    """x [B, G, Q, C] with element ids [B|1, G, Q] (-1: none) -> [B, M, C], zeros where no id points. One
    scatter, no host synchronisation: ids of -1 land in a spare slot that is dropped."""
    b, g, q, c = x.shape
    ids = index.to(x.device).reshape(-1, g * q)  # [B|1, G Q]
    ids = torch.where(ids < 0, num_elements, ids).expand(b, -1)  # [B, G Q]
    out = x.new_zeros(b, num_elements + 1, c)
    out.scatter_(1, ids[..., None].expand(-1, -1, c), x.reshape(b, g * q, c))
    return out[:, :num_elements]


def build_layout(segments: Sequence[tuple[int, tuple[int, ...]]], num_groups: int, order: str,
                 orders: Sequence[torch.Tensor] | None = None) -> GroupLayout:
    """segments: (start, index_shape) per modality of a packed input -> its layout for `num_groups` groups.
    `orders`: a permutation [M_m] per segment that replaces the grid order (e.g. `point_order` of explicit
    positions); such layouts are not cached."""
    key = tuple((int(s), tuple(shape)) for s, shape in segments)
    if orders is not None:
        return _layout(key, num_groups, order, orders)
    return _build_layout(key, num_groups, order)


@lru_cache(maxsize=64)
def _build_layout(segments: tuple[tuple[int, tuple[int, ...]], ...], num_groups: int, order: str) -> GroupLayout:
    return _layout(segments, num_groups, order, None)


def _layout(segments, num_groups: int, order: str, orders) -> GroupLayout:
    lengths = [math.prod(shape) for _, shape in segments]
    per_modality, group_length = assign_groups(num_groups, lengths)
    rows, groups_of, next_group = [], [], 0
    for j, ((start, shape), length, k) in enumerate(zip(segments, lengths, per_modality)):
        perm = orders[j] if orders is not None else element_order(shape, order)
        ids = start + perm.to(torch.int64)  # [..., L] element ids in grouping order
        lead = tuple(ids.shape[:-1])
        local = math.ceil(length / k)  # elements per group of this modality (its last group padded)
        ids = torch.cat([ids, ids.new_full(lead + (local * k - length,), -1)], -1).view(*lead, k, local)
        ids = torch.cat([ids, ids.new_full(lead + (k, group_length - local), -1)], dim=-1)  # [..., k, n]
        rows.append(ids)
        groups_of.append(tuple(range(next_group, next_group + k)))
        next_group += k
    if len({r.dim() for r in rows}) > 1:  # some segments ordered per example: broadcast the others
        b = max(r.shape[0] for r in rows if r.dim() == 3)
        rows = [r if r.dim() == 3 else r.expand(b, -1, -1) for r in rows]
    return GroupLayout(torch.cat(rows, dim=-2), tuple(groups_of), sum(lengths))


def regroup(x: torch.Tensor, num_groups: int, kind: str = "reshape") -> torch.Tensor:
    """[B, G, N, C] -> [B, G', G N / G', C]."""
    b, g, n, c = x.shape
    if (g * n) % num_groups:
        raise ValueError(f"cannot regroup {g} groups of {n} latents into {num_groups} groups")
    if kind == "transpose_reshape":
        x = x.transpose(1, 2)  # [B, N, G, C]: each new group takes latents from every old group
    elif kind != "reshape":
        raise ValueError(f"unknown regroup {kind!r}; use one of {', '.join(REGROUPS)}")
    return x.reshape(b, num_groups, g * n // num_groups, c)
