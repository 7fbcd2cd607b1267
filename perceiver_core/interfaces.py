"""The interfaces a component implements. Read this file and `hookspecs.py` to know the extension surface.

Data flow (shapes for one batch):

    raw example --Preprocessor.prepare--> tensors --collate--> batch
    batch --Preprocessor.forward--> ByteArray data [B, M, C]
          --PositionEncoding--> [B|1, M, P], concatenated: [B, M, C+P]
          --Encoder--> Encoded.latents [B, N, D]
          --Decoder--> outputs [B, O, K]
          --Task--> loss, metrics, predictions

Every component is built by a factory `factory(config, context)` from its validated pydantic config and the
`BuildContext`, which carries what earlier components determined (channels, index shape, outputs).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import torch
from torch import nn

from .byte_array import ByteArray

if TYPE_CHECKING:
    from .model.input_stream import InputStream


@dataclass
class BuildContext:
    """What a factory may know when it builds its component, filled in pipeline order.

    dataset: facts about the raw examples (e.g. "image_shape": (H, W, C), "num_classes": 10).
    index_shape / input_channels: of one example's byte array, set by the preprocessor.
    position_channels: P, set by the position encoding. latent_channels / num_latents: set by the encoder.
    num_outputs: K, set by the task (e.g. the number of classes).
    encoder_config: the encoder's resolved config as JSON, for a decoder that mirrors its encoder (HiP's U-Net).
    inputs: for a pipeline of several inputs, each input's facts by name (index_shape, channels = C,
    position_channels = P, width = the packed width); index_shape and input_channels are then the packed array's.
    """

    dataset: dict[str, Any] = field(default_factory=dict)
    index_shape: tuple[int, ...] | None = None
    input_channels: int | None = None
    position_channels: int | None = None
    latent_channels: int | None = None
    num_latents: int | None = None
    num_outputs: int | None = None
    encoder_config: dict[str, Any] | None = None
    inputs: dict[str, dict[str, Any]] | None = None

    def require(self, name: str, who: str):
        value = getattr(self, name)
        if value is None:
            raise ValueError(f"{who} needs {name}, which no earlier component of the pipeline provided")
        return value

    def to_json(self) -> dict[str, Any]:
        out = {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}
        if self.inputs is None:
            out.pop("inputs")  # one input: the context of earlier versions, unchanged
        else:
            out["inputs"] = {name: {k: (list(v) if isinstance(v, tuple) else v) for k, v in facts.items()}
                             for name, facts in self.inputs.items()}
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "BuildContext":
        ctx = cls(**data)
        if ctx.index_shape is not None:
            ctx.index_shape = tuple(ctx.index_shape)
        return ctx


class Preprocessor(nn.Module, abc.ABC):
    """Raw examples -> ByteArray, in two halves.

    `prepare(example)` has no parameters and runs in data workers (decode, patching, normalisation); it must be
    picklable and deterministic given its inputs. `forward(batch)` is the learned part (conv, linear, embeddings;
    may be the identity) and returns the ByteArray the encoder sees.
    """

    output_channels: int
    index_shape: tuple[int, ...]
    #: The batch key a bare tensor stands for when a user calls the model with one (`model(images)`), e.g.
    #: "image" for image.pixels; None when the model needs a mapping (then the call says what it expects).
    tensor_input: str | None = None

    @abc.abstractmethod
    def prepare(self, example: Mapping[str, Any]) -> dict[str, Any]:
        """One raw example -> a dict of tensors (and Python numbers) that the default collate can stack."""

    @abc.abstractmethod
    def forward(self, batch: Mapping[str, torch.Tensor]) -> ByteArray:
        """A collated batch -> ByteArray data [B, M, C]."""

    def augment(self, example: Mapping[str, Any], generator: torch.Generator) -> Mapping[str, Any]:
        """Randomly transform a raw training example (identity by default); draw only from `generator`."""
        return example

    def read_input(self, path: str) -> dict[str, Any]:
        """Read one raw example from a file for `perceiver predict` (override per modality)."""
        raise NotImplementedError(f"{type(self).__name__} cannot read input files")

    def element_labels(self, prepared: Mapping[str, Any]) -> list[str] | None:
        """What each input element of one prepared example is, as short strings for pictures (`perceiver
        explain` writes them over the attention: text bytes, say); "" for padding. None: nothing to write."""
        return None


class PositionEncoding(nn.Module, abc.ABC):
    """ByteArray -> position features [B|1, M, P] that the pipeline concatenates to the data."""

    #: True when `forward_range` computes a range of elements without the whole input's features (then very
    #: large inputs are streamed to the encoder chunk by chunk; see `InputStream`).
    computes_ranges: bool = False

    @abc.abstractmethod
    def num_channels(self, index_dims: int) -> int:
        """P for inputs with `index_dims` dimensions: known before the first batch."""

    @abc.abstractmethod
    def forward(self, byte_array: ByteArray) -> torch.Tensor | None:
        """[B|1, M, P] features, or None when there are none."""

    def forward_range(self, byte_array: ByteArray, start: int, stop: int) -> torch.Tensor | None:
        """The features of elements [start, stop) only: [B|1, stop - start, P]. Override it (and set
        `computes_ranges`) when they can be computed without the rest; this default computes all and slices."""
        features = self(byte_array)
        return None if features is None else features[:, start:stop]


@dataclass
class Encoded:
    """What an encoder hands to a decoder: latents [B, N, D] plus what some decoders need.

    levels: per-level outputs (HiP skip connections); inputs: the byte array (queries built from inputs);
    state: what an encoder hands to the decoder made for it and nobody else reads (HiP: how the input was
    grouped and masked, and the position queries of the elements to reconstruct).
    """

    latents: torch.Tensor
    inputs: ByteArray | None = None
    levels: list[torch.Tensor] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)


class Encoder(nn.Module, abc.ABC):
    latent_channels: int
    num_latents: int

    @abc.abstractmethod
    def forward(self, byte_array: ByteArray) -> Encoded:
        """ByteArray [B, M, C] -> Encoded with latents [B, N, D]."""

    def streams(self, num_elements: int) -> bool:
        """Whether an input of `num_elements` should reach `forward_stream` (data and position features apart,
        e.g. chunk by chunk) rather than `forward` (one materialised array). Asked when the decoder reads no
        inputs; encoders that cannot stream keep this default."""
        return False

    def forward_stream(self, stream: "InputStream") -> Encoded:
        """The same result as `forward(stream.materialise())`, reading the input through the stream."""
        raise NotImplementedError(f"{type(self).__name__} does not stream its input")


class QueryBuilder(nn.Module, abc.ABC):
    """Builds decoder queries [B, O, E] (and an optional mask [B, O]) from the input and the latents."""

    num_channels: int

    @abc.abstractmethod
    def forward(self, byte_array: ByteArray, encoded: Encoded) -> tuple[torch.Tensor, torch.Tensor | None]:
        ...


class Decoder(nn.Module, abc.ABC):
    #: False when forward never reads `byte_array` (its queries are learned): then the input may be streamed to
    #: the encoder and is never materialised whole.
    reads_inputs: bool = True

    @abc.abstractmethod
    def forward(self, encoded: Encoded, byte_array: ByteArray) -> "Outputs":
        """Latents -> outputs [B, O, K] (or named tensors, see `Outputs`)."""

    def tie_to(self, preprocessor: Preprocessor) -> None:
        """Called once the pipeline is built: share weights with the preprocessor (e.g. output logits tied to
        the input embedding). Most decoders share nothing."""


#: What a decoder returns and a task reads: a tensor [B, O, K], or named tensors when the task needs more than one
#: (HiP's masked auto-encoding: the reconstruction, which elements were hidden, and their targets). Only the
#: decoder and the task made for it look inside.
Outputs = torch.Tensor | Mapping[str, torch.Tensor]


class Task(nn.Module, abc.ABC):
    """Loss, metrics and postprocessing for one kind of output."""

    num_outputs: int
    #: batch keys the task reads (targets); the data pipeline keeps them
    target_keys: Sequence[str] = ()
    #: what the `loss` metric is, for people: the loss axis of metrics.png (e.g. "cross-entropy", "MSE", "EPE")
    loss_name: str = "loss"

    @abc.abstractmethod
    def loss(self, outputs: torch.Tensor, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Scalar training loss."""

    @abc.abstractmethod
    def metrics(self, outputs: torch.Tensor, batch: Mapping[str, torch.Tensor]) -> dict[str, tuple[float, int]]:
        """Per-batch (sum, count) pairs; the caller averages them over an epoch (loss included)."""

    def logits(self, outputs: torch.Tensor) -> torch.Tensor:
        """The decoder's outputs in the task's natural shape (a classifier: [B, O=1, K] -> [B, K]); the default
        returns them unchanged ([B, O, K])."""
        return outputs

    @abc.abstractmethod
    def postprocess(self, outputs: torch.Tensor, batch: Mapping[str, torch.Tensor] | None = None) -> list[Any]:
        """Outputs [B, O, K] -> one prediction per example (labels, bytes, images).

        `batch` is the collated input when there is one: some predictions depend on it (MLM fills the masked
        positions of its input); tasks that do not need it ignore it.
        """

    def predict(self, model: Any, batch: Mapping[str, torch.Tensor]) -> list[Any]:
        """Predictions for a collated batch (`Pipeline.predict`). Override to run the model another way, e.g. in
        overlapping tiles for frames larger than the training size; by default one forward pass."""
        return self.postprocess(model(batch), batch)

    def save_prediction(self, prediction: Any, out_dir: Any, stem: str) -> Any:
        """What `perceiver predict` prints for one prediction. Dense predictions (flow fields, images) override it
        to write files into `out_dir` (a pathlib.Path) named after `stem` and return a summary with their paths;
        by default nothing is written and the prediction is printed as it is."""
        return prediction


