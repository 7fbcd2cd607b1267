"""`Pipeline`: preprocessor -> position -> encoder -> decoder -> task, built from a validated `PipelineSpec`.

It is what training, evaluation, prediction, benchmarks and checkpoints see: one `nn.Module` whose forward
takes a collated batch and returns the decoder's outputs [B, O, K].

    model = perceiver_core.from_checkpoint("runs/digits")     # a run folder or its model.safetensors
    model.predict([{"image": array_8x8}])                     # raw examples -> [{"label": 3, "confidence": ..}]
    model.predict_files(["a.png", "b.npy"])                   # files the preprocessor reads
    model.logits(batch)                                       # the task's natural shape: a classifier's [B, K]
    model(images)                                             # a bare tensor, for single-input models

A pipeline has one input or several (`PipelineSpec.inputs`): each input's preprocessor and position encoding
make its own byte array, and `Packing` makes them the one array the encoder sees (for one input with nothing to
pad or mask: the input as it is). One input and several go through the same code: `stream(batch)`.
"""

from __future__ import annotations

import math
import os
from typing import Any, Mapping, Sequence

import torch
from torch import nn

from ..byte_array import ByteArray
from ..errors import UserError
from ..interfaces import BuildContext, Dataset, Decoder, Encoder, PositionEncoding, Preprocessor, Task
from ..registry.spec import ComponentChoice, PipelineSpec
from .input_stream import InputStream
from .inputs import MultiInput
from .packing import Packing


