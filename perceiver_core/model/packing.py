"""Packing the inputs of a pipeline into the one byte array the encoder sees (DeepMind's MultimodalPreprocessor).

    input a: data [B, M_a, C_a] + positions [B|1, M_a, P_a] -> [B, M_a, C_a + P_a] --pad--> [B, M_a, W]
    input b: ...                                            -> [B, M_b, C_b + P_b] --pad--> [B, M_b, W]
    W = max_i(C_i + P_i) + min_padding; each input's padding is a trainable vector [1, W - C_i - P_i] of its own
    (it also tells the inputs apart); then each element of input i is replaced by i's trainable mask token [1, W]
    with probability p_i (x (1 - m) + token m, m in {0, 1}); the inputs are concatenated along M in sorted name order:

        [ audio (M_a) | image (M_i) | label (M_l) ]  -> data [B, M_a + M_i + M_l, W], segments record each span

One input with nothing to pad and nothing to mask (every one-input pipeline unless `packing.min_padding` or a mask
probability is set) is handed on as it is: its data and position features stay apart, so the encoder can stream
very large inputs chunk by chunk and concatenate the features inside its compiled cross-attend, and the model has
exactly the parameters (and state-dict keys) it had before inputs could be packed. Several inputs are a
`PackedStream`: materialised once, or in chunked inference computed chunk by chunk from the inputs' own rows.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..byte_array import ByteArray, Segment
from ..interfaces import PositionEncoding
from .input_stream import InputStream
from .layers.attention import trunc_normal_


class Packing(nn.Module):
    """widths: input name -> C + P; mask: input name -> (training probability, evaluation probability) for the
    inputs that have a mask token."""

    def __init__(self, widths: dict[str, int], min_padding: int = 0,
                 mask: dict[str, tuple[float, float]] | None = None):
        super().__init__()
        self.names = sorted(widths)
        self.width = max(widths.values()) + min_padding
        self.input_widths = dict(widths)
        self.padding = nn.ParameterDict()
        for name in self.names:
            if self.width > widths[name]:
                self.padding[name] = nn.Parameter(torch.empty(1, self.width - widths[name]))  # [1, W - C - P]
                trunc_normal_(self.padding[name], std=0.02)
        self.mask = nn.ParameterDict()
        self.probabilities = dict(mask or {})
        for name in sorted(self.probabilities):
            self.mask[name] = nn.Parameter(torch.empty(1, self.width))  # [1, W]
            trunc_normal_(self.mask[name], std=0.02)

    def no_weight_decay(self) -> set[str]:
        """Padding vectors and mask tokens are learned inputs (like embeddings): not decayed."""
        return {f"padding.{n}" for n in self.padding} | {f"mask.{n}" for n in self.mask}

    @property
    def passthrough(self) -> bool:
        """One input with nothing to add: the input is handed on unchanged (data and features apart)."""
        return len(self.names) == 1 and not len(self.padding) and not len(self.mask)

    def probability(self, name: str) -> float:
        train, evaluate = self.probabilities.get(name, (0.0, 0.0))
        return train if self.training else evaluate

    def forward(self, parts: Sequence[tuple[str, ByteArray, PositionEncoding | None]]) -> InputStream:
        """parts: (name, the preprocessor's array [B, M_i, C_i], its position encoding) in packing order."""
        if self.passthrough:
            _, base, position = parts[0]
            return InputStream(base, position)
        hides = []
        for name, base, _ in parts:
            p = self.probability(name) if name in self.mask else 0.0
            hide = None
            if name in self.mask and (p > 0 or (self.training and torch.is_grad_enabled())):
                shape, device = (base.batch_size, base.num_elements, 1), base.data.device
                if p >= 1 or p <= 0:
                    hide = torch.full(shape, float(p >= 1), dtype=base.data.dtype, device=device)
                else:
                    hide = (torch.rand(shape, device=device) < p).to(base.data.dtype)  # [B, M_i, 1]
            hides.append(hide)
        return PackedStream(self, parts, hides)

    def pad_and_mask(self, name: str, x: torch.Tensor, hide: torch.Tensor | None) -> torch.Tensor:
        """Rows of one input [B, c, C_i + P_i] -> [B, c, W]: its padding vector appended, then its mask token where
        hide [B, c, 1] is 1."""
        if name in self.padding:
            pad = self.padding[name].to(x.dtype).expand(x.shape[0], x.shape[1], -1)  # [B, c, W - C_i - P_i]
            x = torch.cat([x, pad], dim=-1)  # [B, c, W]
        if hide is not None:
            # HF's arithmetic (DeepMind's too): the token is part of the graph even when nothing is hidden, so it
            # gets a (zero) gradient every step, as DistributedDataParallel requires of a parameter
            x = x * (1 - hide) + self.mask[name].to(x.dtype) * hide  # [B, c, W]
        return x


class PackedStream(InputStream):
    """Several inputs packed, computed on demand: whole (`materialise`), or rows [start, stop) for the chunked
    cross-attend (`chunk`: each input's rows with their own position features, computed for those rows where the
    encoding can, its padding and mask tokens), so that in chunked inference the packed [B, M, W] array never
    exists. `base` is the packed array's layout (segments, mask, batch): its data are not the input (a zero-stride
    tensor); a decoder that reads the inputs gets the materialised array (`Decoder.reads_inputs`)."""

    def __init__(self, packing: Packing, parts, hides):
        self.packing, self.hides = packing, hides
        self.names = [name for name, _, _ in parts]
        self.streams = [InputStream(base, position) for _, base, position in parts]
        segments, masks, start = [], [], 0
        for name, base, _ in parts:
            segments.append(Segment(name, start, base.index_shape))
            masks.append(base.mask)
            start += base.num_elements
        first = parts[0][1].data
        batch = first.shape[0]
        mask = None
        if any(mk is not None for mk in masks):
            mask = torch.cat([mk if mk is not None else first.new_ones(batch, s.length, dtype=torch.bool)
                              for mk, s in zip(masks, segments)], dim=1)  # [B, M]
        layout = first.new_zeros(1, 1, 1).expand(batch, start, packing.width)  # no memory: shape only
        self.position, self._full_features = None, None
        self._layout = ByteArray(layout, (start,), mask=mask, modality="+".join(self.names),
                                 segments=tuple(segments), check_finite=False)
        self._packed: ByteArray | None = None

    @property
    def base(self) -> ByteArray:
        """The packed array once materialised; before, its layout (zero-stride data: shape, segments, mask)."""
        return self._packed if self._packed is not None else self._layout

    def data_and_features(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.materialise().data, None  # [B, M, W]: the features are inside

    def features(self) -> None:
        return None

    def materialise(self) -> ByteArray:
        if self._packed is None:
            pieces = [self.packing.pad_and_mask(name, stream.materialise().data, hide)  # [B, M_i, W]
                      for name, stream, hide in zip(self.names, self.streams, self.hides)]
            self._packed = self._layout.with_data(torch.cat(pieces, dim=1))  # [B, M, W]
        return self._packed

    def chunk(self, start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        pieces = []
        for name, stream, hide, seg in zip(self.names, self.streams, self.hides, self._layout.segments):
            a, b = max(start, seg.start) - seg.start, min(stop, seg.start + seg.length) - seg.start
            if a >= b:
                continue
            rows, _ = stream.chunk(a, b)  # [B, b - a, C_i + P_i]
            pieces.append(self.packing.pad_and_mask(name, rows, None if hide is None else hide[:, a:b]))
        mask = None if self._layout.mask is None else self._layout.mask[:, start:stop]
        return torch.cat(pieces, dim=1), mask  # [B, stop - start, W], [B, stop - start]
