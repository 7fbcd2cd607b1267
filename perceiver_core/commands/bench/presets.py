"""Benchmark presets: model configs (ours and, where it exists, the matching HF config) and the runs to time.

A preset names the pipeline sections of our model, the image size, the batch sizes and input sizes to sweep,
and the HF `PerceiverConfig` keyword arguments of the same architecture. Nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Preset:
    """What `perceiver bench --preset NAME` runs.

    sections: pipeline sections (section -> {"use": name, **config}) of our model, without `data`.
    image_size: side of the square RGB input; batches / sizes: the sweeps (one run per batch, per size).
    hf: keyword arguments of transformers' PerceiverConfig for the same architecture (None: no HF peer).
    hf_batches: batches HF's model is also run at alone, to find its own best (the table's best-vs-best ratio).
    steps: timed steps per run (the median is reported; at least 10 everywhere, the measurement guide's floor).
    """

    name: str
    description: str
    sections: dict[str, dict[str, Any]]
    image_size: int
    num_classes: int
    batches: tuple[int, ...] = (1,)
    sizes: tuple[int, ...] = ()
    hf: dict[str, Any] | None = None
    hf_batches: tuple[int, ...] = ()
    steps: int = 10
    warmup: int = 2
    modes: tuple[str, ...] = ("train", "infer")
    notes: tuple[str, ...] = field(default_factory=tuple)


def _imagenet_sections(num_latents: int, latent_channels: int, blocks: int, self_attends: int, bands: int,
                       num_classes: int) -> dict[str, dict[str, Any]]:
    return {
        "task": {"use": "classification", "num_classes": num_classes},
        "preprocessor": {"use": "image.pixels"},
        "position": {"use": "fourier", "num_bands": bands},
        "encoder": {"use": "perceiver", "num_latents": num_latents, "latent_channels": latent_channels,
                    "num_blocks": blocks, "self_attends_per_block": self_attends, "num_cross_attends": 1,
                    "cross_attend_heads": 1, "self_attend_heads": 8, "cross_attention_shape_for_attn": "kv"},
        "decoder": {"use": "classification"},
    }


def _hf(num_latents: int, latent_channels: int, blocks: int, self_attends: int, image_size: int,
        num_classes: int, bands: int) -> dict[str, Any]:
    """HF PerceiverConfig of the same model. d_model = 3 + 2 * (2K + 1) (pixels + Fourier features)."""
    return {"num_latents": num_latents, "d_latents": latent_channels, "d_model": 3 + 2 * (2 * bands + 1),
            "num_blocks": blocks, "num_self_attends_per_block": self_attends, "num_self_attention_heads": 8,
            "num_cross_attention_heads": 1, "self_attention_widening_factor": 1,
            "cross_attention_widening_factor": 1, "cross_attention_shape_for_attention": "kv",
            "image_size": image_size, "num_labels": num_classes, "_num_bands": bands}


_IMAGENET = dict(num_latents=512, latent_channels=1024, blocks=8, self_attends=6, bands=64, num_classes=1000)


def _imagenet(name: str, description: str, **kw) -> Preset:
    c = _IMAGENET
    return Preset(name, description,
                  _imagenet_sections(c["num_latents"], c["latent_channels"], c["blocks"], c["self_attends"],
                                     c["bands"], c["num_classes"]),
                  image_size=224, num_classes=1000,
                  hf=_hf(c["num_latents"], c["latent_channels"], c["blocks"], c["self_attends"], 224,
                         c["num_classes"], c["bands"]), **kw)


def _hip_sections(num_classes: int, **encoder: Any) -> dict[str, dict[str, Any]]:
    """HiP's encoder half (blocks down to the processor, learned positions, Morton groups) + a class query: the
    model a HiP classifier runs, on every raw pixel."""
    return {
        "task": {"use": "classification", "num_classes": num_classes},
        "preprocessor": {"use": "image.pixels"},
        "position": {"use": "none"},
        "encoder": {"use": "hip", "order": "morton", **encoder},
        "decoder": {"use": "classification"},
    }


_HIP_SIZES = (224, 512, 1024, 2048)

#: the residual-stream dtypes `--residual-dtype` times (the encoders' `residual_dtype` field)
RESIDUAL_DTYPES = ("float32", "bfloat16")

PRESETS: dict[str, Preset] = {p.name: p for p in [
    _imagenet("imagenet", "Perceiver IO ImageNet, Fourier K=64, 224^2, 512 x 1024 latents, 8 x 6 (48.4M params)",
              batches=(1,), warmup=1),
    _imagenet("imagenet-batch",
              "the ImageNet config over a batch sweep (GPU: 32, 64, 128, 256; HF alone at 16 ... 128)",
              batches=(32, 64, 128, 256), hf_batches=(16, 32, 64, 128), steps=10, warmup=3),
    _imagenet("imagenet-sizes", "the ImageNet config, inference at batch 1 over 64^2 ... 4096^2 (4k to 16.8M inputs)",
              batches=(1,), sizes=(64, 128, 256, 512, 1024, 2048, 4096), modes=("infer",), steps=10, warmup=2),
    _imagenet("imagenet-large-train", "the ImageNet config, training steps on one 1024^2 or 2048^2 raw-pixel image "
              "(split-key cross-attend)", batches=(1,), sizes=(1024, 2048), modes=("train",), steps=10, warmup=2),
    Preset("tiny", "CI-sized: 32 x 64 latents, 2 x 2 self-attends, 16^2 RGB, Fourier K=4 (seconds on a CPU)",
           _imagenet_sections(32, 64, 2, 2, 4, 10), image_size=16, num_classes=10, batches=(4,),
           hf=_hf(32, 64, 2, 2, 16, 10, 4), warmup=1),
    Preset("hip-16", "HiP-16 encoder + class query on raw pixels, batch 1 at 224^2 ... 2048^2 (50k to 4.2M inputs)",
           _hip_sections(1000, variant="16", position_encoding_channels=512), image_size=224, num_classes=1000,
           batches=(1,), sizes=_HIP_SIZES, warmup=1),
    Preset("hip-256", "HiP-256 encoder + class query on raw pixels, batch 1 at 224^2 ... 2048^2",
           _hip_sections(1000, variant="256", position_encoding_channels=512), image_size=224, num_classes=1000,
           batches=(1,), sizes=_HIP_SIZES, warmup=1),
    Preset("hip-tiny", "CI-sized HiP: groups 4-1-4, 16^2 RGB (seconds on a CPU)",
           _hip_sections(10, num_groups=(4, 1, 4), self_attends=(1, 1, 1), latents=(8, 16, 8), channels=(32, 64, 32),
                         self_attend_heads=(2, 4, 2), embedding_channels=16),
           image_size=16, num_classes=10, batches=(2,), warmup=1),
]}
