"""The Perceiver encoder: learned latents that cross-attend to the input, then latent self-attention blocks.

Covers the original Perceiver (repeated cross-attends with configurable sharing) and Perceiver IO (one
cross-attend, one latent block applied num_blocks times). Cost: O(M N) per cross-attend + O(L N^2) for the
latent transformer, so the input size M and the depth L are decoupled.
"""

from __future__ import annotations

import torch
from torch import nn

from ...byte_array import ByteArray
from ...config.encoders import PerceiverEncoderConfig
from ...interfaces import BuildContext, Encoded, Encoder
from ..input_stream import InputStream
from ..layers import kernels
from ..layers.attention import CrossAttention, LatentBlock, trunc_normal_
from ..layers.residual import residual_stream


def sharing_plan(count: int, share: bool, first_unshared: bool) -> list[int]:
    """Which unique module serves each of `count` uses: e.g. (4, True, True) -> [0, 1, 1, 1]."""
    if not share:
        return list(range(count))
    if first_unshared and count > 1:
        return [0] + [1] * (count - 1)
    return [0] * count


class PerceiverEncoder(Encoder):
    def no_weight_decay(self) -> set[str]:
        """The learned latent array is not decayed (a learned input, like an embedding)."""
        return {"latents"}

    def __init__(self, config: PerceiverEncoderConfig, context: BuildContext):
        super().__init__()
        c = config
        in_channels = context.require("input_channels", "the perceiver encoder")
        self.config = c
        self.num_latents, self.latent_channels = c.num_latents, c.latent_channels
        self.latents = nn.Parameter(torch.empty(c.num_latents, c.latent_channels))  # [N, D]
        trunc_normal_(self.latents, std=c.latent_init_scale)

        qk = c.cross_attend_qk_channels or (in_channels if c.cross_attention_shape_for_attn == "kv"
                                            else c.latent_channels)
        self.cross_plan = sharing_plan(c.num_cross_attends, c.share_cross_attends, c.first_cross_attend_unshared)
        self.cross_attends = nn.ModuleList(
            CrossAttention(c.latent_channels, in_channels, num_heads=c.cross_attend_heads, qk_channels=qk,
                           v_channels=c.cross_attend_v_channels, widening=c.cross_attend_widening,
                           dropout=c.dropout, use_query_residual=c.use_query_residual, act=c.activation)
            for _ in range(max(self.cross_plan) + 1))
        self.block_plan = sharing_plan(c.num_blocks, c.share_blocks, c.first_block_unshared)
        self.blocks = nn.ModuleList(
            LatentBlock(c.self_attends_per_block, c.latent_channels, num_heads=c.self_attend_heads,
                        qk_channels=c.self_attend_qk_channels, v_channels=c.self_attend_v_channels,
                        widening=c.self_attend_widening, dropout=c.dropout, act=c.activation)
            for _ in range(max(self.block_plan) + 1))
        context.latent_channels, context.num_latents = c.latent_channels, c.num_latents

    def forward(self, byte_array: ByteArray) -> Encoded:
        x, mask = byte_array.data, byte_array.mask  # [B, M, C], [B, M]
        latents = self._latents(x.shape[0])  # [B, N, D]
        for i, block_index in enumerate(self.block_plan):
            if i < len(self.cross_plan):
                latents = self._cross_attend(self.cross_attends[self.cross_plan[i]], latents, x, mask)  # [B, N, D]
            latents = self._run(self.blocks[block_index], latents)  # [B, N, D]
        return Encoded(latents=latents, inputs=byte_array)

    def streams(self, num_elements: int) -> bool:
        return True  # whole inputs too: the cross-attend concatenates the position features itself

    def forward_stream(self, stream: InputStream) -> Encoded:
        """Inputs over the chunk threshold are read chunk by chunk (position features computed per chunk; with
        gradients through the split-key cross-attend, whose backward recomputes each chunk); otherwise each
        cross-attend gets the data and the position features and concatenates them inside its block (fused there
        when compiled)."""
        latents = self._latents(stream.batch_size)  # [B, N, D]
        chunked, chunk = self._chunking(stream.num_elements)
        data, features = (None, None) if chunked else stream.data_and_features()  # [B, M, C], [B|1, M, P]
        for i, block_index in enumerate(self.block_plan):
            if i < len(self.cross_plan):
                block = self.cross_attends[self.cross_plan[i]]
                if chunked:
                    latents = kernels.chunked_cross_attend(block, latents, stream, chunk=chunk)  # [B, N, D]
                else:
                    latents = self._cross_attend(block, latents, data, stream.mask, features)  # [B, N, D]
            latents = self._run(self.blocks[block_index], latents)  # [B, N, D]
        return Encoded(latents=latents, inputs=stream.base)

    def _chunking(self, num_elements: int) -> tuple[bool, int | None]:
        """(whether the cross-attends run over chunks of keys, the configured chunk or None for the policy's).
        In inference: `cross_attend_chunk_keys`; with gradients: `cross_attend_train_chunk_keys` (the split-key
        path; not taken automatically with dropout, which it does not implement)."""
        c = self.config
        if not torch.is_grad_enabled():
            return kernels.should_chunk(num_elements, chunk=c.cross_attend_chunk_keys), c.cross_attend_chunk_keys
        if c.cross_attend_train_chunk_keys is None and c.dropout > 0 and self.training:
            return False, None
        return (kernels.should_chunk(num_elements, chunk=c.cross_attend_train_chunk_keys, grad=True),
                c.cross_attend_train_chunk_keys)

    def _latents(self, batch: int) -> torch.Tensor:
        """The latent array [B, N, D] that starts the residual stream: bf16 from here on with residual_dtype =
        "bfloat16" under bf16 autocast (every residual add then stays bf16; layers/residual.py)."""
        return residual_stream(self.latents.unsqueeze(0).expand(batch, -1, -1), self.config.residual_dtype)

    def _checkpointing(self) -> bool:
        return self.config.activation_checkpointing and self.training and torch.is_grad_enabled()

    def _run(self, module: nn.Module, *args):
        if self._checkpointing():
            from torch.utils.checkpoint import checkpoint

            return checkpoint(module, *args, use_reentrant=False)
        return module(*args)

    def _cross_attend(self, block: CrossAttention, latents, x, mask, features=None):
        """latents [B, N, D] attend to x [B, M, C] (+ features [B|1, M, P] concatenated inside the block); chunked
        over M when the config or the policy says so (`_chunking`; forward_stream decides for streamed inputs).

        With activation checkpointing the batch is recomputed in slices of `checkpoint_slice` examples: a
        cross-attend's activations are [B, M, C]- and [B, N, M]-sized (about 0.25 GB per 224^2 image in bf16),
        so recomputing the whole batch at once would need them all again in the backward.
        """
        if features is None:
            chunked, chunk = self._chunking(x.shape[1])
            if chunked:  # recomputes per chunk itself: no activation checkpointing around it
                return kernels.chunked_cross_attend(block, latents, x, mask, chunk)  # [B, N, D]
        size = self.config.checkpoint_slice
        if not self._checkpointing() or x.shape[0] <= size:
            return self._run(block, latents, x, mask, features)

        def part(t, i):  # a slice of the batch; shared [1, M, P] features are passed whole
            return t if t is None or t.shape[0] != x.shape[0] else t[i:i + size]

        outs = [self._run(block, latents[i:i + size], x[i:i + size], part(mask, i), part(features, i))
                for i in range(0, x.shape[0], size)]  # each [b, N, D]
        return torch.cat(outs)  # [B, N, D]
