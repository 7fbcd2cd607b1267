"""The one audio decoder of the plugin (predict, audio folders): libsndfile through `soundfile`, bounded.

A sound file is hostile input. Before a sample is decoded, the header is read and refused in one line when it
claims more than the limits allow (frames x channels against `PERCEIVER_MAX_INPUT_BYTES` and a length in seconds:
a 100-byte FLAC can claim 2^36 samples), or when the sample rate is absurd. A file libsndfile cannot open is
named in one line saying why: an unsupported container or codec (MP4/M4A, WMA, MP3 inside a WAV, ...) by name,
anything else as corrupt with libsndfile's own reason. Channels are mixed down to mono (their mean); the result is
float32 in [-1, 1].
"""

from __future__ import annotations

import io
import os
import struct
from typing import IO, Any

import numpy as np

# lowercase suffixes of the files audio folders index (what libsndfile decodes)
EXTENSIONS = (".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc", ".au", ".caf",
              ".w64", ".rf64")
MAX_SAMPLE_RATE = 768_000

# names of WAVE format tags (RFC 2361) for messages about a WAV file libsndfile failed to open
_WAV_CODECS = {0x0002: "MS ADPCM", 0x0006: "A-law", 0x0007: "mu-law", 0x0011: "IMA ADPCM", 0x0031: "GSM 6.10",
               0x0050: "MPEG-1 Layer I/II", 0x0055: "MPEG Layer 3 (MP3)", 0x0092: "Dolby AC-3", 0x00FF: "AAC",
               0x0160: "WMA v1", 0x0161: "WMA v2", 0x0162: "WMA Pro", 0x0163: "WMA Lossless", 0x1610: "AAC (HE)",
               0x2000: "Dolby AC-3", 0x2001: "DTS", 0xA106: "AAC", 0x0022: "TrueSpeech", 0x0028: "LRC",
               0x0042: "G.723.1", 0x0064: "G.726 ADPCM", 0x0065: "G.722 ADPCM"}
_PLAIN_TAGS = {0x0001, 0x0003, 0xFFFE}  # PCM, IEEE float, extensible: a failure to open these is corruption


class AudioDecodeError(ValueError):
    """A sound file that cannot be used; the message is one line (the caller adds the file's name)."""


def _sniff(head: bytes) -> str | None:
    """The name of a container libsndfile does not read, from the first bytes; None when it may be readable."""
    if head[4:8] == b"ftyp":
        return "an MP4/M4A container (AAC or ALAC audio)"
    if head[:4] == b"\x30\x26\xb2\x75":
        return "an ASF/WMA container (Windows Media Audio)"
    if head[:4] == b"MAC ":
        return "a Monkey's Audio (APE) file"
    if head[:4] == b"wvpk":
        return "a WavPack file"
    if head[:5] == b"#!AMR":
        return "an AMR file"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "a Matroska/WebM container"
    if head[:4] == b"ADIF" or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xF6 == 0xF0):
        return "a raw AAC stream"
    return None


def _wav_codec(head: bytes) -> str | None:
    """The codec of a RIFF/WAVE file that is not plain PCM or float, from its 'fmt ' chunk (None otherwise)."""
    if head[:4] not in (b"RIFF", b"RIFX") or head[8:12] != b"WAVE":
        return None
    pos = 12
    while pos + 8 <= len(head):
        chunk, size = head[pos:pos + 4], struct.unpack("<I", head[pos + 4:pos + 8])[0]
        if chunk == b"fmt " and pos + 10 <= len(head):
            tag = struct.unpack("<H", head[pos + 8:pos + 10])[0]
            if tag in _PLAIN_TAGS:
                return None
            return f"a WAV file with the {_WAV_CODECS.get(tag, 'unknown')} codec (format tag 0x{tag:04X})"
        pos += 8 + size + (size & 1)
    return None


