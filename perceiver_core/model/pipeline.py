"""`Pipeline`: preprocessor -> position -> encoder -> decoder -> task, built from a validated `PipelineSpec`.

It is what training, evaluation, prediction, benchmarks and checkpoints see: one `nn.Module` whose forward
takes a collated batch and returns the decoder's outputs [B, O, K].

    model = perceiver_core.from_checkpoint("runs/digits")     # a run folder or its model.safetensors
    model.predict([{"image": array_8x8}])                     # raw examples -> [{"label": 3, "confidence": ..}]
    model.predict_files(["a.png", "b.npy"])                   # files the preprocessor reads
    model.logits(batch)                                       # the task's natural shape: a classifier's [B, K]
    model(images)                                             # a bare tensor, for single-input models
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import torch
from torch import nn

from ..byte_array import ByteArray
from ..errors import UserError
from ..interfaces import BuildContext, Dataset, Decoder, Encoder, PositionEncoding, Preprocessor, Task
from ..registry.spec import PipelineSpec
from .input_stream import InputStream


class Pipeline(nn.Module):
    def __init__(self, spec: PipelineSpec, context: BuildContext, preprocessor: Preprocessor,
                 position: PositionEncoding, encoder: Encoder, decoder: Decoder, task: Task):
        super().__init__()
        self.spec, self.context = spec, context
        self.preprocessor, self.position, self.encoder = preprocessor, position, encoder
        self.decoder, self.task = decoder, task

    def embed(self, batch: Mapping[str, torch.Tensor]) -> ByteArray:
        """batch -> ByteArray [B, M, C + P] (position features concatenated)."""
        return InputStream(self.preprocessor(batch), self.position).materialise()

    def as_batch(self, batch: Mapping[str, torch.Tensor] | torch.Tensor) -> Mapping[str, torch.Tensor]:
        """A collated batch, or a bare tensor for a model with a single input (its preprocessor's `tensor_input`)."""
        if isinstance(batch, torch.Tensor):
            key = getattr(self.preprocessor, "tensor_input", None)
            if key is None:
                raise UserError(f"this {self.spec.name!r} model takes a batch mapping (collate([model.prepare(x) "
                                f"for x in examples])) or raw examples through model.predict(...), not a bare tensor")
            return {key: batch}
        return batch

    def forward(self, batch: Mapping[str, torch.Tensor] | torch.Tensor) -> torch.Tensor:
        batch = self.as_batch(batch)
        stream = InputStream(self.preprocessor(batch), self.position)  # data [B, M, C] + positions on demand
        if not self.decoder.reads_inputs and self.encoder.streams(stream.num_elements):
            # The encoder reads data and position features separately: [B, c, C + P] chunks for very large inputs
            # in inference (the whole input is never held at once), else concatenated inside its cross-attend.
            encoded = self.encoder.forward_stream(stream)  # latents [B, N, D]
            return self.decoder(encoded, stream.base)  # [B, O, K]
        byte_array = stream.materialise()  # [B, M, C + P]
        encoded = self.encoder(byte_array)  # latents [B, N, D]
        return self.decoder(encoded, byte_array)  # [B, O, K]

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


def _build(spec: PipelineSpec, section: str, context: BuildContext, registry):
    choice = spec[section]
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

        raise BuildError(f"pipeline {spec.name!r}: cannot build {section} {choice.use!r}: {exc}",
                         section=section, detail=str(exc)) from exc
    except UserError as exc:  # the factory's own one-line error: remember which table it is about
        if getattr(exc, "section", None) is None:
            exc.section = section
        raise


def build_dataset(spec: PipelineSpec, plugin_manager=None) -> Dataset:
    from ..plugins.manager import get_plugin_manager

    pm = plugin_manager or get_plugin_manager()
    return _build(spec, "data", BuildContext(), pm.registry)


def build_from_spec(spec: PipelineSpec, context: BuildContext | None = None, *, plugin_manager=None,
                    dataset: Dataset | None = None) -> Pipeline:
    """Build the model of a spec. The context comes from the dataset, or from a checkpoint's metadata."""
    from ..plugins.manager import get_plugin_manager

    pm = plugin_manager or get_plugin_manager()
    if context is None:
        dataset = dataset or build_dataset(spec, pm)
        context = BuildContext(dataset=dict(dataset.info()))
    task = _build(spec, "task", context, pm.registry)  # sets num_outputs
    preprocessor = _build(spec, "preprocessor", context, pm.registry)  # sets index_shape, channels
    context.index_shape = tuple(preprocessor.index_shape)
    position = _build(spec, "position", context, pm.registry)
    context.position_channels = position.num_channels(len(context.index_shape))
    data_channels = preprocessor.output_channels
    context.input_channels = data_channels + context.position_channels
    encoder = _build(spec, "encoder", context, pm.registry)  # sets latent dims
    decoder = _build(spec, "decoder", context, pm.registry)
    decoder.tie_to(preprocessor)  # e.g. output logits tied to the input embedding
    return Pipeline(spec, context, preprocessor, position, encoder, decoder, task)
