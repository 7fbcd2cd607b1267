"""The Hierarchical Perceiver's encoder half (arXiv 2202.10890; google-deepmind/hierarchical_perceiver).

    packed input [B, M, C] (segments: one span per modality)
      -> per modality: Linear(C_m -> E) + learned position table [M_m, E] (through `position_encoding_linear`
         when the position width option differs from E)
      -> order (raster | morton) and group: [B, G0, n, E] (each modality padded to a multiple of its groups)
      -> [masked auto-encoding: keep a random (1 - mask_ratio) of every group; the rest become decoder queries]
      -> block 0 .. processor: regroup (i > 0), cross-attend, self-attends: [B, G_i, N_i, D_i]
    Encoded.latents = the processor's output [B, N_p, D_p]; Encoded.levels = every block's output (U-Net skips);
    Encoded.state = the layout and the position queries decoder `hip` reconstructs from.

HiPClassBottleneck (`class_modalities`): those modalities skip the grouping and the blocks below the processor;
they are embedded to the processor's input width with positions of their own and joined to its input tokens.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ...byte_array import ByteArray, Segment
from ...config.hip import HiPEncoderConfig
from ...errors import ByteArrayError
from ...interfaces import BuildContext, Encoded, Encoder
from ..layers.grouping import build_layout, point_order, regroup
from ..layers.hip_blocks import HiPBlock, variance_scaling_

DEFAULT_MODALITY = "input"


def hip_modalities(config: HiPEncoderConfig, context: BuildContext) -> dict[str, tuple[tuple[int, ...], int]]:
    """name -> (index shape, channels) of every modality the model embeds; default: the preprocessor's output."""
    if config.modalities:
        return {name: (tuple(m.index_shape), m.channels) for name, m in config.modalities.items()}
    index_shape = tuple(context.require("index_shape", "the hip encoder"))
    return {DEFAULT_MODALITY: (index_shape, context.require("input_channels", "the hip encoder"))}


def block_kwargs(c: HiPEncoderConfig, i: int) -> dict[str, Any]:
    return {"groups": c.num_groups[i], "latents": c.latents[i], "channels": c.channels[i],
            "self_attends": c.self_attends[i], "self_attend_heads": c.self_attend_heads[i],
            "cross_attend_heads": c.cross_attend_heads[i], "cross_attend_widening": c.cross_attend_widening[i],
            "self_attend_widening": c.self_attend_widening[i], "dropout": c.dropout,
            "residual_dtype": c.residual_dtype}


def _table(rows: int, channels: int) -> nn.Parameter:
    t = nn.Parameter(torch.empty(rows, channels))
    variance_scaling_(t)
    return t


