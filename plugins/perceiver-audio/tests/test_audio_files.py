"""Reading sound files: the formats people have, mono mixdown and resampling, and hostile files refused in one line
before anything large is allocated (corrupt, unsupported container or codec, absurd header)."""

from __future__ import annotations

import re
import struct

import numpy as np
import pytest
import soundfile as sf
import torch

from perceiver_core import InputFileError
from perceiver_audio.clip import aligned_window, as_waveform, fit_length
from perceiver_audio.decode import AudioDecodeError, decode_audio, read_audio_file


def tone(freq=440.0, rate=16000, seconds=0.5, amp=0.5):
    t = np.arange(int(rate * seconds)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _wav_bytes(tag: int, channels=1, rate=16000, bits=16, data=b"\x00" * 64) -> bytes:
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * channels * bits // 8, channels * bits // 8, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


@pytest.mark.parametrize("fmt,subtype,tol", [("wav", "PCM_16", 1e-4), ("wav", "FLOAT", 1e-7), ("flac", "PCM_16", 1e-4),
                                             ("flac", "PCM_24", 1e-6), ("ogg", "VORBIS", 0.05)])
def test_formats_decode_to_mono_float32(tmp_path, fmt, subtype, tol):
    wave = tone()
    path = tmp_path / f"a.{fmt}"
    sf.write(path, wave, 16000, subtype=subtype)
    got, rate = read_audio_file(path)
    assert rate == 16000 and got.dtype == np.float32 and got.ndim == 1 and len(got) == len(wave)
    assert np.sqrt(np.mean((got - wave) ** 2)) < tol


def test_stereo_is_mixed_down(tmp_path):
    left, right = tone(440), tone(1000, amp=0.2)
    sf.write(tmp_path / "s.flac", np.stack([left, right], axis=1), 16000)
    got, _ = read_audio_file(tmp_path / "s.flac")
    np.testing.assert_allclose(got, (left + right) / 2, atol=1e-4)


def test_corrupt_file_is_one_line(tmp_path):
    sf.write(tmp_path / "good.flac", tone(), 16000)
    damaged = bytearray((tmp_path / "good.flac").read_bytes())
    (tmp_path / "bad.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunk")
    (tmp_path / "noise.flac").write_bytes(np.random.default_rng(0).bytes(2000))
    (tmp_path / "cut.flac").write_bytes(bytes(damaged[:30]))
    for name, reason in (("bad.wav", "corrupt sound file: Error in WAV file. No 'data' chunk marker"),
                         ("noise.flac", "unsupported or corrupt sound file (Format not recognised)"),
                         ("cut.flac", "corrupt sound file")):
        with pytest.raises(InputFileError) as info:
            read_audio_file(tmp_path / name)
        message = str(info.value)
        assert message.startswith(f"{tmp_path / name}: ") and reason in message and "\n" not in message, message


@pytest.mark.parametrize("head,what", [(b"\x00\x00\x00\x20ftypM4A " + b"\x00" * 64, "an MP4/M4A container (AAC or ALAC audio)"),
                                       (b"\x30\x26\xb2\x75\x8e\x66\xcf\x11" + b"\x00" * 64, "an ASF/WMA container (Windows Media Audio)"),
                                       (b"\x1a\x45\xdf\xa3" + b"\x00" * 64, "a Matroska/WebM container")])
def test_unsupported_container_is_named(tmp_path, head, what):
    path = tmp_path / "clip.m4a"
    path.write_bytes(head)
    with pytest.raises(InputFileError, match=re.escape(f"unsupported format: {what}, which libsndfile cannot decode; "
                                                       "convert it to WAV or FLAC")):
        read_audio_file(path)


@pytest.mark.parametrize("tag,codec", [(0x0161, "WMA v2 codec (format tag 0x0161)"),
                                       (0x0055, "MPEG Layer 3 (MP3) codec (format tag 0x0055)"),
                                       (0x1234, "unknown codec (format tag 0x1234)")])
def test_unsupported_wav_codec_is_named(tmp_path, tag, codec):
    path = tmp_path / "x.wav"
    path.write_bytes(_wav_bytes(tag))
    with pytest.raises(InputFileError) as info:
        read_audio_file(path)
    assert f"unsupported codec: a WAV file with the {codec}" in str(info.value), str(info.value)
    assert "\n" not in str(info.value)


def test_absurd_header_is_refused_before_reading(tmp_path, monkeypatch):
    sf.write(tmp_path / "ok.flac", (tone() * 30000).astype(np.int16), 16000)
    data = bytearray((tmp_path / "ok.flac").read_bytes())
    off = 8 + 10  # STREAMINFO: sample rate (20 bits), channels (3), bits (5), total samples (36)
    value = int.from_bytes(data[off:off + 8], "big") | (2**36 - 1)  # claim 68.7 billion samples
    data[off:off + 8] = value.to_bytes(8, "big")
    (tmp_path / "huge.flac").write_bytes(bytes(data))
    import soundfile

    reads = []
    monkeypatch.setattr(soundfile.SoundFile, "read", lambda self, *a, **k: reads.append(a) or np.zeros((1, 1)))
    with pytest.raises(InputFileError, match=r"huge.flac: the header claims 68,719,476,735 frames x 1 channels "
                                             r"\(274,877,906,940 bytes as float32\), more than the limit"):
        read_audio_file(tmp_path / "huge.flac")
    assert reads == []  # refused from the header: nothing was decoded, nothing allocated


def test_length_limit_and_empty_file(tmp_path):
    sf.write(tmp_path / "long.wav", tone(seconds=2.0), 16000)
    with pytest.raises(AudioDecodeError, match=r"the header claims 2.0 s, longer than the limit of 1 s"):
        decode_audio(str(tmp_path / "long.wav"), max_bytes=1 << 30, max_seconds=1.0)
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(InputFileError, match="empty.wav: the file is empty, not a sound file"):
        read_audio_file(tmp_path / "empty.wav")
    with pytest.raises(InputFileError, match="does not exist"):
        read_audio_file(tmp_path / "missing.wav")


def test_waveforms_from_arrays():
    # int16 is scaled to [-1, 1); another rate is resampled; [T, 2] is mixed down
    a = as_waveform(np.array([16384, -32768], dtype=np.int16), None, 16000)
    assert a.dtype == torch.float32 and a.tolist() == [0.5, -1.0]
    up = as_waveform(tone(rate=8000), 8000, 16000)
    assert up.shape == (8000,)
    stereo = as_waveform(np.stack([tone(), tone()], 1), None, 16000)
    assert stereo.shape == (8000,)
    # crop / pad
    w = torch.arange(10.0)
    assert fit_length(w, 4).tolist() == [3.0, 4.0, 5.0, 6.0] and fit_length(w, 4, "start").tolist() == [0, 1, 2, 3]
    assert fit_length(torch.ones(2), 6).tolist() == [0, 0, 1, 1, 0, 0]
    assert fit_length(torch.ones(2), 4, "start").tolist() == [1, 1, 0, 0]


def test_aligned_window_matches_the_video_clock():
    rate = 48000
    track = np.arange(rate * 2, dtype=np.float32) / rate  # the sample's value is its time in seconds
    window = aligned_window(track, rate, rate, start_seconds=12 / 24, num_samples=1600)  # frame 12 at 24 fps
    assert window.shape == (1600,) and abs(float(window[0]) - 0.5) < 1e-6
    tail = aligned_window(track, rate, 16000, start_seconds=1.99, num_samples=320)  # runs past the end: zeros
    assert tail.shape == (320,) and float(tail[-1]) == 0.0
