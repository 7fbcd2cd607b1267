"""audio.words: the synthesised recipe is deterministic, split by voice, cached under a fingerprint that a changed
recipe misses, prepared on first use with a message; and (slow) a Perceiver learns it on unseen voices."""

from __future__ import annotations

import json

import numpy as np
import pytest

from perceiver_core.errors import DataError, UserError
from perceiver_audio.configs import WordsConfig
from perceiver_audio.synth import make_clip
from perceiver_audio.words import WordsDataset, prepare, voices

SMALL = dict(words=("zero", "one"), accents=("en", "en-us"), variants=("m1", "f1", "m3"), test_variants=("m3",),
             takes=2, sample_rate=8000, clip_seconds=0.8)


def test_the_recipe_is_deterministic_and_clips_differ_by_voice_and_take(tmp_path):
    c = WordsConfig(**SMALL)
    a = np.load(prepare(c.model_copy(update={"cache_dir": str(tmp_path / "a")}), quiet=True) / "clips.npy")
    b = np.load(prepare(c.model_copy(update={"cache_dir": str(tmp_path / "b")}), quiet=True) / "clips.npy")
    assert a.dtype == np.int16 and a.shape == (24, 6400) and np.array_equal(a, b)  # bit for bit, made twice
    assert len({row.tobytes() for row in a}) == 24  # every clip its own
    meta = json.loads((prepare(c.model_copy(update={"cache_dir": str(tmp_path / "a")})) / "meta.json").read_text())
    for row, clip in zip(meta["clips"], a):
        assert 120 <= row["rate_wpm"] <= 200 and 25 <= row["pitch"] <= 75 and 20 <= row["pitch_range"] <= 80
        peak = np.abs(clip.astype(np.float64)).max() / 32768
        assert 10 ** (-12.5 / 20) < peak < 10 ** (0.5 / 20)  # -6 dB +- 6 dB, plus a little noise


def test_splits_hold_out_whole_voices(tmp_path):
    ds = WordsDataset(WordsConfig(**SMALL, val_variants=("f1",), cache_dir=str(tmp_path)))
    assert ds.splits == ("train", "val", "test")
    meta = json.loads((ds.folder / "meta.json").read_text())
    clips = np.load(ds.folder / "clips.npy")
    for split, variant in (("train", "m1"), ("val", "f1"), ("test", "m3")):
        rows = [i for i, r in enumerate(meta["clips"]) if r["voice"].split("+")[1] == variant]
        examples = ds.examples(split)
        assert len(rows) == len(examples) == 2 * 2 * 2  # 2 accents x 2 words x 2 takes, and no other voice
        assert np.array_equal(examples.audio, clips[rows])
        assert examples.labels.tolist() == [meta["clips"][i]["label"] for i in rows]
    test = ds.examples("test")
    assert test[0]["audio"].dtype == np.int16 and int(test[0]["sample_rate"]) == 8000
    assert ds.info() == {"sample_rate": 8000, "num_samples": 6400, "num_classes": 2, "label_names": ["zero", "one"]}


def test_prepared_once_and_a_changed_recipe_prepares_again(tmp_path, capsys):
    c = WordsConfig(**SMALL, cache_dir=str(tmp_path))
    first = prepare(c)
    err = capsys.readouterr().err
    assert "audio.words: synthesising 24 clips (2 words x 6 voices x 2 takes) with eSpeak NG" in err
    assert str(first) in err
    stamp = (first / "clips.npy").stat().st_mtime_ns
    assert prepare(c) == first and (first / "clips.npy").stat().st_mtime_ns == stamp
    assert capsys.readouterr().err == ""  # found on disk: nothing synthesised, nothing printed
    # the split is not part of the recipe: the same clips serve another split of the voices
    other = WordsConfig(**{**SMALL, "test_variants": ("f1",)}, cache_dir=str(tmp_path))
    assert prepare(other) == first
    meta = json.loads((first / "meta.json").read_text())
    test = WordsDataset(other).examples("test")
    f1 = [i for i, r in enumerate(meta["clips"]) if r["voice"].endswith("+f1")]
    assert len(test) == len(f1) == 8 and np.array_equal(test.audio, np.load(first / "clips.npy")[f1])
    changed = prepare(WordsConfig(**{**SMALL, "seed": 1}, cache_dir=str(tmp_path)))
    assert changed != first and (changed / "meta.json").is_file()
    # a damaged folder under the recipe's name is made anew
    (first / "meta.json").write_text("{not json")
    assert prepare(c) == first and json.loads((first / "meta.json").read_text())["fingerprint"]


def test_limit_keeps_a_few_voices_per_split():
    made = voices(WordsConfig(limit=2))
    assert len(made) == 4 and {s for *_, s in made} == {"train", "test"}


def test_bad_recipes_are_one_line(tmp_path):
    with pytest.raises(ValueError, match=r"test/val variants \['zz'\] are not among the variants"):
        WordsConfig(test_variants=("zz",))
    with pytest.raises(ValueError, match="leave no variant for training"):
        WordsConfig(variants=("m1", "m2"), test_variants=("m1",), val_variants=("m2",))
    with pytest.raises(UserError, match="eSpeak NG has no voice 'xx-nowhere\\+m1'"):
        make_clip(WordsConfig(accents=("xx-nowhere",)), "xx-nowhere", "m1", "zero", 0)
    with pytest.raises(DataError, match="audio.words: synthesis failed: eSpeak NG has no voice 'xx-nowhere\\+m1'"):
        prepare(WordsConfig(**{**SMALL, "accents": ("xx-nowhere",)}, cache_dir=str(tmp_path)))


@pytest.mark.slow
def test_audio_words_learns_unseen_voices(tmp_path):
    """The shipped pipeline on a small subset (16 voices per split, one take: 160 training clips) for 120 steps
    recognises the digits of voices it never heard far above chance (10%)."""
    from perceiver_core import load_registry, train

    spec = load_registry().resolve("audio-words", ["data.limit=16", "data.takes=1", "data.batch_size=16",
                                                   "train.epochs=12", "train.eval_every=12", f"data.cache_dir={tmp_path}"])
    result = train(spec, tmp_path / "run", progress=False)
    assert result["step"] == 120
    assert result["accuracy"] > 0.5, result  # 16 unseen test voices x 10 digits
