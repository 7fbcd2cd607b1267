"""Parity with Hugging Face's PerceiverForMultimodalAutoencoding: small random HF models (every weight random,
save_pretrained, several configs) imported with `perceiver import-hf` give HF's per-modality outputs within 1e-5
relative error in fp32 on the same inputs with subsampled output points; the `multimodal-kinetics` preset has
exactly the parameters of HF's deepmind/multimodal-perceiver (19,858,855, on the meta device)."""

from __future__ import annotations

import pytest
import torch

from perceiver_core import from_checkpoint
from perceiver_core.commands.cli import main as cli_main
from perceiver_core.errors import UserError
from perceiver_core.model.build import build_preset

transformers = pytest.importorskip("transformers", reason="parity tests compare against HF transformers, "
                                                          "which is not installed (pip install transformers)")

from hf_reference import random_hf_model, relative_error  # noqa: E402

TOLERANCE = 1e-5
SMALL = dict(num_latents=8, d_latents=32, num_blocks=1, num_self_attends_per_block=2, num_cross_attention_heads=1,
             num_self_attention_heads=4, num_frames=2, audio_samples_per_frame=32, samples_per_patch=8,
             image_size=4, output_shape=[1, 2, 16, 16], output_num_channels=24, _label_trainable_num_channels=40)
CASES = {
    "small": dict(SMALL, num_labels=7),
    "wide-labels": dict(SMALL, num_labels=500, num_self_attends_per_block=1, samples_per_patch=16,
                        self_attention_widening_factor=2, cross_attention_widening_factor=2),
    "deeper": dict(SMALL, num_labels=5, num_blocks=2, num_latents=12, d_latents=48, num_self_attention_heads=8,
                   num_frames=3, output_shape=[1, 3, 8, 12], image_size=2, output_num_channels=16),
}


def _width(c: dict) -> int:
    return max(c["samples_per_patch"] + 2 * 192 + 1, 48 + 3 * 65, c["num_labels"]) + 4


@pytest.mark.parametrize("case", sorted(CASES))
def test_imported_multimodal_autoencoder_matches_hf(case, tmp_path):
    c = CASES[case]
    config = transformers.PerceiverConfig(**c, d_model=_width(c))
    hf = random_hf_model(transformers.PerceiverForMultimodalAutoencoding, config, tmp_path / "hf", seed=3)
    assert cli_main(["import-hf", str(tmp_path / "hf"), "--out", str(tmp_path / "ours.safetensors")]) == 0
    ours = from_checkpoint(tmp_path / "ours.safetensors")
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in hf.parameters())
    _, frames, height, width = c["output_shape"]
    samples = c["num_frames"] * c["audio_samples_per_frame"]
    g = torch.Generator().manual_seed(1)
    video = torch.randn(2, frames, 3, height, width, generator=g)  # HF's layout [B, T, C, H, W]
    audio = torch.randn(2, samples, 1, generator=g)
    label = torch.randn(2, c["num_labels"], generator=g)
    pixels, patches = frames * height * width, samples // c["samples_per_patch"]
    for image_points, audio_points in ((torch.arange(0, pixels, 7), torch.arange(patches)),
                                       (torch.randperm(pixels, generator=g)[:50], torch.tensor([0, patches - 1]))):
        with torch.no_grad():
            want = hf(inputs=dict(image=video, audio=audio, label=label),
                      subsampled_output_points={"image": image_points, "audio": audio_points, "label": None}).logits
            got = ours({"image.values": video.permute(0, 1, 3, 4, 2), "audio.values": audio,
                        "label.label_scores": label}, output_indices={"image": image_points, "audio": audio_points})
        assert relative_error(got["audio"].reshape(2, -1), want["audio"]) < TOLERANCE
        assert relative_error(got["image"], want["image"]) < TOLERANCE
        assert relative_error(got["label"][:, 0], want["label"]) < TOLERANCE


def test_a_d_model_that_is_not_the_packed_width_is_one_line(tmp_path):
    c = CASES["small"]
    config = transformers.PerceiverConfig(**c, d_model=_width(c) + 1,
                                          architectures=["PerceiverForMultimodalAutoencoding"])
    config.save_pretrained(tmp_path / "cfg")
    (tmp_path / "cfg" / "model.safetensors").write_bytes(b"")
    from perceiver_core.commands.import_hf import import_hf
    with pytest.raises(UserError, match="d_model is .* packed input of this model has"):
        import_hf(tmp_path / "cfg")


def test_kinetics_preset_has_hf_parameter_count():
    model = build_preset("multimodal-kinetics")
    assert sum(p.numel() for p in model.parameters()) == 19_858_855
    assert model.context.index_shape == (52_097,) and model.context.input_channels == 704
    assert model.decoder.query_channels == 1026
    assert {n: f["channels"] + f["position_channels"] for n, f in model.context.inputs.items()} == {
        "audio": 401, "image": 243, "label": 700}
