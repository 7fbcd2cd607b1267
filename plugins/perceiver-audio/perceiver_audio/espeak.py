"""eSpeak NG through ctypes: the library and voice data ship in the `espeakng-loader` wheel (nothing downloaded).

eSpeak NG keeps global state (one voice, one set of parameters), so one `Speaker` per process, behind a lock.
Synthesis is synchronous: `espeak_Synth` returns after the callback has received every int16 sample.
"""

from __future__ import annotations

import ctypes
import threading

import numpy as np

from perceiver_core.errors import UserError

AUDIO_OUTPUT_SYNCHRONOUS = 2
POS_CHARACTER = 1
CHARS_UTF8 = 1
RATE, VOLUME, PITCH, RANGE = 1, 2, 3, 4  # espeak_PARAMETER
EE_OK = 0

_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)
_LOCK = threading.Lock()
_SPEAKER: "Speaker | None" = None


class Speaker:
    """The process's eSpeak NG engine: `say(text, voice, rate, pitch, pitch_range)` -> int16 samples."""

    def __init__(self):
        try:
            import espeakng_loader
        except ImportError:
            raise UserError("audio.words synthesises speech with eSpeak NG from the espeakng-loader wheel, which is "
                            "not installed: pip install espeakng-loader (a dependency of perceiver-audio)") from None
        try:
            lib = ctypes.CDLL(espeakng_loader.get_library_path())
            data = espeakng_loader.get_data_path()
        except (OSError, RuntimeError) as exc:
            raise UserError(f"eSpeak NG from espeakng-loader cannot be loaded here: {exc}") from None
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Info.restype = ctypes.c_char_p
        lib.espeak_Info.argtypes = [ctypes.POINTER(ctypes.c_char_p)]
        lib.espeak_SetSynthCallback.argtypes = [_CALLBACK]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                                     ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        lib.espeak_Synth.restype = ctypes.c_int
        rate = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, data.encode(), 0)
        if rate <= 0:
            raise UserError(f"eSpeak NG failed to initialise with the voice data at {data}")
        self.lib, self.sample_rate = lib, int(rate)
        self.version = lib.espeak_Info(None).decode()
        self._chunks: list[np.ndarray] = []
        self._callback = _CALLBACK(self._collect)  # kept referenced: the library calls it
        lib.espeak_SetSynthCallback(self._callback)

    def _collect(self, wav, n, events) -> int:
        if n > 0 and wav:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        return 0  # continue

    def say(self, text: str, voice: str, *, rate: int = 175, pitch: int = 50, pitch_range: int = 50) -> np.ndarray:
        """int16 samples [T] at self.sample_rate (22,050 Hz) of `text` in `voice` (e.g. "en-us+f2")."""
        lib = self.lib
        if lib.espeak_SetVoiceByName(voice.encode()) != EE_OK:
            raise UserError(f"eSpeak NG has no voice {voice!r} (accents such as en, en-us, en-gb-scotland; variants "
                            "such as m1..m8, f1..f5, klatt)")
        for parameter, value in ((RATE, rate), (PITCH, pitch), (RANGE, pitch_range), (VOLUME, 100)):
            lib.espeak_SetParameter(parameter, int(value), 0)
        self._chunks = []
        encoded = text.encode("utf-8")
        status = lib.espeak_Synth(encoded, len(encoded) + 1, 0, POS_CHARACTER, 0, CHARS_UTF8, None, None)
        if status != EE_OK:
            raise UserError(f"eSpeak NG failed to synthesise {text!r} in voice {voice!r} (error {status})")
        return np.concatenate(self._chunks) if self._chunks else np.zeros(0, dtype=np.int16)


def speaker() -> Speaker:
    """The process's one eSpeak NG engine (created on first use)."""
    global _SPEAKER
    with _LOCK:
        if _SPEAKER is None:
            _SPEAKER = Speaker()
        return _SPEAKER


def synthesise(text: str, voice: str, **params) -> tuple[np.ndarray, int]:
    """(int16 samples, sample rate) of `text` spoken in `voice`; serialised across threads."""
    s = speaker()
    with _LOCK:
        return s.say(text, voice, **params), s.sample_rate


def espeak_version() -> str:
    return speaker().version
