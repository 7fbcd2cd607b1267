"""text.files: folders of text files, JSON lines tables; sequence classification with the core's classification
decoder and task (Perceiver IO's GLUE head: one learned query cross-attends to the latents); masked byte modelling
on unlabelled files; unreadable files named."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from perceiver_core import from_checkpoint, load_registry, train
from perceiver_core.errors import DataError
from perceiver_text.configs import TextFilesConfig
from perceiver_text.files import TextFilesDataset

ANIMALS = ["cat", "horse", "otter", "eagle", "wolf", "camel", "sparrow", "badger"]
FOODS = ["bread", "cheese", "apple", "soup", "rice", "lentil", "pepper", "noodle"]
FILLER = ["the", "a", "one", "my", "some", "this", "that", "every"]


def sentence(rng, words):
    return " ".join(f"{rng.choice(FILLER)} {rng.choice(words)}" for _ in range(3)) + "."


def make_texts(root, per_class=40, seed=0):
    rng = np.random.default_rng(seed)
    for name, words in (("animals", ANIMALS), ("food", FOODS)):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            (root / name / f"{i:03d}.txt").write_text(sentence(rng, words), encoding="utf-8")
    return root


def test_folder_and_jsonl_layouts(tmp_path):
    root = make_texts(tmp_path / "texts", per_class=5)
    ds = TextFilesDataset(TextFilesConfig(root=str(root), test_fraction=0.2))
    assert ds.label_names == ["animals", "food"] and ds.info()["num_classes"] == 2
    example = ds.examples("train")[0]
    assert example["text"] == (root / "animals" / "000.txt").read_text() and example["label"] == 0
    with (tmp_path / "t.jsonl").open("w") as f:
        for i in range(10):
            f.write(json.dumps({"body": f"line {i} \u00e9t\u00e9", "tag": ["x", "y"][i % 2]}) + "\n")
    ds = TextFilesDataset(TextFilesConfig(table=str(tmp_path / "t.jsonl"), text_column="body", label_column="tag"))
    assert ds.label_names == ["x", "y"] and all("\u00e9t\u00e9" in e["text"] for e in ds.examples("train"))
    unlabelled = TextFilesDataset(TextFilesConfig(table=str(tmp_path / "t.jsonl"), text_column="body",
                                                  label_column=""))
    assert unlabelled.label_names is None and "label" not in unlabelled.examples("train")[0]


def test_files_that_are_not_utf8_are_named(tmp_path):
    root = make_texts(tmp_path / "texts", per_class=3)
    (root / "food" / "latin1.txt").write_bytes("caf\xe9 au lait".encode("latin-1"))
    with pytest.raises(DataError, match=r"food/latin1.txt: not UTF-8 text \(byte 3\); set data.encoding_errors"):
        TextFilesDataset(TextFilesConfig(root=str(root))).splits
    ds = TextFilesDataset(TextFilesConfig(root=str(root), encoding_errors="replace"))
    assert sum(len(ds.examples(s)) for s in ds.splits) == 7


CLASSIFY = """
[pipelines.topics]
task = {{ use = "classification", num_classes = 2 }}
data = {{ use = "text.files", root = "{root}", batch_size = 16, test_fraction = 0.25 }}
preprocessor = {{ use = "text.bytes", max_length = 64, channels = 32, mask_probability = 0.0, init_scale = 1.0, context_kernel = 3 }}
position = {{ use = "fourier", num_bands = 8, max_resolution = [64] }}
encoder = {{ use = "perceiver", num_latents = 8, latent_channels = 64, num_blocks = 1, self_attends_per_block = 2, cross_attend_heads = 2, cross_attend_qk_channels = 32, self_attend_heads = 4 }}
decoder = {{ use = "classification" }}
train = {{ epochs = 12, lr = 3e-3 }}
backend = "cpu"

[pipelines.mlm]
task = {{ use = "text.mlm" }}
data = {{ use = "text.files", table = "{jsonl}", label_column = "", batch_size = 8 }}
preprocessor = {{ use = "text.bytes", max_length = 48, channels = 32, mask_probability = 0.15 }}
position = "none"
encoder = {{ use = "perceiver", num_latents = 8, latent_channels = 32, num_blocks = 1, self_attends_per_block = 1, cross_attend_heads = 2, cross_attend_qk_channels = 16, self_attend_heads = 2 }}
decoder = {{ use = "text.mlm_decoder", num_heads = 2, qk_channels = 16 }}
train = {{ max_steps = 3, lr = 1e-3 }}
backend = "cpu"
"""


@pytest.mark.slow
def test_sequence_classification_learns_and_predict_names_the_topic(tmp_path):
    root = make_texts(tmp_path / "texts")
    rng = np.random.default_rng(1)
    with (tmp_path / "corpus.jsonl").open("w") as f:
        for _ in range(20):
            f.write(json.dumps({"text": sentence(rng, ANIMALS + FOODS)}) + "\n")
    registry = tmp_path / "registry.toml"
    registry.write_text(textwrap.dedent(CLASSIFY.format(root=root, jsonl=tmp_path / "corpus.jsonl")))
    specs = load_registry([registry], include_default=False)
    result = train(specs.resolve("topics"), tmp_path / "run", progress=False)
    assert result["accuracy"] >= 0.85  # 20 held-out texts
    assert from_checkpoint(tmp_path / "run" / "model.safetensors").context.dataset["label_names"] == \
        ["animals", "food"]
    (tmp_path / "q.txt").write_text("my otter the wolf a camel.")
    out = subprocess.run([sys.executable, "-m", "perceiver_core", "predict", "topics", "--checkpoint", str(tmp_path / "run" / "model.safetensors"), str(tmp_path / "q.txt"),
                          "--top-k", "2", "--json"], capture_output=True, text=True, env={**os.environ},
                         cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    row = json.loads(out.stdout)[0]
    assert row["name"] == "animals" and [t["name"] for t in row["top"]] == ["animals", "food"]

    mlm = train(specs.resolve("mlm"), tmp_path / "mlm", progress=False)  # unlabelled JSON lines: masked bytes
    assert mlm["step"] == 3 and "loss" in mlm
