"""`InputStream`: the encoder's input [B, M, C + P] handed out chunk by chunk.

A pipeline's encoder reads the preprocessor's data [B, M, C] with position features [B|1, M, P] concatenated.
For a 4096^2 image (16.8M elements, 261 channels) that concatenation alone is 17.5 GB in fp32, before the
LayerNorm, keys and values that each would be as large again. An input stream holds only the data and the
position encoding, and computes the concatenation for elements [start, stop) when asked: encoders that cross-attend
with an online softmax (`kernels.chunked_cross_attend`) then never hold more than one chunk of the input. For
inputs that fit, `features()` hands the encoder the two parts, and its (compiled) cross-attend concatenates them
itself: one fused kernel instead of a [B, M, C + P] copy that the backward would keep.

Position encodings that can compute a range of elements (`PositionEncoding.computes_ranges`, e.g. Fourier
features) are evaluated per chunk; others are computed once for the whole input and sliced.
"""

from __future__ import annotations

import torch

from ..byte_array import ByteArray


def concat_features(data: torch.Tensor, features: torch.Tensor | None) -> torch.Tensor:
    """data [B, M, C] with position features [B|1, M, P] appended per element -> [B, M, C + P]."""
    if features is None:
        return data
    return torch.cat([data, features.to(data.dtype).expand(data.shape[0], -1, -1)], dim=-1)


class InputStream:
    """base: the preprocessor's array [B, M, C]; position: the pipeline's position encoding (None: no features)."""

    def __init__(self, base: ByteArray, position=None):
        self.base = base
        self.position = position
        self._full_features: torch.Tensor | None = None

    @classmethod
    def of(cls, byte_array: ByteArray) -> "InputStream":
        """A stream over an array whose features are already concatenated (chunks are slices)."""
        return cls(byte_array, None)

    @property
    def batch_size(self) -> int:
        return self.base.batch_size

    @property
    def num_elements(self) -> int:
        return self.base.num_elements

    @property
    def mask(self) -> torch.Tensor | None:
        return self.base.mask  # [B, M]

    def _features(self, start: int, stop: int) -> torch.Tensor | None:
        """Position features of elements [start, stop): [B|1, stop - start, P], or None."""
        if self.position is not None and self.position.computes_ranges:
            return self.position.forward_range(self.base, start, stop)
        features = self.features()  # computed once, sliced per chunk
        return None if features is None else features[:, start:stop]

    def chunk(self, start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(x [B, c, C + P], mask [B, c] or None) for elements [start, stop)."""
        data = concat_features(self.base.data[:, start:stop], self._features(start, stop))  # [B, c, C + P]
        mask = None if self.base.mask is None else self.base.mask[:, start:stop]
        return data, mask

    def data_and_features(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(data [B, M, C], position features [B|1, M, P] or None), for a consumer that concatenates them itself
        (an encoder's compiled cross-attend); a packed stream gives its materialised array and None."""
        return self.base.data, self.features()

    def features(self) -> torch.Tensor | None:
        """The position features of the whole input [B|1, M, P], or None (for a consumer that concatenates them
        itself, e.g. inside a compiled block). Computed once per stream."""
        if self.position is not None and self._full_features is None:
            self._full_features = self.position(self.base)
        return self._full_features

    def materialise(self) -> ByteArray:
        """The whole input as one array [B, M, C + P] (what the encoder sees when nothing is streamed)."""
        features = self.features()  # [B|1, M, P] or None
        if features is None:
            return self.base
        return self.base.with_data(concat_features(self.base.data, features))  # [B, M, C + P]