class HiPEncoder(Encoder):
    def __init__(self, config: HiPEncoderConfig, context: BuildContext):
        super().__init__()
        c = self.config = config
        self.modalities = hip_modalities(c, context)
        unknown = [m for m in c.class_modalities if m not in self.modalities]
        if unknown:
            raise ValueError(f"class_modalities {unknown} are not among the modalities {sorted(self.modalities)}")
        self.class_modalities = [m for m in self.modalities if m in c.class_modalities]
        main = [m for m in self.modalities if m not in c.class_modalities]
        if not main:
            raise ValueError("every modality is a class modality: HiP needs one that goes through the encoder")
        e = c.embedding_channels
        p = self.processor_index = c.processor_index
        # per-modality embedding and learned position table ("pos_emb_mae_<modality>")
        self.embed = nn.ModuleDict({m: nn.Linear(self.modalities[m][1], e) for m in main})
        learned = c.positions == "learned"
        self.positions = nn.ParameterDict({m: _table(math.prod(self.modalities[m][0]), e) for m in main if learned})
        slots = c.max_modalities_per_input or len(main)
        project = learned and c.position_encoding_channels is not None and c.position_encoding_channels != e
        self.position_linear = nn.ModuleList(nn.Linear(e, e, bias=False) for _ in range(slots)) if project else None
        if not c.train_positions:
            for module in filter(None, (self.positions, self.position_linear)):
                module.requires_grad_(False)
        # class labels join the processor's input: embedded to its width (so no position projection)
        width = c.channels[p - 1]
        self.class_embed = nn.ModuleDict({m: nn.Linear(self.modalities[m][1], width) for m in self.class_modalities})
        self.class_positions = nn.ParameterDict(
            {m: _table(math.prod(self.modalities[m][0]), width) for m in self.class_modalities})
        blocks, in_channels = [], e
        for i in range(p + 1):
            latents_train = c.processor_latents_train if i == p else None
            blocks.append(HiPBlock(in_channels, latents_train=latents_train, **block_kwargs(c, i)))
            in_channels = c.channels[i]
        self.blocks = nn.ModuleList(blocks)
        self.latent_channels, self.num_latents = c.channels[p], c.latents[p]
        context.latent_channels, context.num_latents = self.latent_channels, self.num_latents
        context.encoder_config = c.model_dump(mode="json")

    # -- input ---------------------------------------------------------------------------------------------
    def segments(self, byte_array: ByteArray) -> tuple[Segment, ...]:
        """The input's modality spans; an unsegmented input is the model's one modality."""
        segments = byte_array.segments
        if not segments:
            if len(self.modalities) != 1:
                raise ByteArrayError(f"this HiP embeds the modalities {sorted(self.modalities)}: give the input "
                                     "segments naming which span is which")
            segments = (Segment(next(iter(self.modalities)), 0, byte_array.index_shape),)
        for seg in segments:
            if seg.modality not in self.modalities:
                raise ByteArrayError(f"input modality {seg.modality!r} is not one this HiP embeds "
                                     f"({', '.join(sorted(self.modalities))})")
            shape, channels = self.modalities[seg.modality]
            if seg.length != math.prod(shape) or channels > byte_array.channels:
                raise ByteArrayError(f"modality {seg.modality!r}: this HiP was built for {math.prod(shape)} "
                                     f"elements of {channels} channels, got {seg.length} of {byte_array.channels}")
        if len([s for s in segments if s.modality not in self.class_modalities]) > self.max_slots:
            raise ByteArrayError(f"this HiP takes at most {self.max_slots} modalities in one input")
        return segments

    @property
    def max_slots(self) -> int:
        if self.position_linear is not None:
            return len(self.position_linear)
        return self.config.max_modalities_per_input or len(self.embed)

    def position_table(self, modality: str, slot: int) -> torch.Tensor:
        """[M_m, E]: the learned table, projected by the slot's `position_encoding_linear` when there is one
        (None with positions = "none")."""
        if modality not in self.positions:
            return None
        table = self.positions[modality]
        return self.position_linear[slot](table) if self.position_linear is not None else table

    # -- forward -------------------------------------------------------------------------------------------
    def forward(self, byte_array: ByteArray) -> Encoded:
        c = self.config
        data = byte_array.data  # [B, M, C]
        segments = self.segments(byte_array)
        main = [s for s in segments if s.modality not in self.class_modalities]
        tokens, queries, spans, offset = [], [], [], 0
        for slot, seg in enumerate(main):
            channels = self.modalities[seg.modality][1]
            x = data[:, seg.start:seg.start + seg.length, :channels]  # [B, M_m, C_m]
            pos = self.position_table(seg.modality, slot)  # [M_m, E]
            embedded = self.embed[seg.modality](x)  # [B, M_m, E]
            tokens.append(embedded if pos is None else embedded + pos)
            queries.append(pos if pos is not None else embedded.new_zeros(seg.length, embedded.shape[-1]))
            spans.append((offset, seg.index_shape))
            offset += seg.length
        x = torch.cat(tokens, dim=1) if len(tokens) > 1 else tokens[0]  # [B, M', E], M' = non-class elements
        query = torch.cat(queries, dim=0) if len(queries) > 1 else queries[0]  # [M', E]
        layout = build_layout(spans, c.num_groups[0], c.order, self._point_orders(byte_array, main))
        z = layout.group(x)  # [B, G0, n, E]
        query = layout.group(query[None])  # [B|1, G0, n, E]
        index = layout.index_on(data.device)  # [B|1, G0, n]: element ids (into M'), -1 = padding
        index = index if index.dim() == 3 else index[None]
        if c.mask_ratio > 0:
            z, query, index = self._mask(z, query, index)  # [B, G0, n_keep, E], [B, G0, Q, E], [B, G0, Q]
        levels = []
        for i, block in enumerate(self.blocks):
            if i > 0:
                z = regroup(z, c.num_groups[i], c.regroup)  # [B, G_i, G_{i-1} N_{i-1} / G_i, D_{i-1}]
            if i == self.processor_index and self.class_modalities:
                z = torch.cat([z, self._class_tokens(data, segments)], dim=2)  # [B, 1, N + L, D_{p-1}]
            z = block(z)  # [B, G_i, N_i, D_i]
            levels.append(z)
        state = {"layout": layout, "main": main, "queries": query, "query_index": index,
                 "masked": c.mask_ratio > 0, "segments": segments,
                 "class_queries": {s.modality: self.class_positions[s.modality] for s in segments
                                   if s.modality in self.class_modalities}}
        return Encoded(latents=z[:, 0], levels=levels, state=state)  # latents [B, N_p, D_p]

    def _point_orders(self, byte_array: ByteArray, main) -> list[torch.Tensor] | None:
        """With order = morton and explicit positions ([1, M, d]: permuted pixels, a fixed point set; [B, M, d]:
        point clouds), the Z-order of those coordinates replaces the grid's (per example for [B, M, d]);
        recomputed only when the positions tensor changes."""
        pos = byte_array.positions
        if self.config.order != "morton" or pos is None:
            return None
        key = (id(pos), pos._version, tuple(pos.shape))
        if getattr(self, "_orders_key", None) != key:
            shared = pos.shape[0] == 1
            coords = pos[0] if shared else pos  # [M, d] or [B, M, d]
            self._orders = [point_order(coords[..., s.start:s.start + s.length, :]) for s in main]  # [(B,) M_m]
            self._orders_key = key
        return self._orders

    def _class_tokens(self, data: torch.Tensor, segments) -> torch.Tensor:
        out = []
        for seg in segments:
            if seg.modality in self.class_modalities:
                channels = self.modalities[seg.modality][1]
                x = data[:, seg.start:seg.start + seg.length, :channels]  # [B, L, C_m]
                out.append(self.class_embed[seg.modality](x) + self.class_positions[seg.modality])  # [B, L, W]
        return torch.cat(out, dim=1)[:, None]  # [B, 1, L, W]

    def _mask(self, z: torch.Tensor, query: torch.Tensor, index: torch.Tensor):
        """Hide a random `mask_ratio` of every group's real elements (the same count in every group, so groups
        stay rectangular): visible ones go on to the encoder, hidden ones become the decoder's queries.

        Training draws from torch's global generator (seeded by train.seed, saved in checkpoints); evaluation
        from a fixed seed, so every evaluation scores the same masks."""
        b, g, n, e = z.shape
        real = index[0] >= 0  # [G, n]
        hidden = int(self.config.mask_ratio * int(real.sum(1).min()))
        if hidden == 0:
            raise ValueError(f"mask_ratio {self.config.mask_ratio} hides no element of groups of {n}")
        gen = None
        if not self.training:
            gen = torch.Generator(device=z.device if z.device.type != "meta" else "cpu").manual_seed(0)
        scores = torch.rand(b, g, n, generator=gen, device=gen.device if gen is not None else z.device)
        scores = scores.to(z.device).masked_fill(~real, -1.0)  # padding is never hidden (nor reconstructed)
        order = scores.argsort(dim=-1)  # [B, G, n]
        keep, hide = order[..., :n - hidden], order[..., n - hidden:]  # [B, G, n - h], [B, G, h]
        z = torch.gather(z, 2, keep[..., None].expand(-1, -1, -1, e))  # [B, G, n - h, E]
        query = torch.gather(query.expand(b, -1, -1, -1), 2, hide[..., None].expand(-1, -1, -1, e))  # [B, G, h, E]
        return z, query, torch.gather(index.expand(b, -1, -1), 2, hide)  # ids [B, G, h]
