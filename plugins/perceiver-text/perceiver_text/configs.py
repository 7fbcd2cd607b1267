"""Config models of the text components (pydantic only: importing them does not import torch)."""

from typing import Literal

from pydantic import Field, model_validator

from perceiver_core.config import ComponentConfig, DataConfig, FileDataConfig, Size

DEFAULT_MODULES = (
    "argparse", "ast", "asyncio.events", "base64", "bisect", "calendar", "collections", "configparser",
    "contextlib", "copy", "csv", "dataclasses", "datetime", "difflib", "doctest", "email.message", "enum",
    "fractions", "ftplib", "functools", "gettext", "glob", "heapq", "http.client", "http.cookiejar", "imaplib",
    "inspect", "ipaddress", "json", "locale", "logging", "mailbox", "optparse", "os", "pathlib", "pickle",
    "pprint", "pydoc", "queue", "random", "shutil", "smtplib", "socket", "statistics", "string", "subprocess",
    "tarfile", "tempfile", "textwrap", "threading", "tokenize", "traceback", "turtle", "typing", "unittest.case",
    "urllib.parse", "urllib.request", "uuid", "warnings", "weakref", "zipfile",
)


class BytesConfig(ComponentConfig):
    """Text as UTF-8 bytes: ids 0..5 are [PAD] [BOS] [EOS] [MASK] [CLS] [SEP], byte b is id b + 6 (HF's
    PerceiverTokenizer). Each example is [CLS] bytes [SEP], truncated or padded to max_length."""

    max_length: int = Field(2048, ge=3, description="bytes per example, special tokens included (HF: "
                                                    "max_position_embeddings)")
    channels: Size = Field(768, description="channels of the byte and position embeddings (HF: d_model)")
    mask_probability: float = Field(0.15, ge=0, lt=1, description="fraction of the real bytes masked for MLM: "
                                                                  "random per epoch in training, fixed per text "
                                                                  "in evaluation; 0: no masking")
    span_length: Size = Field(1, description="masked bytes come in runs of this length (1: single bytes)")
    add_special_tokens: bool = Field(True, description="wrap each example in [CLS] ... [SEP]")
    learned_positions: bool = Field(True, description="add a learned position embedding (HF); false: none, "
                                                      "e.g. to concatenate Fourier positions instead (position = "
                                                      "{ use = \"fourier\", max_resolution = [max_length] })")
    init_scale: float = Field(0.02, gt=0, description="std of the embeddings' initialisation (HF: 0.02; a small "
                                                      "model trained briefly learns faster with ~1, since the "
                                                      "output logits are tied to this embedding)")
    context_kernel: Size = Field(1, description="odd width of a 1-D convolution mixing each byte's embedding "
                                                     "with its neighbours' (the text analogue of image.conv); "
                                                     "1: none (HF)")

    @model_validator(mode="after")
    def _check_kernel(self):
        if self.context_kernel % 2 == 0:
            raise ValueError(f"context_kernel must be odd (got {self.context_kernel}) so positions stay aligned")
        return self


class MaskedLMDecoderConfig(ComponentConfig):
    """HF's MLM decoder: learned queries (one per byte position) cross-attend to the latents; the outputs are
    multiplied by the transposed input byte embedding, plus a bias (tied weights)."""

    num_queries: Size | None = Field(None, description="output positions (default: the preprocessor's "
                                                            "max_length)")
    query: Literal["learned", "fourier"] = Field(
        "learned", description="learned: one trainable query per position (HF); fourier: Fourier features of the "
                               "output positions projected to the embedding channels (no per-position parameters)")
    num_bands: Size = Field(32, description="fourier queries: frequency bands")
    concat_input: bool = Field(False, description="prepend each position's preprocessed input to its query "
                                                  "(flow-style queries; needs one query per input byte) and "
                                                  "project the decoded queries back to the embedding channels")
    num_heads: Size = Field(8, description="heads of the decoder cross-attend")
    qk_channels: int | None = Field(256, ge=1, description="query/key channels (HF: 8 * 32)")
    v_channels: Size | None = Field(None, description="value channels (default: the embedding channels)")
    widening: Size = Field(1, description="MLP widening factor")
    use_query_residual: bool = Field(False, description="add the queries back after the cross-attend")
    dropout: float = Field(0.0, ge=0, lt=1, description="dropout")


class MaskedLMTaskConfig(ComponentConfig):
    """Cross-entropy over the 262 byte ids, on masked positions only; accuracy on masked bytes."""

    label_smoothing: float = Field(0.0, ge=0, lt=1, description="label smoothing of the cross-entropy")


class DocstringsConfig(DataConfig):
    """Paragraphs of the Python standard library's docstrings, cut at sentence ends into chunks."""

    modules: tuple[str, ...] = Field(DEFAULT_MODULES, description="standard-library modules to read (offline)")
    max_chars: int = Field(120, ge=16, description="longest chunk in characters (cut at sentence or word ends)")
    min_chars: Size = Field(32, description="shorter chunks are dropped")
    test_every: int = Field(10, ge=2, description="every N-th chunk (by a hash of its text) goes to 'test'")

    @model_validator(mode="after")
    def _check(self):
        if self.min_chars > self.max_chars:
            raise ValueError(f"min_chars ({self.min_chars}) exceeds max_chars ({self.max_chars})")
        return self


class TextFilesConfig(FileDataConfig):
    """Your own text: .txt/.md files in class folders (or loose, with label_column = ""), a manifest, or a JSON
    lines / CSV / Parquet table with a text column and an optional label column."""

    text_column: str = Field("text", description="table layout: the column holding each example's text")
    max_bytes: int = Field(1 << 20, ge=1, description="read at most this many bytes of each file or text")
    encoding_errors: Literal["strict", "replace"] = Field(
        "strict", description="text that is not UTF-8: strict (an unreadable file) or replace the bad bytes")
