"""Registers the built-in components. Names only: nothing heavy is imported here."""

from ..hookspecs import hookimpl

_C = "perceiver_core.config"


@hookimpl
def perceiver_register_components(registry) -> None:
    add = registry.add
    add("position", "fourier", factory="perceiver_core.model.positions.fourier:FourierPositionEncoding",
        config=f"{_C}.positions:FourierPositionConfig",
        description="Fourier features of grid or explicit positions (DeepMind's formula), concatenated")
    add("position", "learned", factory="perceiver_core.model.positions.learned:LearnedPositionEncoding",
        config=f"{_C}.positions:LearnedPositionConfig",
        description="a trainable vector per input element, concatenated")
    add("position", "none", factory="perceiver_core.model.positions.none:NoPositionEncoding",
        config=f"{_C}.positions:NoPositionConfig", description="no position features")
    add("encoder", "perceiver", factory="perceiver_core.model.encoders.perceiver:PerceiverEncoder",
        config=f"{_C}.encoders:PerceiverEncoderConfig",
        description="learned latents, repeated cross-attends and latent self-attention blocks (Perceiver, IO)")
    add("decoder", "classification", factory="perceiver_core.model.decoders.classification:ClassificationDecoder",
        config=f"{_C}.decoders:ClassificationDecoderConfig",
        description="learned query cross-attends to the latents, then a linear layer (Perceiver IO)")
    add("decoder", "basic", factory="perceiver_core.model.decoders.basic:BasicDecoder",
        config=f"{_C}.decoders:BasicDecoderConfig",
        description="learned or Fourier output queries cross-attend to the latents (Perceiver IO, HF's basic decoder)")
    add("dataset", "none", factory="perceiver_core.data.nodata:NoDataset",
        config="perceiver_core.config.data:NoDataConfig",
        description="no examples, only facts (image shape, classes): for presets and imported checkpoints")
    add("decoder", "pooled", factory="perceiver_core.model.decoders.pooled:PooledDecoder",
        config=f"{_C}.decoders:PooledDecoderConfig",
        description="mean of the latents, LayerNorm, linear layer (original Perceiver)")
    add("task", "classification", factory="perceiver_core.model.tasks.classification:ClassificationTask",
        config=f"{_C}.tasks:ClassificationTaskConfig",
        description="cross-entropy with label smoothing; accuracy")
    add("encoder", "hip", factory="perceiver_core.model.encoders.hip:HiPEncoder", config=f"{_C}.hip:HiPEncoderConfig",
        description="Hierarchical Perceiver encoder: grouped blocks with weights shared across groups, down to "
                    "the one-group processor (HiP); masked auto-encoding of learned positions")
    add("decoder", "hip", factory="perceiver_core.model.decoders.hip:HiPDecoder", config=f"{_C}.hip:HiPDecoderConfig",
        description="Hierarchical Perceiver decoder: mirrored blocks with U-Net skips, group-local reconstruction "
                    "head, per-modality unembedding (HiP)")
    add("task", "mae", factory="perceiver_core.model.tasks.mae:MAETask", config=f"{_C}.hip:MAETaskConfig",
        description="masked auto-encoding: MSE on the hidden elements; reconstruction loss and PSNR")

    # several inputs (Perceiver IO's multimodal autoencoder): modality-free preprocessors, decoder and task
    add("preprocessor", "patches", factory="perceiver_core.model.preprocessors.patches:PatchesPreprocessor",
        config=f"{_C}.multimodal:PatchesConfig",
        description="a raw array [*grid, C] in non-overlapping patches (waveform samples, space-time video patches)")
    add("preprocessor", "label", factory="perceiver_core.model.preprocessors.label:LabelPreprocessor",
        config=f"{_C}.multimodal:LabelConfig", description="a class label as one input element: its one-hot vector")
    add("decoder", "multimodal", factory="perceiver_core.model.decoders.multimodal:MultimodalDecoder",
        config=f"{_C}.multimodal:MultimodalDecoderConfig",
        description="per-output queries padded to one width, one shared cross-attend, a head per output; "
                    "subsampled training, chunked inference (Perceiver IO multimodal)")
    add("task", "multimodal", factory="perceiver_core.model.tasks.multimodal:MultimodalTask",
        config=f"{_C}.multimodal:MultimodalTaskConfig",
        description="weighted sum of per-output losses (reconstruction MSE, label cross-entropy); per-output metrics")


@hookimpl
def perceiver_register_backends(registry) -> None:
    # The host CPU works with the core alone; the perceiver-cpu plugin replaces this entry with its refinement.
    registry.add_backend("cpu", factory="perceiver_core.runtime.cpu:CoreCpuBackend", priority=0,
                         description="the host CPU, fp32 (bf16 on request), gloo (core; perceiver-cpu refines it)")
