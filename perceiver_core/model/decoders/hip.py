"""The Hierarchical Perceiver's decoder half: the blocks after the processor, mirrored, with U-Net skips.

    processor output [B, 1, N_p, D_p]
      -> block p+1 .. last: regroup, (learned latents + skip from the mirrored encoder block, projected when the
         widths differ) cross-attend, self-attends: [B, G_i, N_i, D_i]
      -> reconstruction head: the position queries of the elements to reconstruct [B, G0, Q, E] cross-attend to
         the final latents of the same group -> [B, G0, Q, E]
      -> per-modality unembedding Linear(E -> C_m) (zero-initialised) -> back in place: [B, M, C]
    HiPClassBottleneck: each class modality is read out right after the processor by a head of its own.

Output: the reconstruction [B, M, C] laid out as the input; with masked auto-encoding, the mapping
{"reconstruction" [B, M, C] (zeros where nothing was hidden), "mask" [B, M] (True = hidden and reconstructed),
"target" [B, M, C] (the input), "channels" [M] (each element's own channel count: the packed array pads
modalities to the widest)} for task `mae`.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ...byte_array import ByteArray
from ...config.hip import HiPDecoderConfig, HiPEncoderConfig
from ...interfaces import BuildContext, Decoder, Encoded, Outputs
from ..encoders.hip import block_kwargs, hip_modalities
from ..layers.grouping import regroup, scatter_elements
from ..layers.hip_blocks import HiPBlock, ReconstructionHead


def _unembed(channels_in: int, channels_out: int) -> nn.Linear:
    layer = nn.Linear(channels_in, channels_out)
    nn.init.zeros_(layer.weight)  # the official unembedding starts at zero (VarianceScaling(0.0))
    nn.init.zeros_(layer.bias)
    return layer


class HiPDecoder(Decoder):
    reads_inputs = True

    def __init__(self, config: HiPDecoderConfig, context: BuildContext):
        super().__init__()
        if context.encoder_config is None or "num_groups" not in context.encoder_config:
            raise ValueError("decoder hip mirrors encoder hip: use them together")
        c = self.encoder_config = HiPEncoderConfig(**context.encoder_config)
        self.modalities = hip_modalities(c, context)
        n = len(c.num_groups)
        p = c.processor_index
        blocks = []
        for i in range(p + 1, n):
            # block i cross-attends to block i-1's output and skips from the mirrored encoder block n-1-i
            blocks.append(HiPBlock(c.channels[i - 1], skip_channels=c.channels[n - 1 - i], **block_kwargs(c, i)))
        self.blocks = nn.ModuleList(blocks)
        e = c.embedding_channels
        main = [m for m in self.modalities if m not in c.class_modalities]
        self.head = ReconstructionHead(e, c.channels[-1])
        self.unembed = nn.ModuleDict({m: _unembed(e, self.modalities[m][1]) for m in main})
        width = c.channels[p - 1]
        classes = [m for m in self.modalities if m in c.class_modalities]
        self.class_head = ReconstructionHead(width, c.channels[p]) if classes else None
        self.class_unembed = nn.ModuleDict({m: _unembed(width, self.modalities[m][1]) for m in classes})

    def forward(self, encoded: Encoded, byte_array: ByteArray) -> Outputs:
        c, state = self.encoder_config, encoded.state
        if "layout" not in state:
            raise ValueError("decoder hip needs the state of encoder hip")
        levels = encoded.levels
        n, p = len(c.num_groups), c.processor_index
        z = levels[-1]  # processor output [B, 1, N_p, D_p]
        b, m_total, channels = byte_array.data.shape
        out = byte_array.data.new_zeros(b, m_total, channels)  # [B, M, C]
        for seg in state["segments"]:  # class modalities, read out after the processor
            if seg.modality in self.class_unembed:
                query = state["class_queries"][seg.modality]  # [L, W]
                values = self.class_head(query.expand(b, 1, -1, -1), z)[:, 0]  # [B, L, W]
                values = self.class_unembed[seg.modality](values)  # [B, L, C_m]
                out[:, seg.start:seg.start + seg.length, :values.shape[-1]] = values
        for j, block in enumerate(self.blocks):
            i = p + 1 + j
            z = regroup(z, c.num_groups[i], c.regroup)  # [B, G_i, ., D_{i-1}]
            z = block(z, skip=levels[n - 1 - i])  # [B, G_i, N_i, D_i]
        rec = self.head(state["queries"].expand(b, -1, -1, -1), z)  # [B, G0, Q, E]
        index = state["query_index"]  # [B|1, G0, Q] element ids among the non-class elements, -1 = padding
        layout, main = state["layout"], state["main"]
        hidden = torch.zeros(b, m_total, dtype=torch.bool, device=out.device) if state["masked"] else None
        offset = 0
        for seg, groups in zip(main, layout.groups_of):
            g = torch.as_tensor(groups, device=rec.device)
            values = self.unembed[seg.modality](rec.index_select(1, g))  # [B, g_m, Q, C_m]
            ids = index.index_select(1, g) - offset  # ids within this modality
            ids = torch.where(index.index_select(1, g) < 0, -1, ids)
            placed = scatter_elements(values, ids, seg.length)  # [B, M_m, C_m]
            out[:, seg.start:seg.start + seg.length, :values.shape[-1]] = placed
            if hidden is not None:
                flags = scatter_elements(torch.ones_like(values[..., :1]), ids, seg.length)[..., 0] > 0  # [B, M_m]
                hidden[:, seg.start:seg.start + seg.length] = flags
            offset += math.prod(seg.index_shape)
        if hidden is None:
            return out  # [B, M, C]
        own = torch.full((m_total,), channels, dtype=torch.long, device=out.device)  # [M] channels of each element
        for seg in state["segments"]:
            own[seg.start:seg.start + seg.length] = self.modalities[seg.modality][1]
        return {"reconstruction": out, "mask": hidden, "target": byte_array.data, "channels": own}
