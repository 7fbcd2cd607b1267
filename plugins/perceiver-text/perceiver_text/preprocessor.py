"""`text.bytes`: text -> UTF-8 byte ids -> byte embedding + learned position embedding (added, as HF's
PerceiverTextPreprocessor), with a padding mask.

prepare (data workers): {"text": str} -> {"input_ids" [L], "attention_mask" [L] bool, "labels" [L]}, L = max_length;
with mask_probability > 0, spans of bytes are replaced by [MASK] and their ids become the labels. Training draws a
new mask per epoch (augment gives a seed); evaluation masks every text the same way (seeded by its CRC-32). A text
with explicit "[MASK]" tokens is left as written (for `perceiver predict`).
forward: batch {"input_ids" [B, L], "attention_mask" [B, L]} -> ByteArray [B, L, channels] with mask [B, L].
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from perceiver_core import BuildContext, ByteArray, Preprocessor, read_bounded
from perceiver_core.errors import UserError

from . import tokenizer
from .configs import BytesConfig
from .masking import IGNORE, mask_spans


class BytePreprocessor(Preprocessor):
    def __init__(self, config: BytesConfig, context: BuildContext):
        super().__init__()
        self.config = config
        self.max_length = config.max_length
        self.index_shape = (config.max_length,)
        self.output_channels = config.channels
        self.embeddings = nn.Embedding(tokenizer.VOCAB_SIZE, config.channels)  # [262, C]
        self.position_embeddings = (nn.Embedding(config.max_length, config.channels)  # [L_max, C]
                                    if config.learned_positions else None)
        k = config.context_kernel
        # [B, C, L] -> [B, C, L]: each byte sees its k - 1 neighbours (None: HF's plain embedding)
        self.context_conv = nn.Conv1d(config.channels, config.channels, k, padding=k // 2) if k > 1 else None
        for emb in filter(None, (self.embeddings, self.position_embeddings)):
            nn.init.trunc_normal_(emb.weight, std=config.init_scale, a=-2 * config.init_scale,
                                  b=2 * config.init_scale)

    # -- data-worker half ------------------------------------------------------------------------------------
    def augment(self, example: Mapping[str, Any], generator: torch.Generator) -> Mapping[str, Any]:
        return {**example, "mask_seed": int(torch.randint(0, 2**31 - 1, (1,), generator=generator))}

    def prepare(self, example: Mapping[str, Any]) -> dict[str, Any]:
        text = example["text"]
        if not isinstance(text, str):
            raise ValueError(f"text.bytes needs example['text'] to be a string, got {type(text).__name__}")
        ids = tokenizer.encode(text, add_special_tokens=self.config.add_special_tokens)
        if len(ids) > self.max_length:  # truncate, keeping the closing [SEP]
            ids = ids[:self.max_length - 1] + ids[-1:] if self.config.add_special_tokens else ids[:self.max_length]
        ids_t = torch.tensor(ids, dtype=torch.long)  # [n]
        labels = torch.full_like(ids_t, IGNORE)
        if self.config.mask_probability > 0 and not bool((ids_t == tokenizer.MASK).any()):
            seed = example.get("mask_seed", zlib.crc32(text.encode("utf-8")))
            g = torch.Generator().manual_seed(int(seed))
            ids_t, labels = mask_spans(ids_t, self.config.mask_probability, self.config.span_length, g)
        pad = self.max_length - ids_t.numel()
        return {"input_ids": torch.cat([ids_t, torch.full((pad,), tokenizer.PAD, dtype=torch.long)]),  # [L]
                "attention_mask": torch.arange(self.max_length) < ids_t.numel(),  # [L] bool
                "labels": torch.cat([labels, torch.full((pad,), IGNORE, dtype=torch.long)])}  # [L]

    def read_input(self, path: str) -> dict[str, Any]:
        """A UTF-8 text file; write [MASK] for each byte to fill in."""
        p = Path(path)
        if not p.is_file():
            raise UserError(f"input file {path!r} does not exist")
        try:  # the size is checked before reading (PERCEIVER_MAX_INPUT_BYTES)
            return {"text": read_bounded(p).decode("utf-8").rstrip("\n")}
        except UnicodeDecodeError as exc:
            raise UserError(f"{path}: not UTF-8 text ({exc})") from None

    # -- learned half ----------------------------------------------------------------------------------------
    def forward(self, batch: Mapping[str, torch.Tensor]) -> ByteArray:
        ids = batch["input_ids"]  # [B, L]
        if ids.dim() != 2:
            raise ValueError(f"batch['input_ids'] must be [B, L], got {list(ids.shape)}")
        length = ids.shape[1]
        if length > self.max_length:
            raise ValueError(f"text.bytes was built for at most {self.max_length} bytes, got {length}")
        data = self.embeddings(ids)  # [B, L, C]
        if self.context_conv is not None:
            data = data + self.context_conv(data.transpose(1, 2)).transpose(1, 2)  # [B, L, C]
        if self.position_embeddings is not None:
            data = data + self.position_embeddings(torch.arange(length, device=ids.device))  # + [L, C]
        mask = batch.get("attention_mask")
        if mask is not None:
            mask = mask.to(device=ids.device, dtype=torch.bool)  # [B, L], True = a real byte
        return ByteArray(data, (length,), mask=mask, modality="text")
