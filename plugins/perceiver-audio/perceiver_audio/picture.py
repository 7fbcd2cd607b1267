"""Pictures of sounds: waveform and log-mel spectrogram, as the model sees them (needs matplotlib).

    python -m perceiver_audio.picture OUT.png                 # one clip of each digit of audio.words (test voices)
    python -m perceiver_audio.picture OUT.png a.wav b.flac    # your own files
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch

from .clip import example_waveform, fit_length
from .spectrogram import log_mel


def spectrogram_figure(clips: list[tuple[str, np.ndarray]], rate: int, path: str, n_mels: int = 40) -> None:
    """A column per clip: the waveform above its log-mel spectrogram (25 ms windows, 10 ms hop)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(5, len(clips))
    rows = -(-len(clips) // cols)
    fig, axes = plt.subplots(2 * rows, cols, figsize=(2.3 * cols, 3.4 * rows), squeeze=False,
                             gridspec_kw={"height_ratios": [1, 2] * rows})
    for ax in axes.flat:
        ax.axis("off")
    for i, (title, wave) in enumerate(clips):
        top, bottom = axes[2 * (i // cols), i % cols], axes[2 * (i // cols) + 1, i % cols]
        w = torch.as_tensor(wave, dtype=torch.float32)
        spec = log_mel(w, rate, n_fft=int(0.025 * rate), hop_length=int(0.010 * rate), n_mels=n_mels)  # [T, mels]
        t = np.arange(len(wave)) / rate
        top.plot(t, wave, linewidth=0.4, color="0.2")
        top.set_title(title, fontsize=9)
        top.set_xlim(0, t[-1])
        top.set_ylim(-1, 1)
        bottom.axis("on")
        bottom.imshow(spec.T.numpy(), origin="lower", aspect="auto", cmap="magma",
                      extent=(0, len(wave) / rate, 0, n_mels))
        bottom.set_xlabel("seconds", fontsize=7)
        bottom.tick_params(labelsize=7)
        if i % cols == 0:
            bottom.set_ylabel("mel band", fontsize=8)
        else:
            bottom.set_yticks([])
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out")
    parser.add_argument("files", nargs="*")
    parser.add_argument("--rate", type=int, default=16000)
    parser.add_argument("--seconds", type=float, default=1.0)
    args = parser.parse_args(argv)
    n = int(args.rate * args.seconds)
    clips = []
    if args.files:
        from .decode import read_audio_file

        for f in args.files:
            wave, rate = read_audio_file(f)
            clips.append((f, fit_length(example_waveform({"audio": wave, "sample_rate": rate}, args.rate), n).numpy()))
    else:
        from .configs import WordsConfig
        from .words import WordsDataset

        dataset = WordsDataset(WordsConfig(sample_rate=args.rate, clip_seconds=args.seconds))
        test, names = dataset.examples("test"), dataset.info()["label_names"]
        for label in range(len(names)):
            i = int(np.flatnonzero(test.labels == label)[0])
            clips.append((names[label], example_waveform(test[i], args.rate).numpy()))
    spectrogram_figure(clips, args.rate, args.out)
    print(args.out, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
