"""Log-mel spectrograms and MFCCs in torch (torchaudio does not install beside this torch; these are its defaults).

STFT: periodic Hann window of n_fft samples, frames every hop_length samples, the signal zero-padded by n_fft // 2
on both sides so frame t is centred on sample t * hop (1 + T // hop frames). Power spectrum |X|^2. Mel filters:
n_mels triangles on the HTK mel scale (mel = 2595 log10(1 + f / 700)), their corners equally spaced in mel from
f_min to f_max, evaluated at the FFT bins' frequencies, unnormalised (torchaudio's `melscale_fbanks` with
norm=None, mel_scale="htk"). MFCC: the orthonormal DCT-II of the log-mel frames.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch


def hz_to_mel(f):
    return 2595.0 * math.log10(1.0 + f / 700.0) if isinstance(f, (int, float)) else 2595.0 * torch.log10(1.0 + f / 700.0)


def mel_to_hz(m: torch.Tensor) -> torch.Tensor:
    return 700.0 * (10.0 ** (m / 2595.0) - 1.0)


@lru_cache(maxsize=16)
def mel_filterbank(n_freqs: int, sample_rate: int, n_mels: int, f_min: float, f_max: float) -> torch.Tensor:
    """[n_freqs, n_mels] triangular filters (HTK mel scale, no normalisation) over the bins 0..sample_rate / 2."""
    if not 0 <= f_min < f_max <= sample_rate / 2:
        raise ValueError(f"mel filters need 0 <= f_min < f_max <= sample_rate / 2, got f_min {f_min:g}, f_max "
                         f"{f_max:g} at {sample_rate} Hz")
    freqs = torch.linspace(0, sample_rate / 2, n_freqs, dtype=torch.float64)  # [F]
    corners = mel_to_hz(torch.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2, dtype=torch.float64))
    widths = corners[1:] - corners[:-1]  # [n_mels + 1]
    slopes = corners[None, :] - freqs[:, None]  # [F, n_mels + 2]
    down = -slopes[:, :-2] / widths[:-1]  # rising edge
    up = slopes[:, 2:] / widths[1:]  # falling edge
    return torch.clamp(torch.minimum(down, up), min=0.0).float()  # [F, n_mels]


@lru_cache(maxsize=8)
def _window(n_fft: int) -> torch.Tensor:
    return torch.hann_window(n_fft, periodic=True, dtype=torch.float32)


def power_spectrogram(wave: torch.Tensor, n_fft: int, hop_length: int) -> torch.Tensor:
    """[..., T] -> [..., 1 + T // hop, n_fft // 2 + 1] power |STFT|^2 (centred frames, zero padding)."""
    lead = wave.shape[:-1]
    x = wave.reshape(-1, wave.shape[-1]).float()
    spec = torch.stft(x, n_fft, hop_length=hop_length, window=_window(n_fft).to(x.device), center=True,
                      pad_mode="constant", return_complex=True)  # [N, F, frames]
    power = spec.real.square() + spec.imag.square()
    return power.transpose(1, 2).reshape(*lead, power.shape[2], power.shape[1])  # [..., frames, F]


def log_mel(wave: torch.Tensor, sample_rate: int, *, n_fft: int = 400, hop_length: int = 160, n_mels: int = 40,
            f_min: float = 20.0, f_max: float | None = None, log_floor: float = 1e-6) -> torch.Tensor:
    """[..., T] samples -> [..., 1 + T // hop, n_mels] log(mel power + log_floor)."""
    power = power_spectrogram(wave, n_fft, hop_length)  # [..., frames, F]
    bank = mel_filterbank(n_fft // 2 + 1, int(sample_rate), n_mels, float(f_min),
                          float(f_max if f_max is not None else sample_rate / 2)).to(power.device)
    return torch.log(power @ bank + log_floor)  # [..., frames, n_mels]


@lru_cache(maxsize=8)
def dct_matrix(n_mels: int, n_mfcc: int) -> torch.Tensor:
    """[n_mels, n_mfcc] orthonormal DCT-II (scipy.fft.dct(..., type=2, norm='ortho') as a matrix)."""
    n = torch.arange(n_mels, dtype=torch.float64)
    k = torch.arange(n_mfcc, dtype=torch.float64)
    basis = torch.cos(math.pi / n_mels * (n[:, None] + 0.5) * k[None, :])  # [n_mels, n_mfcc]
    basis[:, 0] *= 1.0 / math.sqrt(2.0)
    return (basis * math.sqrt(2.0 / n_mels)).float()


def mfcc(wave: torch.Tensor, sample_rate: int, *, n_mfcc: int = 13, **mel) -> torch.Tensor:
    """[..., T] -> [..., frames, n_mfcc] mel-frequency cepstral coefficients."""
    lm = log_mel(wave, sample_rate, **mel)  # [..., frames, n_mels]
    return lm @ dct_matrix(lm.shape[-1], n_mfcc)