class Dataset(abc.ABC):
    """A named source of raw examples with splits; `examples(split)` supports len() and indexing."""

    splits: Sequence[str] = ("train", "test")

    @abc.abstractmethod
    def info(self) -> dict[str, Any]:
        """Facts about the examples (e.g. "image_shape", "num_classes"), known without loading them all."""

    @abc.abstractmethod
    def examples(self, split: str) -> Sequence[Mapping[str, Any]]:
        ...

    def augment(self, example: Mapping[str, Any], generator: torch.Generator) -> Mapping[str, Any]:
        """Randomly transform a raw training example before the preprocessor's `augment` (identity by default):
        the dataset's own augmentations (crops, flips, MixUp). Draw only from `generator`."""
        return example


class Backend(abc.ABC):
    """A hardware target. `available()` must be cheap and never raise: it returns (ok, reason)."""

    name: str
    distributed_backend: str = "gloo"

    @abc.abstractmethod
    def available(self) -> tuple[bool, str]:
        ...

    @abc.abstractmethod
    def device(self) -> torch.device:
        ...

    def autocast_dtype(self, precision: str) -> torch.dtype | None:
        """The autocast dtype for a requested precision ("auto", "fp32", "bf16", "fp16"); None = no autocast."""
        return {"fp32": None, "auto": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]

    def setup(self) -> None:
        """Called once before training or inference (threads, kernel flags)."""

    def synchronize(self) -> None:
        """Wait for queued device work (for timing)."""

    def memory_stats(self) -> dict[str, int]:
        """Peak and current memory in bytes, where the device reports them."""
        return {}

    def reset_peak_memory(self) -> None:
        """Start a new peak for `memory_stats()` (for benchmarks), where the device tracks one."""

    def should_compile(self, requested: bool) -> bool:
        return requested

    def compile_options(self) -> dict[str, Any]:
        """Keyword arguments for `torch.compile` on this device (e.g. {"mode": "max-autotune-no-cudagraphs"})."""
        return {}

    def attention_policy(self):
        """The `perceiver_core.model.layers.kernels.AttentionPolicy` for this device (head-dim padding, SDPA kernels
        per shape, chunked cross-attends); `setup()` installs it with `kernels.set_policy`."""
        from .model.layers.kernels import AttentionPolicy

        return AttentionPolicy()

    def pin_memory(self) -> bool:
        return False
