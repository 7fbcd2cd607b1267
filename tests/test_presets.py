"""Named presets: the papers' headline configs build (on the meta device, in a second) with exactly the
reference's parameter counts, and stay usable from a registry file through `extends`."""

from __future__ import annotations

import json

import pytest
import torch

from perceiver_core import build_preset
from perceiver_core.registry.file import preset_names
from perceiver_core.registry.presets import PRESETS_FILE

# HF transformers' classes with the hub checkpoints' configs (deepmind/vision-perceiver-*, language-perceiver).
REFERENCE = {
    "imagenet-fourier": ("PerceiverForImageClassificationFourier", 48_440_627),
    "imagenet-learned": ("PerceiverForImageClassificationLearned", 62_255_848),
    "imagenet-conv": ("PerceiverForImageClassificationConvProcessing", 48_646_522),
    "mlm-bytes": ("PerceiverForMaskedLM", 201_108_230),
}
HUB_IMAGE = dict(num_latents=512, d_latents=1024, d_model=512, num_blocks=8, num_self_attends_per_block=6,
                 num_self_attention_heads=8, num_cross_attention_heads=1, image_size=224,
                 id2label={str(i): str(i) for i in range(1000)})
HUB_TEXT = dict(qk_channels=256, v_channels=1280)  # the other fields are PerceiverConfig's defaults


def count(model) -> int:
    return sum(p.numel() for p in model.parameters())


def test_presets_are_listed():
    assert set(REFERENCE) <= set(preset_names())


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_preset_parameter_count_equals_reference(name):
    model = build_preset(name)
    assert next(model.parameters()).device.type == "meta"
    assert count(model) == REFERENCE[name][1]


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_preset_parameter_count_equals_hf(name):
    transformers = pytest.importorskip("transformers", reason="compares with HF transformers, not installed")
    cls, _ = REFERENCE[name]
    config = transformers.PerceiverConfig(**(HUB_TEXT if name == "mlm-bytes" else HUB_IMAGE))
    with torch.device("meta"):
        hf = getattr(transformers, cls)(config)
    assert count(build_preset(name)) == count(hf)


def test_imagenet_fourier_cross_attend_dims():
    """The reference's one-head cross-attend over 3 + 258 channels (qk = kv channels, shape_for_attn = kv)."""
    model = build_preset("imagenet-fourier")
    assert model.context.input_channels == 261
    attn = model.encoder.cross_attends[0].attention
    assert (attn.qk_channels, attn.v_channels, attn.num_heads) == (261, 261, 1)


def test_preset_is_usable_from_a_registry_file(write_registry):
    from perceiver_core.registry.file import load_registry

    path = write_registry("""
        [pipelines.small-imagenet]
        extends = "imagenet-fourier"
        encoder = { use = "perceiver", num_blocks = 2 }
    """)
    spec = load_registry([PRESETS_FILE, path], include_default=False).resolve("small-imagenet")
    assert spec["encoder"].config.num_blocks == 2 and spec["encoder"].config.num_latents == 512
    assert json.loads(json.dumps(spec.to_json()))["position"]["num_bands"] == 64


def test_presets_path_command(cli):
    result = cli("--version")  # the CLI runs; the path module prints the shipped file
    assert result.returncode == 0
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "perceiver_core.registry.presets"], capture_output=True, text=True)
    assert out.stdout.strip() == str(PRESETS_FILE)
