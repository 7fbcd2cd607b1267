"""The signal processing against references: the resampler against SciPy's resample_poly, the log-mel spectrogram
against a direct numpy DFT, MFCCs against scipy.fft.dct, and the waveform patches' layout and ByteArray."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from perceiver_core import BuildContext
from perceiver_audio.configs import LogMelConfig, WaveformConfig
from perceiver_audio.logmel import LogMelPreprocessor
from perceiver_audio.resample import resample
from perceiver_audio.spectrogram import dct_matrix, hz_to_mel, log_mel, mel_filterbank, mfcc
from perceiver_audio.waveform import WaveformPreprocessor, waveform_patches


@pytest.mark.parametrize("orig,new,n", [(22050, 16000, 12345), (44100, 16000, 44100), (48000, 16000, 1001),
                                        (8000, 16000, 777), (16000, 22050, 5), (11025, 16000, 3)])
def test_resampler_matches_scipy_resample_poly(orig, new, n):
    from scipy.signal import resample_poly

    x = np.random.default_rng(n).standard_normal(n)
    g = np.gcd(orig, new)
    expected = resample_poly(x, new // g, orig // g)
    got = resample(x, orig, new)
    assert got.shape == expected.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=2e-6)


def test_resampling_keeps_a_tone_and_removes_what_the_new_rate_cannot_hold():
    t = np.arange(44100) / 44100
    x = np.sin(2 * np.pi * 1000 * t) + np.sin(2 * np.pi * 12000 * t)  # 12 kHz is above 16 kHz's Nyquist
    y = resample(x, 44100, 16000)
    spectrum = np.abs(np.fft.rfft(y[1000:-1000] * np.hanning(len(y) - 2000)))
    freqs = np.fft.rfftfreq(len(y) - 2000, 1 / 16000)
    peak = freqs[np.argmax(spectrum)]
    assert abs(peak - 1000) < 2 and spectrum[np.abs(freqs - 4000) < 50].max() < 1e-3 * spectrum.max()  # no alias


def _reference_log_mel(x, rate, n_fft, hop, n_mels, f_min, f_max):
    """Direct numpy: zero-pad n_fft/2, periodic Hann frames, DFT power, triangles on the HTK mel scale."""
    padded = np.pad(x, n_fft // 2)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    frames = np.stack([padded[i * hop:i * hop + n_fft] * window for i in range(1 + len(x) // hop)])
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2  # [frames, F]
    mel = lambda f: 2595 * np.log10(1 + f / 700)  # noqa: E731
    corners = 700 * (10 ** (np.linspace(mel(f_min), mel(f_max), n_mels + 2) / 2595) - 1)
    freqs = np.linspace(0, rate / 2, n_fft // 2 + 1)
    bank = np.zeros((len(freqs), n_mels))
    for m in range(n_mels):
        lo, mid, hi = corners[m:m + 3]
        bank[:, m] = np.clip(np.minimum((freqs - lo) / (mid - lo), (hi - freqs) / (hi - mid)), 0, None)
    return np.log(power @ bank + 1e-6)


def test_log_mel_matches_a_direct_dft():
    x = np.random.default_rng(0).standard_normal(4000).astype(np.float32) * 0.1
    got = log_mel(torch.from_numpy(x), 16000, n_fft=400, hop_length=160, n_mels=40, f_min=20.0)
    expected = _reference_log_mel(x.astype(np.float64), 16000, 400, 160, 40, 20.0, 8000.0)
    assert got.shape == (26, 40)
    np.testing.assert_allclose(got.numpy(), expected, atol=2e-3)


def test_a_tone_lands_in_its_mel_band():
    rate, f = 16000, 1500.0
    x = torch.sin(2 * torch.pi * f * torch.arange(rate) / rate)
    spec = log_mel(x, rate, n_mels=40, f_min=0.0)  # [101, 40]
    corners = 700 * (10 ** (np.linspace(0, hz_to_mel(8000.0), 42) / 2595) - 1)
    expected = int(np.argmin(np.abs(corners[1:-1] - f)))  # the filter centred nearest the tone
    assert int(spec[50].argmax()) == expected
    bank = mel_filterbank(201, rate, 40, 0.0, 8000.0)
    assert bank.shape == (201, 40) and float(bank.max()) <= 1.0 and bool((bank.sum(0) > 0).all())


def test_mfcc_is_the_orthonormal_dct_of_log_mel():
    from scipy.fft import dct

    x = torch.randn(8000) * 0.1
    lm = log_mel(x, 16000)
    np.testing.assert_allclose(mfcc(x, 16000, n_mfcc=13).numpy(), dct(lm.numpy(), type=2, norm="ortho")[:, :13],
                               atol=1e-4)
    d = dct_matrix(40, 40)
    np.testing.assert_allclose((d.T @ d).numpy(), np.eye(40), atol=1e-5)


def test_waveform_patches_are_deepminds_layout():
    ctx = BuildContext(dataset={"sample_rate": 16000, "num_samples": 30720})  # DeepMind's Kinetics audio
    pre = WaveformPreprocessor(WaveformConfig(), ctx)
    assert pre.index_shape == (1920,) and pre.output_channels == 16
    wave = np.arange(30720, dtype=np.float32) / 30720
    prepared = pre.prepare({"audio": wave})
    assert prepared["audio_patches"].shape == (1920, 16)
    assert prepared["audio_patches"][1].tolist() == (wave[16:32]).tolist()  # patch i = samples 16i..16i+15
    ba = pre({"audio_patches": prepared["audio_patches"][None]})
    assert ba.data.shape == (1, 1920, 16) and ba.index_shape == (1920,) and ba.modality == "audio"
    assert torch.equal(waveform_patches(torch.arange(32.0), 16)[1], torch.arange(16.0, 32.0))
    with pytest.raises(ValueError, match="not a whole number of patch_size 16 patches"):
        WaveformPreprocessor(WaveformConfig(), BuildContext(dataset={"sample_rate": 16000, "num_samples": 1000}))


def test_log_mel_preprocessor_layouts():
    ctx = BuildContext(dataset={"sample_rate": 16000, "num_samples": 16000})
    frames = LogMelPreprocessor(LogMelConfig(n_mels=40), ctx)
    bins = LogMelPreprocessor(LogMelConfig(n_mels=40, elements="bins", project_to=4), ctx)
    assert frames.index_shape == (101,) and frames.output_channels == 40
    assert bins.index_shape == (101, 40) and bins.output_channels == 4
    x = np.random.default_rng(0).standard_normal(12000).astype(np.float32)
    a, b = frames.prepare({"audio": x})["log_mel"], bins.prepare({"audio": x})["log_mel"]
    assert a.shape == (101, 40) and b.shape == (4040, 1) and torch.equal(a.reshape(-1, 1), b)
    assert abs(float(a.mean())) < 1e-5 and abs(float(a.std()) - 1) < 1e-4  # standardised per spectrogram


def test_waveform_scale_is_one_fixed_gain_that_save_values_divides_out(tmp_path):
    """scale multiplies every clip by the same number (a quiet track at unit scale); the WAV holds the samples."""
    import soundfile as sf

    ctx = BuildContext(dataset={"sample_rate": 4000, "num_samples": 64})
    pre = WaveformPreprocessor(WaveformConfig(scale=50.0), ctx)
    wave = np.linspace(-0.01, 0.01, 64, dtype=np.float32)
    patches = pre.prepare({"audio": wave})["audio_patches"]  # [4, 16]
    assert torch.allclose(patches.reshape(-1), torch.from_numpy(wave) * 50)
    quieter = pre.prepare({"audio": wave / 2})["audio_patches"]
    assert torch.allclose(quieter, patches / 2)  # not per-clip: loudness is kept
    [path] = pre.save_values(patches, tmp_path / "clip")
    back, rate = sf.read(path, dtype="float32")
    assert rate == 4000 and np.abs(back - wave).max() < 1e-4
    with pytest.raises(ValueError):
        WaveformConfig(scale=0)


def test_invert_flips_the_sign_of_training_clips_only_when_drawn():
    ctx = BuildContext(dataset={"sample_rate": 4000, "num_samples": 64})
    wave = np.linspace(-0.5, 0.5, 64, dtype=np.float32)
    always = WaveformPreprocessor(WaveformConfig(invert=1.0), ctx)
    out = always.augment({"audio": wave}, torch.Generator().manual_seed(0))
    assert np.array_equal(np.asarray(out["audio"]), -wave)
    assert torch.equal(always.prepare({"audio": wave})["audio_patches"].reshape(-1), torch.from_numpy(wave))  # eval
    half = WaveformPreprocessor(WaveformConfig(invert=0.5), ctx)
    g = torch.Generator().manual_seed(0)
    signs = {float(np.sign(np.asarray(half.augment({"audio": wave}, g)["audio"])[-1])) for _ in range(20)}
    assert signs == {1.0, -1.0}
    off = WaveformPreprocessor(WaveformConfig(), ctx).augment({"audio": wave}, g)["audio"]
    assert np.array_equal(np.asarray(off), wave)  # off: unchanged
