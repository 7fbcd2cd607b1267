"""The text demo: `text-mlm-tiny` (shipped by perceiver-text) validates, trains on the CPU and
beats the unigram baseline on masked bytes; `perceiver predict` fills the [MASK]s of a sentence."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

REGISTRY = ROOT / "plugins" / "perceiver-text" / "perceiver_text" / "pipelines.toml"


def test_registry_with_the_text_demo_validates(cli):
    result = cli("validate", str(REGISTRY), "--json")
    assert result.returncode == 0, result.stderr
    assert "text-mlm-tiny" in json.loads(result.stdout)["pipelines"]


@pytest.mark.slow
def test_text_mlm_tiny_beats_unigram_and_fills_masks(cli, tmp_path):
    from perceiver_text.baseline import unigram_cross_entropy
    from perceiver_text.configs import DocstringsConfig
    from perceiver_text.corpus import DocstringCorpus

    out = tmp_path / "run"
    result = cli("train", "text-mlm-tiny", "--out", str(out), "--no-progress",
                 "--max-steps", "150", "--json", env={"OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr
    loss = json.loads(result.stdout)["loss"]  # masked-byte cross-entropy on the test split, nats
    corpus = DocstringCorpus(DocstringsConfig(max_chars=48, min_chars=16))
    unigram = unigram_cross_entropy(corpus.examples("train"), corpus.examples("test"))
    assert loss < unigram - 0.5, (loss, unigram)
    sentence = tmp_path / "s.txt"
    sentence.write_text("Return a new l[MASK]st.\n")
    result = cli("predict", "text-mlm-tiny", "--checkpoint",
                 str(out / "model.safetensors"), str(sentence), "--json")
    assert result.returncode == 0, result.stderr
    (row,) = json.loads(result.stdout)
    assert row["filled"] == 1 and row["text"].startswith("Return a new l") and row["text"].endswith("st.")
