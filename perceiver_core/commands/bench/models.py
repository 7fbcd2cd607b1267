"""Building the two models a bench compares: ours (a `Pipeline`) and HF's PerceiverForImageClassificationFourier.

Both take the same input: a batch of images [B, H, W, 3] (ours reads them as {"pixels": [B, H*W, 3]}, HF as
[B, 3, H, W]), and both return logits for `num_classes` classes.
"""

from __future__ import annotations

from typing import Any

import torch

from ...errors import UserError
from .presets import Preset


def build_ours(preset: Preset, size: int | None = None, plugin_manager=None, overrides: dict[str, Any] | None = None):
    """Our pipeline model for `preset` at input side `size` (default: the preset's), untrained."""
    from ...config.train import TrainConfig
    from ...interfaces import BuildContext
    from ...model.pipeline import build_from_spec
    from ...plugins.manager import get_plugin_manager
    from ...registry.spec import ComponentChoice, PipelineSpec

    pm = plugin_manager or get_plugin_manager()
    size = size or preset.image_size
    components = {}
    for section, table in preset.sections.items():
        table = {**table, **((overrides or {}).get(section, {}))}
        use = table.pop("use")
        kind = {"data": "dataset"}.get(section, section)
        model = pm.registry.get(kind, use).config_model()  # MissingComponentError names the plugin to install
        components[section] = ComponentChoice(use, model(**table))
    spec = PipelineSpec(name=f"bench-{preset.name}", description=preset.description, components=components,
                        train=TrainConfig(), backend="auto")
    context = BuildContext(dataset={"image_shape": (size, size, 3), "num_classes": preset.num_classes})
    return build_from_spec(spec, context, plugin_manager=pm)


def ours_batch(images: torch.Tensor) -> dict[str, torch.Tensor]:
    """images [B, H, W, C] -> our collated batch {"pixels": [B, H*W, C]}."""
    b, h, w, c = images.shape
    return {"pixels": images.reshape(b, h * w, c)}


def hf_available() -> tuple[bool, str]:
    try:
        import transformers  # noqa: F401
    except ImportError:
        return False, "transformers is not installed (pip install transformers)"
    return True, f"transformers {transformers.__version__}"


def build_hf(preset: Preset, size: int | None = None):
    """HF's PerceiverForImageClassificationFourier with the preset's architecture, untrained."""
    if preset.hf is None:
        raise UserError(f"preset {preset.name!r} has no HF counterpart")
    ok, reason = hf_available()
    if not ok:
        raise UserError(reason)
    from transformers import PerceiverConfig, PerceiverForImageClassificationFourier

    kwargs = dict(preset.hf)
    bands = kwargs.pop("_num_bands")
    size = size or preset.image_size
    kwargs["image_size"] = size
    config = PerceiverConfig(**kwargs)
    model = PerceiverForImageClassificationFourier(config)
    if bands != 64 or size != 224:
        # HF hard-codes num_bands=64 and max_resolution=(224, 224) in this class: rebuild its model with the
        # preset's values, exactly as the class does otherwise.
        from transformers.models.perceiver.modeling_perceiver import (
            PerceiverClassificationDecoder,
            PerceiverImagePreprocessor,
            PerceiverModel,
        )

        fourier = {"concat_pos": True, "max_resolution": (size, size), "num_bands": bands, "sine_only": False}
        model.perceiver = PerceiverModel(
            config,
            input_preprocessor=PerceiverImagePreprocessor(config, prep_type="pixels", spatial_downsample=1,
                                                          fourier_position_encoding_kwargs=fourier),
            decoder=PerceiverClassificationDecoder(
                config, num_channels=config.d_latents, use_query_residual=True,
                trainable_position_encoding_kwargs={"num_channels": config.d_latents, "index_dims": 1}))
        model.post_init()
    return model


def parameter_count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
