"""`ByteArray`: the modality-free input every encoder sees.

A byte array is a batch of M input elements with C channels each, plus what is needed to place them:
the index shape of one example (M == prod(index_shape)), optional explicit positions (point clouds, permuted
pixels), an optional padding mask, and for packed multimodal input the segments saying which span of M belongs
to which modality. It validates itself on construction: a malformed tensor is a clear `ByteArrayError` naming the
field, never a silent broadcast.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, replace

import torch

from .errors import ByteArrayError

_FORCE_VALUE_CHECKS = os.environ.get("PERCEIVER_CHECK_VALUES", "") == "1"


@dataclass(frozen=True)
class Segment:
    """One modality's span [start, start + prod(index_shape)) of a packed byte array."""

    modality: str
    start: int
    index_shape: tuple[int, ...]

    @property
    def length(self) -> int:
        return math.prod(self.index_shape)


@dataclass(frozen=True)
class ByteArray:
    """data [B, M, C]; positions [B|1, M, d] or None; mask [B, M] (True = a real element) or None."""

    data: torch.Tensor
    index_shape: tuple[int, ...]
    positions: torch.Tensor | None = None
    mask: torch.Tensor | None = None
    modality: str = "generic"
    segments: tuple[Segment, ...] = field(default_factory=tuple)
    check_finite: bool = True

    def __post_init__(self):
        object.__setattr__(self, "index_shape", tuple(int(n) for n in self.index_shape))
        self.validate()

    # -- validation --------------------------------------------------------------------------------------
    def validate(self) -> None:
        data = self.data
        if not isinstance(data, torch.Tensor):
            raise ByteArrayError(f"ByteArray.data must be a torch.Tensor, got {type(data).__name__}")
        if data.dim() != 3:
            raise ByteArrayError(f"ByteArray.data must have shape [batch, elements, channels] (rank 3), "
                                 f"got rank {data.dim()} with shape {list(data.shape)}")
        if not data.is_floating_point():
            raise ByteArrayError(f"ByteArray.data must be floating point, got {data.dtype}; "
                                 "embed integer tokens in the preprocessor first")
        batch, m, _ = data.shape
        if not self.index_shape or any(n < 1 for n in self.index_shape):
            raise ByteArrayError(f"ByteArray.index_shape must be non-empty positive sizes, got {self.index_shape}")
        if math.prod(self.index_shape) != m:
            raise ByteArrayError(f"ByteArray.index_shape {self.index_shape} holds {math.prod(self.index_shape)} "
                                 f"elements but data has M={m} (shape {list(data.shape)})")
        if self.positions is not None:
            pos = self.positions
            if pos.dim() != 3 or pos.shape[0] not in (1, batch) or pos.shape[1] != m:
                raise ByteArrayError(f"ByteArray.positions must have shape [{batch} or 1, {m}, d], "
                                     f"got {list(pos.shape)}")
            if not pos.is_floating_point():
                raise ByteArrayError(f"ByteArray.positions must be floating point, got {pos.dtype}")
        if self.mask is not None:
            mask = self.mask
            if mask.dtype != torch.bool:
                raise ByteArrayError(f"ByteArray.mask must be a bool tensor (True = real element), got {mask.dtype}")
            if tuple(mask.shape) != (batch, m):
                raise ByteArrayError(f"ByteArray.mask must have shape [{batch}, {m}], got {list(mask.shape)}")
            if self._check_values(mask) and mask.numel() and not bool(mask.any(dim=1).all()):
                raise ByteArrayError("ByteArray.mask hides every element of at least one example; "
                                     "each example needs one real element")
        if self.segments:
            end = 0
            for seg in self.segments:
                if seg.start != end:
                    raise ByteArrayError(f"ByteArray.segments must tile M without gaps: segment {seg.modality!r} "
                                         f"starts at {seg.start}, expected {end}")
                end = seg.start + seg.length
            if end != m:
                raise ByteArrayError(f"ByteArray.segments cover {end} elements but M={m}")
        if self.check_finite:
            for name in ("data", "positions"):
                t = getattr(self, name)
                if t is not None and self._check_values(t) and not bool(torch.isfinite(t).all()):
                    bad = (~torch.isfinite(t)).sum().item()
                    raise ByteArrayError(f"ByteArray.{name} contains {bad} NaN or infinite value(s); "
                                         "clean or normalise the input before it reaches the model")

    @staticmethod
    def _check_values(t: torch.Tensor) -> bool:
        # Value checks read the tensor: free on the CPU, a device synchronisation elsewhere. Accelerated runs
        # validate on the host (the data pipeline builds byte arrays on the CPU) or opt in explicitly.
        return t.device.type == "cpu" or _FORCE_VALUE_CHECKS

    # -- conveniences ------------------------------------------------------------------------------------
    @property
    def batch_size(self) -> int:
        return self.data.shape[0]

    @property
    def num_elements(self) -> int:
        return self.data.shape[1]

    @property
    def channels(self) -> int:
        return self.data.shape[2]

    def with_data(self, data: torch.Tensor) -> "ByteArray":
        """The same array with new per-element features (e.g. positions concatenated); validated again."""
        return replace(self, data=data, check_finite=False)

    def segment(self, modality: str) -> "ByteArray":
        """One modality's span of a packed array: data [B, M_i, C] with that modality's own index shape (and its
        part of the mask); for splitting packed inputs, or outputs laid out as the input, back per modality."""
        for seg in self.segments:
            if seg.modality == modality:
                stop = seg.start + seg.length
                positions = None if self.positions is None else self.positions[:, seg.start:stop]
                mask = None if self.mask is None else self.mask[:, seg.start:stop]
                return ByteArray(self.data[:, seg.start:stop], seg.index_shape, positions=positions, mask=mask,
                                 modality=modality, check_finite=False)
        names = ", ".join(s.modality for s in self.segments) or "none (not a packed array)"
        raise ByteArrayError(f"ByteArray has no segment {modality!r}; segments: {names}")
