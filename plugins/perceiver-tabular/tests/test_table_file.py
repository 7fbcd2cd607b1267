"""tabular.file: the user's CSV or Parquet table with a named target, categorical columns and missing values."""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from perceiver_core import load_registry, train
from perceiver_core.errors import DataError
from perceiver_tabular.configs import TableFileConfig
from perceiver_tabular.files import TableFileDataset


def write_table(path, rows=300, seed=0):
    """Target "ok" when size > 0 for red, size < 0 for blue, never for green; some sizes and colours missing."""
    rng = np.random.default_rng(seed)
    records = []
    for i in range(rows):
        size = rng.normal()
        colour = ["red", "blue", "green"][i % 3]
        target = "ok" if (colour == "red" and size > 0) or (colour == "blue" and size < 0) else "not ok"
        records.append({"size": "" if i % 17 == 0 else f"{size:.4f}", "colour": "NA" if i % 23 == 0 else colour,
                        "code": str(i % 4), "noise": f"{rng.normal():.3f}", "target": target})
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(records[0]))
        writer.writeheader()
        writer.writerows(records)
    return records


def test_columns_kinds_categories_and_missing_values(tmp_path):
    records = write_table(tmp_path / "t.csv")
    ds = TableFileDataset(TableFileConfig(table=str(tmp_path / "t.csv"), label_column="target",
                                          categorical_columns=("code",), max_categories=3))
    info = ds.info()
    assert info["label_names"] == ["not ok", "ok"]
    assert info["feature_names"][:4] == ["size", "colour=red", "colour=blue", "colour=green"]
    train_rows = [records[i] for i in ds.index.splits["train"]]
    counts = {c: sum(r["code"] == c for r in train_rows) for c in "0123"}
    kept = sorted(counts, key=lambda c: (-counts[c], c))[:3]  # the 3 most frequent codes of the training rows
    assert info["feature_names"][4:] == [f"code={c}" for c in kept] + ["code=<other>", "noise"]
    sizes = [float(r["size"]) for r in train_rows if r["size"]]
    assert info["feature_mean"][0] == pytest.approx(np.mean(sizes), abs=1e-6)
    assert info["feature_std"][0] == pytest.approx(np.std(sizes), abs=1e-6)
    for i, example in zip(ds.index.splits["train"][:40], list(ds.examples("train"))[:40]):
        r, f = records[i], example["features"]
        assert math.isnan(f[0]) == (r["size"] == "")
        if r["colour"] == "NA":
            assert all(math.isnan(v) for v in f[1:4])
        else:
            assert f[1:4] == [float(r["colour"] == c) for c in ("red", "blue", "green")]
        assert f[4:8] == [float(r["code"] == c) for c in kept] + [float(r["code"] not in kept)]
        assert example["label"] == int(r["target"] == "ok")
    with pytest.raises(DataError, match="no column 'label'; columns: size, colour, code, noise, target"):
        TableFileDataset(TableFileConfig(table=str(tmp_path / "t.csv"))).splits


def test_parquet_gives_the_same_examples_as_csv(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    records = write_table(tmp_path / "t.csv", rows=60)
    columns = {k: [r[k] for r in records] for k in records[0]}
    columns["size"] = [float(v) if v else None for v in columns["size"]]  # typed, with nulls
    pq.write_table(pa.table(columns), tmp_path / "t.parquet", row_group_size=7)
    a = TableFileDataset(TableFileConfig(table=str(tmp_path / "t.csv"), label_column="target"))
    b = TableFileDataset(TableFileConfig(table=str(tmp_path / "t.parquet"), label_column="target"))
    assert a.info() == b.info()
    for x, y in zip(a.examples("test"), b.examples("test")):
        np.testing.assert_array_equal(np.array(x["features"]), np.array(y["features"]))
        assert x["label"] == y["label"]


REGISTRY = """
[pipelines.mytable]
task = {{ use = "classification", num_classes = 2 }}
data = {{ use = "tabular.file", table = "{table}", label_column = "target", batch_size = 32 }}
preprocessor = {{ use = "tabular.features", channels = 32 }}
position = {{ use = "none" }}
encoder = {{ use = "perceiver", num_latents = 8, latent_channels = 64, num_blocks = 1, self_attends_per_block = 2, cross_attend_heads = 1, self_attend_heads = 4 }}
decoder = {{ use = "classification" }}
train = {{ epochs = 25, lr = 3e-3 }}
backend = "cpu"
"""


@pytest.mark.slow
def test_a_model_learns_the_table_and_predict_names_the_class(tmp_path):
    write_table(tmp_path / "t.csv", rows=600)
    registry = tmp_path / "registry.toml"
    registry.write_text(textwrap.dedent(REGISTRY.format(table=tmp_path / "t.csv")))
    spec = load_registry([registry], include_default=False).resolve("mytable")
    result = train(spec, tmp_path / "run", progress=False)
    assert result["accuracy"] > 0.8  # colour x sign of size: no single column predicts it (majority ~0.67)
    (tmp_path / "row.csv").write_text("size,colour,code,noise\n1.5,red,2,0.1\n")
    out = subprocess.run([sys.executable, "-m", "perceiver_core", "predict", "mytable", "--checkpoint", str(tmp_path / "run" / "model.safetensors"), str(tmp_path / "row.csv"),
                          "--json"], capture_output=True, text=True, env={**os.environ}, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)[0]["name"] == "ok"
