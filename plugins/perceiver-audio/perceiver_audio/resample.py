"""Sample-rate conversion: a polyphase windowed-sinc resampler in numpy, the same filter as SciPy's
`scipy.signal.resample_poly` (tests/test_audio_signal.py checks them against each other to 1e-6).

The rate changes by up / down (the reduced ratio of the two rates): conceptually the signal is upsampled by
`up` (zeros between samples), low-pass filtered at min(1/up, 1/down) of the Nyquist rate by a Kaiser-windowed
(beta 5) sinc of 20 * max(up, down) + 1 taps, and every `down`-th sample is kept. Only the kept samples are
computed, each from the K = ceil(taps / up) input samples its filter phase touches: [n_out, K] multiply-adds.
"""

from __future__ import annotations

from functools import lru_cache
from math import gcd

import numpy as np

CHUNK = 1 << 16  # output samples computed per block (bounds the [block, K] gather)


@lru_cache(maxsize=32)
def _design(up: int, down: int) -> tuple[np.ndarray, int, int]:
    """(polyphase filter table [up, K], n_pre_remove, n_pre_pad) of the up/down resampler, as resample_poly."""
    max_rate = max(up, down)
    half_len = 10 * max_rate
    taps = 2 * half_len + 1
    cutoff = 1.0 / max_rate  # of the Nyquist rate
    m = np.arange(taps) - half_len
    h = cutoff * np.sinc(cutoff * m) * np.kaiser(taps, 5.0)  # scipy.signal.firwin(taps, cutoff, ('kaiser', 5))
    h = h / h.sum() * up  # unit gain at DC, times up for the zeros the upsampling inserts
    n_pre_pad = down - half_len % down
    n_pre_remove = (half_len + n_pre_pad) // down
    k = -(-taps // up)  # taps per phase
    table = np.zeros((up, k))
    padded = np.concatenate([h, np.zeros(k * up - taps)])
    table[:] = padded.reshape(k, up).T  # table[p, i] = h[p + i * up]
    return table, n_pre_remove, n_pre_pad


def resample(x: np.ndarray, orig_rate: int, new_rate: int) -> np.ndarray:
    """[T] samples at orig_rate -> [ceil(T * new / orig)] float32 samples at new_rate (polyphase, see above)."""
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    if orig_rate <= 0 or new_rate <= 0:
        raise ValueError(f"sample rates must be positive, got {orig_rate} and {new_rate}")
    g = gcd(int(orig_rate), int(new_rate))
    up, down = int(new_rate) // g, int(orig_rate) // g
    if up == down:
        return x.astype(np.float32)
    table, n_pre_remove, n_pre_pad = _design(up, down)
    k = table.shape[1]
    n_in = len(x)
    n_out = -(-n_in * up // down)
    padded = np.concatenate([np.zeros(k), x, np.zeros(k)])  # out-of-range input samples read as zeros
    out = np.empty(n_out, dtype=np.float32)
    taps = np.arange(k)
    for start in range(0, n_out, CHUNK):
        n = np.arange(start, min(start + CHUNK, n_out))
        c = (n + n_pre_remove) * down - n_pre_pad  # position of output n on the upsampled, filtered axis
        j0, phase = np.divmod(c, up)  # newest input sample each output reads, and its filter phase
        gathered = padded[(j0 + k)[:, None] - taps]  # [block, K]: x[j0 - i]
        out[start:start + len(n)] = np.einsum("bk,bk->b", gathered, table[phase])
    return out