def _open(source: str | IO[bytes]):
    import soundfile as sf

    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as f:
            head = f.read(4096)
    else:
        head = source.read(4096)
        source.seek(0)
    if not head:
        raise AudioDecodeError("the file is empty, not a sound file")
    what = _sniff(head)
    if what is not None:
        raise AudioDecodeError(f"unsupported format: {what}, which libsndfile cannot decode; convert it to WAV or "
                               "FLAC (e.g. ffmpeg -i IN -c:a flac OUT.flac)")
    try:
        return sf.SoundFile(source)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        codec = _wav_codec(head)  # libsndfile failed on a WAV: name its codec when it is not plain PCM/float
        if codec is not None:
            raise AudioDecodeError(f"unsupported codec: {codec}, which libsndfile cannot decode; convert it to PCM "
                                   "WAV or FLAC (e.g. ffmpeg -i IN -c:a pcm_s16le OUT.wav)") from None
        reason = " ".join(str(exc).split())
        if "'" in reason and ":" in reason:  # "Error opening 'x.wav': Format not recognised." -> the reason
            reason = reason.split(":", 1)[1].strip()
        if "not recognised" in reason.lower() or "unknown format" in reason.lower():
            raise AudioDecodeError(f"unsupported or corrupt sound file ({reason.rstrip('.')}); perceiver-audio "
                                   "reads WAV, FLAC, OGG (Vorbis, Opus), MP3 and AIFF") from None
        raise AudioDecodeError(f"corrupt sound file: {reason.rstrip('.')}") from None


def decode_audio(source: str | IO[bytes], *, max_bytes: int, max_seconds: float | None = None
                 ) -> tuple[np.ndarray, int]:
    """(mono float32 samples [T] in [-1, 1], sample rate) of a sound file or file object, bounded from its header:
    frames x channels x 4 bytes <= max_bytes, frames / rate <= max_seconds. Raises AudioDecodeError (one line)."""
    import soundfile as sf

    with _open(source) as f:
        rate, channels, frames = int(f.samplerate), int(f.channels), int(f.frames)
        if not 0 < rate <= MAX_SAMPLE_RATE:
            raise AudioDecodeError(f"the header claims a sample rate of {rate:,} Hz (expected 1 to {MAX_SAMPLE_RATE:,})")
        if channels < 1:
            raise AudioDecodeError(f"the header claims {channels} channels")
        if frames <= 0:
            raise AudioDecodeError("the file holds no samples")
        need = frames * channels * 4
        if need > max_bytes:
            raise AudioDecodeError(f"the header claims {frames:,} frames x {channels} channels ({need:,} bytes as "
                                   f"float32), more than the limit of {max_bytes:,} bytes (raise "
                                   "PERCEIVER_MAX_INPUT_BYTES if it is really meant)")
        if max_seconds is not None and frames / rate > max_seconds:
            raise AudioDecodeError(f"the header claims {frames / rate:,.1f} s, longer than the limit of "
                                   f"{max_seconds:g} s (data.max_seconds)")
        try:
            data = f.read(frames, dtype="float32", always_2d=True)  # [T, channels], allocated within the bound
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise AudioDecodeError(f"corrupt sound file: {' '.join(str(exc).split())}") from None
    if data.shape[0] == 0:
        raise AudioDecodeError("corrupt sound file: no samples could be decoded")
    mono = data.mean(axis=1) if channels > 1 else data[:, 0]
    if not np.isfinite(mono).all():
        raise AudioDecodeError("the file holds NaN or infinite samples")
    return np.ascontiguousarray(mono, dtype=np.float32), rate


def read_audio_file(path: str | os.PathLike, *, max_bytes: int | None = None, max_seconds: float | None = None
                    ) -> tuple[np.ndarray, int]:
    """`decode_audio` of a path, with a missing, empty or too large file refused first; every failure is one
    `InputFileError` line that starts with the path (what `perceiver predict` prints)."""
    from perceiver_core import InputFileError, checked_input_file

    p, limit = checked_input_file(path, max_bytes=max_bytes, what="a sound file")
    try:
        return decode_audio(str(p), max_bytes=limit, max_seconds=max_seconds)
    except AudioDecodeError as exc:
        raise InputFileError(f"{path}: {exc}") from None


def decode_bytes(value: Any, *, max_bytes: int, max_seconds: float | None = None) -> tuple[np.ndarray, int]:
    """`decode_audio` of encoded bytes (a table's audio column)."""
    return decode_audio(io.BytesIO(bytes(value)), max_bytes=max_bytes, max_seconds=max_seconds)
