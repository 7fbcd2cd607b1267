"""Config models of the audio components (pydantic only: importing them does not import torch)."""

from typing import Literal

from pydantic import Field, model_validator

from perceiver_core.config import ComponentConfig, DataConfig, FileDataConfig


class _AudioConfig(ComponentConfig):
    """What every audio preprocessor does to a waveform before its own features: fit it to the clip length the
    model was built for (the dataset's `num_samples` at its `sample_rate`) and, in training only, augment it."""

    normalize: Literal["none", "rms"] = Field(
        "none", description="none: samples as they are (in [-1, 1]); rms: each clip scaled to unit RMS (loudness "
                            "ignored)")
    crop: Literal["center", "start"] = Field(
        "center", description="a clip longer than the model's length: keep its centre or its start (evaluation "
                              "and predict); shorter clips are zero-padded on both sides (center) or at the end")
    random_crop: bool = Field(True, description="training only: a longer clip is cut at a random position")
    time_shift: float = Field(0.0, ge=0, le=0.5, description="training only: shift the clip by up to this fraction "
                                                             "of its length either way (zero fill)")
    gain_db: float = Field(0.0, ge=0, le=40, description="training only: scale by a gain drawn from [-g, g] dB")
    noise_snr_db: float | None = Field(None, description="training only: add white noise at an SNR drawn from "
                                                         "[this, this + 20] dB (None: off)")
    invert: float = Field(0.0, ge=0, le=1, description="training only: probability of flipping the waveform's sign "
                                                      "(what is heard is the same; an autoencoder has to read the "
                                                      "sign from its input instead of recalling a clip it has seen)")


class WaveformConfig(_AudioConfig):
    """Raw waveform patches, as DeepMind's multimodal Perceiver IO: [T] samples -> [T / p, p] (p = 16), then
    optionally a linear map of each patch."""

    patch_size: int = Field(16, ge=1, description="samples per input element (DeepMind: 16)")
    project_to: int | None = Field(None, ge=1, description="project each patch to this many channels (linear)")
    scale: float = Field(1.0, gt=0, description="the samples are multiplied by this fixed number before patching "
                                                "(after `normalize`), e.g. 1 / the RMS of the training audio so a "
                                                "quiet track reaches the model at unit scale; the same for every "
                                                "clip (unlike normalize = \"rms\"); save_values divides it out")


class LogMelConfig(_AudioConfig):
    """A log-mel spectrogram (STFT with a periodic Hann window, triangular mel filters of the HTK mel scale, log),
    one input element per frame (its n_mels values) or per time-frequency bin (elements = "bins", a 2-D grid)."""

    n_fft: int = Field(400, ge=16, description="FFT size and window length in samples (400: 25 ms at 16 kHz)")
    hop_length: int = Field(160, ge=1, description="samples between frames (160: 10 ms at 16 kHz)")
    n_mels: int = Field(40, ge=1, description="mel filters")
    f_min: float = Field(20.0, ge=0, description="lowest filter edge in Hz")
    f_max: float | None = Field(None, gt=0, description="highest filter edge in Hz (default: half the sample rate)")
    log_floor: float = Field(1e-6, gt=0, description="log(mel power + this)")
    standardize: Literal["example", "none"] = Field(
        "example", description="example: subtract each spectrogram's mean and divide by its standard deviation "
                               "(per-utterance normalisation); none: the log-mel values as they are")
    elements: Literal["frames", "bins"] = Field(
        "frames", description="frames: one element per frame with n_mels channels (index shape (frames,)); bins: "
                              "one element per (frame, mel) bin with one channel (index shape (frames, n_mels))")
    project_to: int | None = Field(None, ge=1, description="project each element to this many channels (linear)")

    @model_validator(mode="after")
    def _window(self):
        if self.hop_length > self.n_fft:
            raise ValueError(f"hop_length {self.hop_length} exceeds n_fft {self.n_fft}: samples would be skipped")
        return self


class _ClipConfig(DataConfig):
    sample_rate: int = Field(16_000, ge=1_000, le=192_000, description="every clip is resampled to this rate (Hz)")
    clip_seconds: float = Field(1.0, gt=0, le=600, description="the model's clip length in seconds: preprocessors "
                                                               "crop or zero-pad every clip to it")


