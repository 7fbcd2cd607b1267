"""`perceiver import-hf DIR --out FILE`: a Hugging Face Perceiver checkpoint -> one of our checkpoints.

Supported classes (DIR/config.json `architectures`): PerceiverForImageClassificationLearned, ...Fourier,
...ConvProcessing and PerceiverForMaskedLM. The weights are read from DIR/model.safetensors (or the shards of
model.safetensors.index.json), or from DIR/pytorch_model.bin with `torch.load(weights_only=True)` (no pickled
code runs). Every weight of our model must come from exactly one HF tensor and every HF tensor must be used:
anything missing or left over is a clear error, never a silently random weight.

The pipeline built mirrors HF's hard-coded task classes with our components (see docs/parity.md):
  Fourier: image.pixels + fourier(64 bands, max_resolution 224) + perceiver + classification decoder
  Learned: image.conv1x1(256) + learned(256, projected to 256, resized bicubically for other image sizes)
           + perceiver + classification decoder
  ConvProcessing: image.conv(64) + fourier(64 bands, max_resolution 56) + perceiver + classification decoder
  MaskedLM: text.bytes (embedding + learned positions) + perceiver + text.mlm_decoder (tied embeddings)
  OpticalFlow: image.flow (3x3 patches of two frames, linear 54 -> 64) + fourier(64 bands, max_resolution
           train_size) + perceiver + image.flow_decoder (queries = inputs, / 100) + image.flow task (x 20 = pixels)
  MultimodalAutoencoding: three inputs packed (min_padding 4, mask tokens, label masked with probability 1):
           audio = patches of samples_per_patch + fourier(192 bands at num_frames * audio_samples_per_frame),
           image = 1 x 4 x 4 space-time patches of the clip + fourier(32 bands at (num_frames, image_size,
           image_size)), label = one-hot; perceiver; multimodal decoder (Fourier queries for audio patches and
           video pixels, a learned [1, 1024] label query, padded to max + 2, one cross-attend, Linear to
           output_num_channels, a head per modality); multimodal task. Batch keys: audio.values [B, samples, 1],
           image.values [B, T, H, W, 3] (channels last), label.label or label.label_scores.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Callable, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..errors import UserError

# ImageNet statistics, HF's PerceiverImageProcessor defaults (used for files given to `perceiver predict`).
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
SUPPORTED = ("PerceiverForImageClassificationLearned", "PerceiverForImageClassificationFourier",
             "PerceiverForImageClassificationConvProcessing", "PerceiverForMaskedLM", "PerceiverForOpticalFlow",
             "PerceiverForMultimodalAutoencoding")


# -- reading HF files ------------------------------------------------------------------------------------------
MAX_CONFIG_BYTES = 1 << 20  # an HF config.json is a few KB


def _positive(limit: int):
    return Field(None, ge=1, le=limit)


class HFConfig(BaseModel):
    """The keys of an HF Perceiver config.json that the import reads, typed strictly (no "8" for 8) and bounded
    (an absurd size would try to allocate terabytes when the model is built); other keys are ignored."""

    model_config = ConfigDict(extra="allow", strict=True)
    model_type: Optional[str] = None
    architectures: Optional[list[str]] = Field(None, max_length=16)
    hidden_act: Optional[str] = None
    num_latents: Optional[int] = _positive(1 << 16)
    d_latents: Optional[int] = _positive(1 << 16)
    d_model: Optional[int] = _positive(1 << 16)
    num_blocks: Optional[int] = _positive(1024)
    num_self_attends_per_block: Optional[int] = _positive(1024)
    num_cross_attention_heads: Optional[int] = _positive(1024)
    num_self_attention_heads: Optional[int] = _positive(1024)
    qk_channels: Optional[int] = _positive(1 << 16)
    v_channels: Optional[int] = _positive(1 << 16)
    cross_attention_shape_for_attention: Optional[Literal["kv", "q"]] = None
    cross_attention_widening_factor: Optional[int] = _positive(64)
    self_attention_widening_factor: Optional[int] = _positive(64)
    use_query_residual: Optional[bool] = None
    id2label: Optional[dict[str, str]] = Field(None, max_length=1 << 20)
    num_labels: Optional[int] = _positive(1 << 20)
    image_size: Union[int, list[int], None] = None
    max_position_embeddings: Optional[int] = _positive(1 << 20)
    vocab_size: Optional[int] = _positive(1 << 20)

    @field_validator("image_size")
    @classmethod
    def _image_size(cls, value):
        sizes = value if isinstance(value, list) else [value] if value is not None else []
        if len(sizes) not in (0, 1, 2) or any(not 1 <= s <= 8192 for s in sizes):
            raise ValueError("image_size must be a side (or [height, width]) between 1 and 8192")
        return value


def read_hf_config(folder: Path) -> dict[str, Any]:
    """config.json as a dict whose keys we read are of the right type and size, or one UserError line."""
    path = folder / "config.json"
    if not path.is_file():
        raise UserError(f"{folder} is not a Hugging Face checkpoint folder: it has no config.json")
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise UserError(f"{path}: {path.stat().st_size:,} bytes, more than {MAX_CONFIG_BYTES:,}: not a config.json")
    try:
        config = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, ValueError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise UserError(f"{path}: not readable JSON ({' '.join(str(exc).split())[:200]})") from None
    except RecursionError:
        raise UserError(f"{path}: JSON nested too deeply to be a config.json") from None
    if not isinstance(config, dict):
        raise UserError(f"{path}: a JSON {type(config).__name__}, not an object of settings")
    if config.get("model_type") != "perceiver":
        raise UserError(f"{path}: model_type is {str(config.get('model_type'))[:80]!r}, not 'perceiver'")
    try:
        HFConfig.model_validate(config)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(x) for x in err["loc"])
        raise UserError(f"{path}: {key}: {err['msg']} (got {str(err.get('input'))[:60]!r})") from None
    return config


def read_hf_weights(folder: Path) -> dict[str, Any]:
    """HF tensors by name: safetensors (single file or index of shards), else pytorch_model.bin (weights only)."""
    import torch
    from safetensors.torch import load_file

    single, index, binary = folder / "model.safetensors", folder / "model.safetensors.index.json", \
        folder / "pytorch_model.bin"
    try:
        if single.is_file():
            return load_file(str(single))
        if index.is_file():
            shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
            state: dict[str, Any] = {}
            for shard in shards:
                state.update(load_file(str(folder / shard)))
            return state
        if binary.is_file():
            state = torch.load(str(binary), map_location="cpu", weights_only=True)
            if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
                raise UserError(f"{binary}: not a plain state dict of tensors")
            return state
    except UserError:
        raise
    except Exception as exc:  # corrupt files: safetensors, JSON or unpickling errors of many types
        raise UserError(f"{folder}: cannot read the weights ({type(exc).__name__}: {exc})") from None
    raise UserError(f"{folder} has no weights: expected model.safetensors, model.safetensors.index.json "
                    "or pytorch_model.bin")


def _image_stats(folder: Path) -> tuple[tuple[float, ...], tuple[float, ...]]:
    path = folder / "preprocessor_config.json"
    if path.is_file():
        try:
            pre = json.loads(path.read_text(encoding="utf-8"))
            if pre.get("do_normalize", True) and pre.get("image_mean") and pre.get("image_std"):
                return tuple(pre["image_mean"]), tuple(pre["image_std"])
        except (OSError, json.JSONDecodeError):
            pass
    return IMAGENET_MEAN, IMAGENET_STD


# -- the pipeline of each class --------------------------------------------------------------------------------
def _encoder(c: dict[str, Any]) -> dict[str, Any]:
    if c.get("hidden_act", "gelu") != "gelu":
        raise UserError(f"hidden_act {c.get('hidden_act')!r} is not supported (only 'gelu')")
    return {"use": "perceiver", "num_latents": c.get("num_latents", 256), "latent_channels": c.get("d_latents", 1280),
            "num_blocks": c.get("num_blocks", 1), "self_attends_per_block": c.get("num_self_attends_per_block", 26),
            "num_cross_attends": 1, "share_blocks": True, "first_block_unshared": False,
            "cross_attend_heads": c.get("num_cross_attention_heads", 8),
            "self_attend_heads": c.get("num_self_attention_heads", 8),
            "cross_attend_qk_channels": c.get("qk_channels"), "cross_attend_v_channels": c.get("v_channels"),
            "cross_attention_shape_for_attn": c.get("cross_attention_shape_for_attention", "kv"),
            "self_attend_qk_channels": c.get("qk_channels"), "self_attend_v_channels": c.get("v_channels"),
            "cross_attend_widening": c.get("cross_attention_widening_factor", 1),
            "self_attend_widening": c.get("self_attention_widening_factor", 1),
            "use_query_residual": c.get("use_query_residual", True), "activation": "gelu"}


def _num_labels(c: dict[str, Any]) -> int:
    return len(c["id2label"]) if c.get("id2label") else int(c.get("num_labels", 2))


def _classifier(c: dict[str, Any], preprocessor: dict, position: dict, image_size: tuple[int, int]) -> dict:
    latents = c.get("d_latents", 1280)
    # HF's classification decoder: one trainable query of d_latents channels; its qk channels follow
    # cross_attention_shape_for_attention, which is d_latents either way (queries and latents have d_latents).
    # HF's classifiers take any image size (Fourier positions of the actual grid, learned ones interpolated):
    # so do ours, reading each image at its own size rather than resizing it.
    return {"task": {"use": "classification", "num_classes": _num_labels(c)},
            "data": {"use": "none", "image_shape": [*image_size, 3], "num_classes": _num_labels(c)},
            "preprocessor": {**preprocessor, "other_sizes": "native"}, "position": position, "encoder": _encoder(c),
            "decoder": {"use": "classification", "num_queries": 1, "query_channels": latents, "num_heads": 1,
                        "qk_channels": latents, "widening": 1, "use_query_residual": True}}


def pipeline_table(architecture: str, c: dict[str, Any], folder: Path, image_size: int | None = None) -> dict:
    """Our pipeline table for an HF class and its config.json."""
    size = image_size or c.get("image_size", 224)
    size = tuple(size) if isinstance(size, (list, tuple)) else (int(size), int(size))
    mean, std = _image_stats(folder)
    norm = {"mean": list(mean), "std": list(std)}
    if architecture == "PerceiverForImageClassificationFourier":
        return _classifier(c, {"use": "image.pixels", **norm},
                           {"use": "fourier", "num_bands": 64, "max_resolution": [224, 224],
                            "concat_pos": True, "sine_only": False}, size)
    if architecture == "PerceiverForImageClassificationLearned":
        return _classifier(c, {"use": "image.conv1x1", "out_channels": 256, "spatial_downsample": 1, **norm},
                           {"use": "learned", "num_channels": 256, "project_to": 256,
                            "interpolate": True}, size)
    if architecture == "PerceiverForImageClassificationConvProcessing":
        return _classifier(c, {"use": "image.conv", "out_channels": 64, "use_batchnorm": True, **norm},
                           {"use": "fourier", "num_bands": 64, "max_resolution": [56, 56],
                            "concat_pos": True, "sine_only": False}, size)
    if architecture == "PerceiverForMaskedLM":
        d_model, length = c.get("d_model", 768), c.get("max_position_embeddings", 2048)
        if c.get("vocab_size", 262) != 262:
            raise UserError(f"vocab_size {c.get('vocab_size')} is not the byte vocabulary (262)")
        return {"task": {"use": "text.mlm"}, "data": {"use": "none"},
                "preprocessor": {"use": "text.bytes", "max_length": length, "channels": d_model,
                                 "mask_probability": 0.0},
                "position": {"use": "none"}, "encoder": _encoder(c),
                "decoder": {"use": "text.mlm_decoder", "num_heads": 8, "qk_channels": 256, "v_channels": d_model,
                            "widening": 1, "use_query_residual": False}}
    if architecture == "PerceiverForOpticalFlow":
        train = c.get("train_size") or [368, 496]
        if len(train) != 2:
            raise UserError(f"train_size must be [height, width], got {train}")
        # HF's flow model: prep_type patches, conv_after_patching 54 -> 64, Fourier 64 bands at train_size,
        # PerceiverOpticalFlowDecoder (queries = inputs, 1 head, no query residual, rescale 100).
        return {"task": {"use": "image.flow", "flow_scale": 20.0},
                "data": {"use": "none", "image_shape": [int(train[0]), int(train[1]), 3]},
                "preprocessor": {"use": "image.flow", "patch_size": 3, "channels": 64, "mean": [0.5], "std": [0.5]},
                "position": {"use": "fourier", "num_bands": 64, "max_resolution": [int(train[0]), int(train[1])],
                             "concat_pos": True, "sine_only": False},
                "encoder": _encoder(c),
                "decoder": {"use": "image.flow_decoder", "num_heads": 1, "rescale_factor": 100.0,
                            "use_query_residual": False}}
    if architecture == "PerceiverForMultimodalAutoencoding":
        return multimodal_table(c)
    raise UserError(f"cannot import {architecture!r}; supported: {', '.join(SUPPORTED)}")


def _int(c: dict[str, Any], key: str, default: int, limit: int = 1 << 24) -> int:
    value = c.get(key, default)
    if type(value) is not int or not 1 <= value <= limit:
        raise UserError(f"config.json: {key} must be an integer between 1 and {limit}, got {str(value)[:40]!r}")
    return value


def multimodal_table(c: dict[str, Any]) -> dict:
    """HF's PerceiverForMultimodalAutoencoding (DeepMind's Kinetics autoencoder) as a pipeline of three inputs."""
    frames, spp = _int(c, "num_frames", 16), _int(c, "samples_per_patch", 16)
    samples = frames * _int(c, "audio_samples_per_frame", 1920)
    side = _int(c, "image_size", 56, 8192)
    shape = c.get("output_shape", [1, 16, 224, 224])
    if not (isinstance(shape, list) and len(shape) == 4 and all(type(n) is int and n >= 1 for n in shape)):
        raise UserError(f"config.json: output_shape must be [batch, frames, height, width], got {str(shape)[:60]}")
    video = shape[1:]  # [T, H, W]: the clip, cut in 1 x 4 x 4 patches
    if samples % spp or video[1] % 4 or video[2] % 4:
        raise UserError(f"config.json: {samples} audio samples in patches of {spp}, or frames of {video[1]}x"
                        f"{video[2]} in 4x4 patches, do not divide evenly")
    labels = _num_labels(c)
    channels = _int(c, "output_num_channels", 512)
    width = max(spp + 2 * 192 + 1, 48 + 3 * (2 * 32 + 1), labels) + 4
    if c.get("d_model", 768) != width:
        raise UserError(f"config.json: d_model is {c.get('d_model', 768)} but the packed input of this model has "
                        f"{width} channels (max of its inputs + 4)")
    return {
        "task": {"use": "multimodal", "outputs": {
            "audio": {"loss": "mse", "target": "audio.values"}, "image": {"loss": "mse", "target": "image.values"},
            "label": {"loss": "cross_entropy", "target": "label"}}},
        "data": {"use": "none", "num_classes": labels},
        "inputs": {
            "audio": {"preprocessor": {"use": "patches", "key": "audio", "grid_shape": [samples], "channels": 1,
                                       "patch_size": [spp]},
                      "position": {"use": "fourier", "num_bands": 192, "max_resolution": [samples]},
                      "mask_probability": 0.0},
            "image": {"preprocessor": {"use": "patches", "key": "video", "grid_shape": video, "channels": 3,
                                       "patch_size": [1, 4, 4]},
                      "position": {"use": "fourier", "num_bands": 32, "max_resolution": [frames, side, side]},
                      "mask_probability": 0.0},
            "label": {"preprocessor": {"use": "label", "num_classes": labels}, "position": {"use": "none"},
                      "mask_probability": 1.0}},
        "packing": {"min_padding": 4},
        "encoder": _encoder(c),
        "decoder": {"use": "multimodal", "min_padding": 2, "num_heads": 1, "widening": 1, "use_query_residual": False,
                    "shape_for_attn": c.get("cross_attention_shape_for_attention", "kv"), "project_to": channels,
                    "outputs": {
                        "audio": {"query": "fourier", "num_bands": 192, "max_resolution": [samples],
                                  "output_index_shape": [samples // spp], "output_channels": spp},
                        "image": {"query": "fourier", "num_bands": 32, "max_resolution": [frames, side, side],
                                  "output_index_shape": video, "output_channels": 3},
                        "label": {"query": "learned", "query_channels": _int(c, "_label_trainable_num_channels", 1024),
                                  "output_index_shape": [1], "output_channels": labels}}}}


# -- weight names ----------------------------------------------------------------------------------------------
_CROSS = [("q_norm.", "attention.self.layernorm1."), ("kv_norm.", "attention.self.layernorm2."),
          ("attention.q_proj.", "attention.self.query."), ("attention.k_proj.", "attention.self.key."),
          ("attention.v_proj.", "attention.self.value."), ("attention.o_proj.", "attention.output.dense."),
          ("mlp_norm.", "layernorm."), ("mlp.fc1.", "mlp.dense1."), ("mlp.fc2.", "mlp.dense2.")]
_SELF = [("norm.", "attention.self.layernorm1."), *_CROSS[2:]]


def _layer(rules: list[tuple[str, str]]) -> Callable[[str], str | None]:
    def rename(rest: str) -> str | None:
        for ours, theirs in rules:
            if rest.startswith(ours):
                return theirs + rest[len(ours):]
        return None
    return rename


_PREFIXES: list[tuple[str, str, Callable[[str], str | None] | None]] = [
    (r"encoder\.latents(?=@)", "perceiver.embeddings.latents", None),
    (r"encoder\.cross_attends\.0\.", "perceiver.encoder.cross_attention.", _layer(_CROSS)),
    (r"encoder\.blocks\.0\.layers\.(\d+)\.", r"perceiver.encoder.self_attends.\1.", _layer(_SELF)),
    # classification decoder (HF: PerceiverClassificationDecoder wrapping a basic decoder)
    (r"decoder\.query(?=@)", "perceiver.decoder.decoder.output_position_encodings.position_embeddings", None),
    (r"decoder\.cross_attend\.(?=.*@(?:cls|flow))", "perceiver.decoder.decoder.decoding_cross_attention.",
     _layer(_CROSS)),
    (r"decoder\.head\.", "perceiver.decoder.decoder.final_layer.", _layer([("", "")])),
    # masked LM decoder (HF: basic decoder + embedding decoder)
    (r"decoder\.queries\.query(?=@)", "perceiver.decoder.output_position_encodings.position_embeddings", None),
    (r"decoder\.cross_attend\.(?=.*@mlm)", "perceiver.decoder.decoding_cross_attention.", _layer(_CROSS)),
    (r"decoder\.bias(?=@)", "embedding_decoder.bias", None),
    # preprocessors and positions
    (r"preprocessor\.project\.(?=.*@flow)", "perceiver.input_preprocessor.conv_after_patches.", _layer([("", "")])),
    (r"preprocessor\.convnet\.(?=.*@conv1x1)", "perceiver.input_preprocessor.convnet_1x1.", _layer([("", "")])),
    (r"preprocessor\.convnet\.", "perceiver.input_preprocessor.convnet.", _layer([("", "")])),
    (r"preprocessor\.embeddings\.", "perceiver.input_preprocessor.embeddings.", _layer([("", "")])),
    (r"preprocessor\.position_embeddings\.", "perceiver.input_preprocessor.position_embeddings.", _layer([("", "")])),
    (r"position\.embedding(?=@)", "perceiver.input_preprocessor.position_embeddings.position_embeddings", None),
    (r"position\.projection\.", "perceiver.input_preprocessor.positions_projection.", _layer([("", "")])),
]


_MULTIMODAL: list[tuple[str, str, Callable[[str], str | None] | None]] = [
    (r"packing\.(padding|mask)\.(\w+)$", r"perceiver.input_preprocessor.\1.\2", None),
    (r"decoder\.padding\.(\w+)$", r"perceiver.decoder.padding.\1", None),
    (r"decoder\.queries\.(\w+)\.query$", r"perceiver.decoder.modalities.\1.decoder.output_position_encodings."
                                         "position_embeddings", None),
    (r"decoder\.cross_attend\.", "perceiver.decoder.decoder.decoding_cross_attention.", _layer(_CROSS)),
    (r"decoder\.project\.", "perceiver.decoder.decoder.final_layer.", _layer([("", "")])),
    (r"decoder\.heads\.(\w+)\.", r"perceiver.output_postprocessor.modalities.\1.classifier.", _layer([("", "")])),
]


def hf_name(ours: str, family: str) -> str | None:
    """The HF tensor name of one of our state-dict keys (family: 'cls', 'mlm', 'flow', 'multimodal', plus
    '@conv1x1'), or None."""
    if family == "multimodal":
        for pattern, target, rename in _MULTIMODAL:
            m = re.match(pattern, ours)
            if m is not None:
                head = m.expand(target)
                rest = rename(ours[m.end():]) if rename is not None else ""
                return None if rest is None else head + rest
        if not ours.startswith("encoder."):
            return None
    tagged = f"{ours}@{family}"
    for pattern, target, rename in _PREFIXES:
        m = re.match(pattern, tagged)
        if m is None:
            continue
        head = m.expand(target)
        if rename is None:
            return head
        rest = rename(ours[m.end():])
        return None if rest is None else head + rest
    return None


def load_hf_weights(model, state: dict[str, Any], family: str, where: str) -> None:
    """Copy HF tensors into our model; unknown, missing or misshapen tensors are one clear error."""
    import torch

    ours = model.state_dict()
    used: set[str] = set()
    missing, unmapped, shapes = [], [], []
    new_state = {}
    for key, tensor in ours.items():
        name = hf_name(key, family)
        if name is None:
            unmapped.append(key)
            continue
        if name not in state:
            missing.append(name)
            continue
        used.add(name)
        value = state[name]
        if tuple(value.shape) != tuple(tensor.shape):
            shapes.append(f"{name} {list(value.shape)} (ours {key} {list(tensor.shape)})")
            continue
        new_state[key] = value.to(tensor.dtype) if tensor.is_floating_point() else value.to(torch.long)
    unknown = sorted(set(state) - used)
    problems = []
    if unmapped:
        problems.append(f"no HF name for our weights {unmapped[:5]}")
    if missing:
        problems.append(f"missing HF weights {missing[:5]}{' ...' if len(missing) > 5 else ''}")
    if unknown:
        problems.append(f"unknown HF weights {unknown[:5]}{' ...' if len(unknown) > 5 else ''}")
    if shapes:
        problems.append(f"wrong shapes: {shapes[:3]}")
    if problems:
        raise UserError(f"{where}: the checkpoint does not match its config.json: " + "; ".join(problems))
    model.load_state_dict(new_state, strict=True)


# -- the command -----------------------------------------------------------------------------------------------
def import_hf(folder: str | Path, *, image_size: int | None = None, plugin_manager=None):
    """A Pipeline (eval mode) holding the weights of the HF checkpoint in `folder`."""
    from ..model.pipeline import build_from_spec
    from ..registry.file import resolve_table

    folder = Path(folder)
    config = read_hf_config(folder)
    architectures = config.get("architectures") or []
    if len(architectures) != 1:
        raise UserError(f"{folder}/config.json must name one architecture, got {architectures}; "
                        f"supported: {', '.join(SUPPORTED)}")
    architecture = architectures[0]
    table = pipeline_table(architecture, config, folder, image_size)
    table["description"] = f"{architecture} imported from {folder.resolve().name} (Hugging Face)"
    name = f"hf-{architecture.removeprefix('PerceiverFor').lower()}"
    spec = resolve_table(name, table, f"{folder}/config.json", plugin_manager)
    model = build_from_spec(spec, plugin_manager=plugin_manager)
    family = {"PerceiverForMaskedLM": "mlm", "PerceiverForOpticalFlow": "flow",
              "PerceiverForMultimodalAutoencoding": "multimodal"}.get(architecture, "cls")
    if table.get("preprocessor", {}).get("use") == "image.conv1x1":
        family += "@conv1x1"
    load_hf_weights(model, read_hf_weights(folder), family, str(folder))
    return model.eval()


def cmd_import_hf(args) -> int:
    from ..plugins.manager import get_plugin_manager
    from ..runtime.checkpoint import save_checkpoint

    pm = get_plugin_manager()
    model = import_hf(args.folder, image_size=args.image_size, plugin_manager=pm)
    save_checkpoint(args.out, model, plugins=pm.distributions())
    count = sum(p.numel() for p in model.parameters())
    if getattr(args, "json", False):
        print(json.dumps({"checkpoint": str(args.out), "pipeline": model.spec.name,
                          "description": model.spec.description, "num_parameters": count}, indent=2),
              file=getattr(args, "stdout", None))
    else:
        print(f"imported {model.spec.description}: {count:,} parameters -> {args.out} (pipeline {model.spec.name!r})")
    return 0
