"""Hook implementations: names and references only, so listing stays free of torch."""

from perceiver_core import hookimpl


@hookimpl
def perceiver_register_components(registry) -> None:
    registry.add("preprocessor", "audio.waveform", factory="perceiver_audio.waveform:WaveformPreprocessor",
                 config="perceiver_audio.configs:WaveformConfig",
                 description="raw waveform in 16-sample patches (DeepMind's multimodal model), optionally projected")
    registry.add("preprocessor", "audio.log_mel", factory="perceiver_audio.logmel:LogMelPreprocessor",
                 config="perceiver_audio.configs:LogMelConfig",
                 description="log-mel spectrogram (torch STFT, HTK mel filters): one element per frame or per bin")
    registry.add("dataset", "audio.folder", factory="perceiver_audio.folder:AudioFolderDataset",
                 config="perceiver_audio.configs:AudioFolderConfig",
                 description="your own WAV/FLAC/OGG/MP3 files: class subfolders, a manifest or a Parquet table; "
                             "mono, resampled")
    registry.add("dataset", "audio.words", factory="perceiver_audio.words:WordsDataset",
                 config="perceiver_audio.configs:WordsConfig",
                 description="spoken digits synthesised offline with eSpeak NG over 192 voices, speeds and pitches; "
                             "test voices unseen in training")


@hookimpl
def perceiver_register_pipelines(registry) -> None:
    registry.add_registry_file("perceiver_audio", "pipelines.toml")  # package data: found in wheels and checkouts