class Pipeline(nn.Module):
    """preprocessor / position: the one input's, or for several inputs a `MultiInput` and an `nn.ModuleDict` of
    position encodings by input name; packing: how the inputs become one array (default: one input as it is)."""

    def __init__(self, spec: PipelineSpec, context: BuildContext, preprocessor: Preprocessor,
                 position: PositionEncoding | nn.ModuleDict, encoder: Encoder, decoder: Decoder, task: Task,
                 packing: Packing | None = None):
        super().__init__()
        self.spec, self.context = spec, context
        self.preprocessor, self.position, self.encoder = preprocessor, position, encoder
        self.decoder, self.task = decoder, task
        self.packing = packing if packing is not None else Packing({next(iter(spec.inputs)): 0})

    def input_parts(self, batch: Mapping[str, torch.Tensor]) -> list[tuple[str, ByteArray, PositionEncoding]]:
        """(input name, its preprocessor's array [B, M_i, C_i], its position encoding), in packing order."""
        if isinstance(self.preprocessor, MultiInput):
            return [(name, array, self.position[name]) for name, array in self.preprocessor.forward_parts(batch)]
        return [(self.packing.names[0], self.preprocessor(batch), self.position)]

    def stream(self, batch: Mapping[str, torch.Tensor]) -> InputStream:
        """batch -> the encoder's input: data [B, M, C] with position features on demand (one input), or the packed
        array of several inputs [B, M, W] with its segments."""
        return self.packing(self.input_parts(batch))

    def embed(self, batch: Mapping[str, torch.Tensor]) -> ByteArray:
        """batch -> ByteArray [B, M, C + P] (position features concatenated; several inputs packed)."""
        return self.stream(batch).materialise()

    def encode(self, batch: Mapping[str, torch.Tensor] | torch.Tensor):
        """batch -> (Encoded with latents [B, N, D], the byte array a decoder reads): encode once, then decode as
        many output points as wanted (`decode`)."""
        batch = self.as_batch(batch)
        stream = self.stream(batch)  # data [B, M, C] + positions on demand, or packed inputs
        if not self.decoder.reads_inputs and self.encoder.streams(stream.num_elements):
            # The encoder reads data and position features separately: [B, c, C + P] chunks for very large inputs
            # in inference (the whole input is never held at once), else concatenated inside its cross-attend.
            return self.encoder.forward_stream(stream), stream.base  # latents [B, N, D]
        byte_array = stream.materialise()  # [B, M, C + P]
        return self.encoder(byte_array), byte_array  # latents [B, N, D]

    def decode(self, encoded, byte_array: ByteArray, output_indices=None):
        """Latents -> outputs [B, O, K] (or named outputs); `output_indices`: only those output points, for
        decoders that subsample (basic: a tensor of flat indices; multimodal: a dict by output name)."""
        if output_indices is None:
            return self.decoder(encoded, byte_array)
        return self.decoder(encoded, byte_array, output_indices=output_indices)

    def as_batch(self, batch: Mapping[str, torch.Tensor] | torch.Tensor) -> Mapping[str, torch.Tensor]:
        """A collated batch, or a bare tensor for a model with a single input (its preprocessor's `tensor_input`)."""
        if isinstance(batch, torch.Tensor):
            key = getattr(self.preprocessor, "tensor_input", None)
            if key is None:
                raise UserError(f"this {self.spec.name!r} model takes a batch mapping (collate([model.prepare(x) "
                                f"for x in examples])) or raw examples through model.predict(...), not a bare tensor")
            return {key: batch}
        return batch

    def forward(self, batch: Mapping[str, torch.Tensor] | torch.Tensor, output_indices=None):
        encoded, byte_array = self.encode(batch)  # latents [B, N, D]
        return self.decode(encoded, byte_array, output_indices)  # [B, O, K]

    def loss(self, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        outputs = self(batch)
        return self.task.loss(outputs, batch), outputs

    def logits(self, batch: Mapping[str, torch.Tensor] | torch.Tensor) -> torch.Tensor:
        """The outputs in the task's natural shape: a classifier's [B, K]; otherwise [B, O, K]."""
        return self.task.logits(self(batch))

    @torch.no_grad()
    def predict(self, examples: Sequence[Mapping[str, Any]] | Mapping[str, torch.Tensor] | torch.Tensor, *,
                batch_size: int = 64) -> list[Any]:
        """Predictions for raw examples (a list of dicts as the dataset yields them), or for a collated batch or
        bare tensor; inputs go to the model's device in batches of `batch_size`."""
        if isinstance(examples, (Mapping, torch.Tensor)):
            batch = self.as_batch(examples)
            return self.task.predict(self, batch)  # by default postprocess(self(batch), batch)
        from ..data.loader import collate, to_device

        device = next(self.parameters(), torch.empty(0)).device
        out: list[Any] = []
        examples = list(examples)
        for start in range(0, len(examples), batch_size):
            batch = to_device(collate([self.prepare(x) for x in examples[start:start + batch_size]]), device)
            out.extend(self.task.predict(self, batch))
        return out

    def predict_files(self, paths: Sequence[str | os.PathLike], *, batch_size: int = 64) -> list[Any]:
        """Predictions for input files the preprocessor can read (`read_input`: images, text files, ...)."""
        try:
            examples = [self.preprocessor.read_input(str(p)) for p in paths]
        except NotImplementedError as exc:
            raise UserError(str(exc)) from None
        return self.predict(examples, batch_size=batch_size)

    def prepare(self, example: Mapping[str, Any]) -> dict[str, Any]:
        """Raw example -> tensors (the data-worker half of the preprocessor)."""
        return self.preprocessor.prepare(example)


def _build(spec: PipelineSpec, section: str, context: BuildContext, registry, choice: ComponentChoice | None = None,
           where: str | None = None):
    choice = choice or spec[section]
    where = where or section
    kind = {"data": "dataset"}.get(section, section)
    entry = registry.get(kind, choice.use)
    try:
        factory = entry.factory_fn()
    except Exception as exc:  # noqa: BLE001 - plugin code: name the distribution to fix, in one line
        from ..errors import UserError

        raise UserError(f"pipeline {spec.name!r}: {kind} {choice.use!r} of {entry.distribution} {entry.version} "
                        f"cannot be built: its factory {entry.factory!r} does not resolve "
                        f"({type(exc).__name__}: {exc}); reinstall or upgrade {entry.distribution}") from None
    try:
        return factory(choice.config, context)
    except (ValueError, TypeError) as exc:
        from ..errors import BuildError

        raise BuildError(f"pipeline {spec.name!r}: cannot build {where} {choice.use!r}: {exc}",
                         section=where, detail=str(exc)) from exc
    except UserError as exc:  # the factory's own one-line error: remember which table it is about
        if getattr(exc, "section", None) is None:
            exc.section = where
        raise


def build_dataset(spec: PipelineSpec, plugin_manager=None) -> Dataset:
    from ..plugins.manager import get_plugin_manager

    pm = plugin_manager or get_plugin_manager()
    return _build(spec, "data", BuildContext(), pm.registry)


def build_inputs(spec: PipelineSpec, context: BuildContext, registry):
    """Each input's preprocessor and position encoding, built in input order with the context each needs (its own
    index shape); then the packing and the context the encoder sees (the packed array's). One input: exactly the
    components, context and parameters a one-input pipeline always had."""
    inputs = spec.inputs
    several = len(inputs) > 1
    preprocessors: dict[str, Preprocessor] = {}
    positions: dict[str, PositionEncoding] = {}
    facts: dict[str, dict] = {}
    for name, choice in inputs.items():
        at = (lambda section: f"inputs.{name}.{section}") if several else (lambda section: section)
        preprocessor = _build(spec, "preprocessor", context, registry, choice.preprocessor, at("preprocessor"))
        context.index_shape = tuple(preprocessor.index_shape)  # sets index_shape, channels
        position = _build(spec, "position", context, registry, choice.position, at("position"))
        context.position_channels = position.num_channels(len(context.index_shape))
        data_channels = preprocessor.output_channels
        context.input_channels = data_channels + context.position_channels
        preprocessors[name], positions[name] = preprocessor, position
        facts[name] = {"index_shape": context.index_shape, "channels": data_channels,
                       "position_channels": context.position_channels, "modality": name}
    mask = {name: (choice.options.mask_probability or 0.0,
                   choice.options.eval_mask_probability if choice.options.eval_mask_probability is not None
                   else choice.options.mask_probability or 0.0)
            for name, choice in inputs.items()
            if choice.options.mask_probability is not None or choice.options.eval_mask_probability is not None}
    packing = Packing({n: f["channels"] + f["position_channels"] for n, f in facts.items()}, spec.min_padding(), mask)
    if spec.multi_inputs is None and packing.passthrough:  # the one-input form, nothing to pad or mask
        (name,) = preprocessors
        return preprocessors[name], positions[name], packing
    for f in facts.values():
        f["width"] = packing.width
    context.inputs = facts  # an `inputs` table (even of one input): batch keys <input>.<key>, keys by input name
    if not packing.passthrough:
        context.index_shape = (sum(math.prod(f["index_shape"]) for f in facts.values()),)  # the packed array's
        context.position_channels = 0  # inside the packed width
        context.input_channels = packing.width
    return MultiInput(preprocessors), nn.ModuleDict(positions), packing


def build_from_spec(spec: PipelineSpec, context: BuildContext | None = None, *, plugin_manager=None,
                    dataset: Dataset | None = None) -> Pipeline:
    """Build the model of a spec. The context comes from the dataset, or from a checkpoint's metadata."""
    from ..plugins.manager import get_plugin_manager

    pm = plugin_manager or get_plugin_manager()
    if context is None:
        dataset = dataset or build_dataset(spec, pm)
        context = BuildContext(dataset=dict(dataset.info()))
    task = _build(spec, "task", context, pm.registry)  # sets num_outputs
    preprocessor, position, packing = build_inputs(spec, context, pm.registry)
    encoder = _build(spec, "encoder", context, pm.registry)  # sets latent dims
    decoder = _build(spec, "decoder", context, pm.registry)
    decoder.tie_to(preprocessor)  # e.g. output logits tied to the input embedding
    return Pipeline(spec, context, preprocessor, position, encoder, decoder, task, packing)