class AudioFolderConfig(_ClipConfig, FileDataConfig):
    """Your own sound files: a folder of class subfolders (optionally under train/ val/ test/), a manifest of paths
    and labels, or a Parquet table with an audio-bytes column. WAV, FLAC, OGG (Vorbis, Opus), MP3, AIFF and the
    other formats libsndfile reads; multi-channel files are mixed down to mono and every file is resampled to
    `sample_rate` (windowed-sinc polyphase filter)."""

    audio_column: str = Field("audio", description="table layout: column of encoded audio bytes (or of "
                                                   "{'bytes': ...} structs, as Hugging Face datasets write them)")
    max_seconds: float = Field(600.0, gt=0, description="refuse files longer than this (from their header, before "
                                                        "anything is decoded)")


DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
# eSpeak NG's English voices (accents); every accent is spoken by every variant
ACCENTS = ("en", "en-us", "en-gb-x-rp", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-us-nyc", "en-029")
# eSpeak NG voice variants (the speaker's timbre): the eight male and five female formant variants, the Klatt
# synthesiser variants and a few named ones
VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4", "f5", "klatt", "klatt2",
            "klatt3", "klatt4", "Alex", "Annie", "adam", "ed", "linda", "max", "steph")
TEST_VARIANTS = ("m3", "f2", "klatt2", "steph")


class WordsConfig(_ClipConfig):
    """Spoken words synthesised with eSpeak NG (the `espeakng-loader` wheel) at preparation time: every word in
    every accent x variant, `takes` times each with a random speed, pitch and pitch range, placed at a random onset
    in the clip, with a random gain and light white noise. Cached on disk under a fingerprint of these settings and
    the eSpeak NG version; test (and val) voices are variants never heard in training."""

    words: tuple[str, ...] = Field(DIGITS, min_length=2, description="the words, one class each")
    accents: tuple[str, ...] = Field(ACCENTS, min_length=1, description="eSpeak NG English voices (accents)")
    variants: tuple[str, ...] = Field(VARIANTS, min_length=2, description="eSpeak NG voice variants (speakers)")
    test_variants: tuple[str, ...] = Field(TEST_VARIANTS, min_length=1,
                                           description="variants held out as the test split (all their accents)")
    val_variants: tuple[str, ...] = Field((), description="variants held out as the val split")
    takes: int = Field(2, ge=1, le=20, description="clips per word and voice, each with its own speed and pitch")
    rate_wpm: tuple[int, int] = Field((120, 200), description="speed range, words per minute (eSpeak: 80-450)")
    pitch: tuple[int, int] = Field((25, 75), description="base pitch range (eSpeak: 0-99)")
    pitch_range: tuple[int, int] = Field((20, 80), description="pitch variation range (eSpeak: 0-99; 0 monotone)")
    gain_db: float = Field(6.0, ge=0, le=30, description="each clip's peak is set to -6 dB +- this many dB")
    noise_snr_db: tuple[float, float] = Field((20.0, 40.0), description="white noise at an SNR drawn from this "
                                                                        "range (dB)")
    seed: int = Field(0, description="seed of the recipe (speeds, pitches, onsets, gains, noise)")
    limit: int | None = Field(None, ge=1, description="keep only this many voices per split (small subsets for "
                                                      "tests and quick looks)")
    cache_dir: str | None = Field(None, description="where prepared data lives (default: $PERCEIVER_DATA_DIR, else "
                                                    "$PERCEIVER_CACHE_DIR, else ~/.cache/perceiver/data)")

    @model_validator(mode="after")
    def _voices(self):
        unknown = sorted(set(self.test_variants + self.val_variants) - set(self.variants))
        if unknown:
            raise ValueError(f"test/val variants {unknown} are not among the variants")
        if set(self.test_variants) & set(self.val_variants):
            raise ValueError("a variant cannot be in both test_variants and val_variants")
        if len(set(self.test_variants + self.val_variants)) >= len(set(self.variants)):
            raise ValueError("test_variants and val_variants leave no variant for training")
        if len(set(w.lower() for w in self.words)) != len(self.words):
            raise ValueError("words must be distinct")
        for name, (lo, hi) in (("rate_wpm", self.rate_wpm), ("pitch", self.pitch),
                               ("pitch_range", self.pitch_range), ("noise_snr_db", self.noise_snr_db)):
            if lo > hi:
                raise ValueError(f"{name} must be (low, high), got ({lo}, {hi})")
        if not (80 <= self.rate_wpm[0] and self.rate_wpm[1] <= 450):
            raise ValueError("rate_wpm must lie in eSpeak's 80-450 words per minute")
        if not (0 <= self.pitch[0] and self.pitch[1] <= 99 and 0 <= self.pitch_range[0] and self.pitch_range[1] <= 99):
            raise ValueError("pitch and pitch_range must lie in eSpeak's 0-99")
        return self
