"""multimodal-ae-tiny and av-classify-tiny: audio (perceiver-audio's waveform patches) + video + label of Big Buck
Bunny windows in one model; predict writes the video reconstruction as GIFs and the audio one as WAVs."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from perceiver_core import build_pipeline, collate

pytest.importorskip("perceiver_audio", reason="the audio + video pipelines need perceiver-audio installed")


def _meta(name: str):
    with torch.device("meta"):
        return build_pipeline(name)


def test_multimodal_ae_tiny_builds_three_inputs_and_decodes_them_on_meta():
    model = _meta("multimodal-ae-tiny")
    assert next(model.parameters()).device.type == "meta"
    assert model.preprocessor.names == ["audio", "label", "video"]
    # 0.16 s at 4 kHz in 40-sample patches; 4 x 32 x 56 in 2 x 8 x 8 patches; one label element
    assert model.preprocessor["audio"].index_shape == (16,)
    assert model.preprocessor["video"].index_shape == (2, 4, 7)
    assert model.preprocessor["audio"].sample_rate == 4000
    batch = {"audio.audio_patches": torch.zeros(2, 16, 40, device="meta"),
             "video.patches": torch.zeros(2, 56, 384, device="meta"),
             "label.label": torch.zeros(2, dtype=torch.long, device="meta")}
    model.eval()
    out = model(batch)
    assert tuple(out["audio"].shape) == (2, 16, 40)  # one query per audio patch: its 40 samples
    assert tuple(out["video"].shape) == (2, 56, 384)  # one query per video patch: its 2 x 8 x 8 x 3 pixels
    assert tuple(out["label"].shape) == (2, 1, 4)  # the clip's 4 parts


def test_av_classify_tiny_builds_a_two_input_classifier_on_meta():
    model = _meta("av-classify-tiny")
    assert model.preprocessor.names == ["audio", "video"]
    batch = {"audio.audio_patches": torch.zeros(3, 160, 16, device="meta"),
             "video.patches": torch.zeros(3, 448, 48, device="meta")}
    model.eval()
    assert tuple(model(batch).shape) == (3, 1, 4)  # [B, O=1, classes]


def test_predict_writes_a_wav_and_a_gif_for_each_reconstruction(tmp_path):
    """The multimodal task's predict hands each reconstruction to its input's preprocessor: the files hold the
    values (GIF frames = the patches back as pixels, WAV samples = the patches flattened)."""
    import soundfile as sf
    from PIL import Image

    model = build_pipeline("multimodal-ae-tiny", overrides=["data.frames=2",
                                                              "decoder.outputs.video.output_index_shape=[1,4,7]",
                                                              "decoder.outputs.audio.output_index_shape=[8]"]).eval()
    rng = np.random.default_rng(0)
    example = {"video": rng.integers(0, 256, (2, 32, 56, 3), dtype=np.uint8),
               "audio": rng.uniform(-0.01, 0.01, 320).astype(np.float32), "label": 1}
    batch = collate([model.prepare(example)])
    with torch.no_grad():  # as perceiver predict
        [prediction] = model.task.predict(model, batch)
        expected = (model(batch)["audio"].reshape(-1) / 50).clamp(-1, 1).numpy()  # the pipeline's scale = 50
    row = model.task.save_prediction(prediction, tmp_path, "clip")
    files = {f.rsplit("/", 1)[-1] for name in ("audio", "video") for f in row[name]["files"]}
    assert files == {"clip.audio.input.wav", "clip.audio.reconstruction.wav", "clip.video.input.gif",
                     "clip.video.reconstruction.gif"}
    wave, rate = sf.read(tmp_path / "clip.audio.input.wav", dtype="float32")
    assert rate == 4000 and np.abs(wave - example["audio"]).max() < 1e-4  # the input, 16-bit PCM
    recon, _ = sf.read(tmp_path / "clip.audio.reconstruction.wav", dtype="float32")
    assert np.abs(recon - expected).max() < 1e-4
    with Image.open(tmp_path / "clip.video.input.gif") as gif:
        assert gif.n_frames == 2 and gif.size == (56 * 4, 32 * 4)
    assert row["label"]["label"] in range(4)


def _decoder_attention_spread(overrides: list[str]) -> float:
    """How much the decoder's attention over the latents differs from uniform for one clip at initialisation: the
    standard deviation of the weights over the latents, relative to their mean (0: every latent read alike)."""
    from perceiver_core import record_attention_weights

    torch.manual_seed(0)
    model = build_pipeline("multimodal-ae-tiny", overrides=["data.frames=2", "decoder.outputs.video.output_index_shape"
                                                            "=[1,4,7]", "decoder.outputs.audio.output_index_shape=[8]",
                                                            *overrides]).eval()
    rng = np.random.default_rng(0)
    example = {"video": rng.integers(0, 256, (2, 32, 56, 3), dtype=np.uint8),
               "audio": rng.normal(0, 0.02, 320).astype(np.float32), "label": 1}
    with torch.no_grad(), record_attention_weights(model, keep=lambda n: n == "decoder.cross_attend.attention") as rec:
        model(collate([model.prepare(example)]))
    weights = rec[0].weights  # [1, H, O, N]: every output point's weights over the N latents
    return float((weights.std(-1) / weights.mean(-1)).mean())


def test_multimodal_ae_tiny_latents_start_distinct_so_audio_can_be_learned():
    """What kept the audio output at silence even for audio alone: with DeepMind's latent initialisation (std
    0.02) the latents leave the first cross-attend nearly identical, so every decoder query reads them alike (a
    spread of ~0.07, ~0.02 with the earlier 1 x 4 x 4 video patches) and the decoder can only output one vector for every audio patch: for a zero-mean waveform,
    silence, and no gradient towards reading positions apart. The pipeline initialises the latents at std 1.0
    (encoder.latent_init_scale): they start distinct (spread ~0.3; docs/audio-video.md)."""
    assert _decoder_attention_spread([]) > 0.15
    assert _decoder_attention_spread(["encoder.latent_init_scale=0.02"]) < 0.1  # the old pipeline's init


@pytest.mark.slow
def test_multimodal_ae_tiny_trains_and_predict_writes_gif_and_wav(tmp_path):
    run = tmp_path / "run"
    cli = [sys.executable, "-m", "perceiver_core"]
    done = subprocess.run([*cli, "train", "multimodal-ae-tiny", "--out", str(run), "--set", "train.epochs=3",
                           "--set", "train.eval_every=1"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in rows if r["split"] == "test"]
    assert len(evals) == 3 and all({"audio_loss", "video_loss", "label_loss", "label_accuracy"} <= set(r)
                                   for r in evals)
    assert evals[-1]["video_loss"] < evals[0]["video_loss"]  # learning, in 3 epochs of 8 steps
    out = tmp_path / "pred"
    done = subprocess.run([*cli, "predict", "multimodal-ae-tiny", "--checkpoint", str(run), "test:0", "--out",
                           str(out), "--json"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    names = sorted(p.name for p in out.iterdir())
    assert names == ["test-0.audio.input.wav", "test-0.audio.reconstruction.wav", "test-0.video.input.gif",
                     "test-0.video.reconstruction.gif"]
