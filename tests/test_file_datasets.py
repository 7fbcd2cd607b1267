"""The core's file-backed datasets: folder, manifest and Parquet layouts, splits, labels, the verification and
statistics cache, unreadable files, bounds, and errors that name what is wrong. A tiny subclass reads text files
whose content is one number, so these tests need no modality plugin."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from perceiver_core.config.data import FileDataConfig
from perceiver_core.data.loader import make_loader
from perceiver_core.datasets import ChannelStats, FileDataset
from perceiver_core.errors import DataError


class NumberFiles(FileDataset):
    """Each .num file holds one number; statistics: its mean and std. Counts decodes to show the cache works."""

    component = "test.numbers"
    extensions = (".num",)
    decodes = 0

    def decode(self, row):
        type(self).decodes += 1
        if "path" in row and row["path"]:
            value = float(open(row["path"], encoding="utf-8").read())  # ValueError for a corrupt file
        else:
            value = float(row["value"])
        return {"value": value}

    def stats_start(self):
        return ChannelStats(1)

    def stats_add(self, state, example):
        return state.add([[example["value"]]])

    def stats_finish(self, state):
        mean, std = state.result()
        return {"mean": mean[0], "std": std[0]}


def make_folder(root, classes=None, ext=".num"):
    classes = classes or {"cat": 6, "dog": 4}
    for name, count in classes.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            (root / name / f"{i}{ext}").write_text(str(i + (100 if name == "dog" else 0)))
    return root


def build(**kwargs):
    return NumberFiles(FileDataConfig(**kwargs))


def test_folder_layout_labels_class_names_and_a_seeded_stratified_split(tmp_path):
    root = make_folder(tmp_path / "data")
    (root / "cat" / "notes.txt").write_text("ignored: not a .num file")
    ds = build(root=str(root), test_fraction=0.5, split_seed=1)
    assert ds.splits == ("train", "test") and ds.label_names == ["cat", "dog"]
    info = ds.info()
    assert info["num_classes"] == 2 and info["label_names"] == ["cat", "dog"]
    train, test = ds.examples("train"), ds.examples("test")
    assert len(train) + len(test) == 10
    assert sorted(e["label"] for e in test) == [0, 0, 0, 1, 1]  # half of each class
    for e in list(train) + list(test):  # labels follow the folders: dog files hold numbers >= 100
        assert e["label"] == int(e["value"] >= 100)
    again = build(root=str(root), test_fraction=0.5, split_seed=1).examples("test")
    other = build(root=str(root), test_fraction=0.5, split_seed=2).examples("test")
    assert [e["value"] for e in again] == [e["value"] for e in test]
    assert [e["value"] for e in other] != [e["value"] for e in test]


def test_split_folders_are_the_splits(tmp_path):
    make_folder(tmp_path / "train")
    make_folder(tmp_path / "val", {"cat": 2, "dog": 1})
    make_folder(tmp_path / "test", {"cat": 1, "dog": 2})
    ds = build(root=str(tmp_path))
    assert ds.splits == ("train", "val", "test")
    assert [len(ds.examples(s)) for s in ds.splits] == [10, 3, 3]
    assert [e["label"] for e in ds.examples("test")] == [0, 1, 1]


@pytest.mark.parametrize("setup, message", [
    (lambda r: r.mkdir(), "has no class subfolders"),
    (lambda r: (r / "cat").mkdir(parents=True), "class 'cat' has no files of type .num"),
    (lambda r: (make_folder(r / "train"), make_folder(r / "extra")), "mixes split folders"),
    (lambda r: (make_folder(r / "train"), make_folder(r / "test", {"bird": 1})), "have no training examples"),
])
def test_empty_and_malformed_folders_are_clear_errors(tmp_path, setup, message):
    root = tmp_path / "data"
    setup(root)
    with pytest.raises(DataError, match=message) as err:
        build(root=str(root)).splits
    assert "\n" not in str(err.value)


def test_csv_and_jsonl_manifests_with_a_split_column(tmp_path):
    root = make_folder(tmp_path / "files")
    lines = ["path,label,split"]
    for i, path in enumerate(sorted(root.rglob("*.num"))):
        lines.append(f"{path.relative_to(tmp_path)},{path.parent.name},{'test' if i % 5 == 0 else 'train'}")
    (tmp_path / "list.csv").write_text("\n".join(lines) + "\n")
    ds = build(manifest=str(tmp_path / "list.csv"), split_column="split")
    assert ds.splits == ("train", "test") and [len(ds.examples(s)) for s in ds.splits] == [8, 2]
    assert ds.label_names == ["cat", "dog"]
    with (tmp_path / "list.jsonl").open("w") as f:
        for line in lines[1:]:
            path, label, _ = line.split(",")
            f.write(json.dumps({"file": path, "class": 7 if label == "cat" else 12}) + "\n")
    ds = build(manifest=str(tmp_path / "list.jsonl"), path_column="file", label_column="class", test_fraction=0.2)
    assert ds.label_names == ["7", "12"]  # integers sorted as numbers
    assert all(e["label"] == int(e["value"] >= 100) for e in ds.examples("train"))
    with pytest.raises(DataError, match="no column 'kind'; columns: file, class"):
        build(manifest=str(tmp_path / "list.jsonl"), path_column="file", label_column="kind").splits


def test_parquet_table_rows_are_read_by_row_group(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    values = np.arange(100, dtype=np.float64)
    table = pa.table({"value": values, "label": ["even" if v % 2 == 0 else "odd" for v in values]})
    pq.write_table(table, tmp_path / "t.parquet", row_group_size=16)
    ds = build(table=str(tmp_path / "t.parquet"), test_fraction=0.25)
    assert ds.label_names == ["even", "odd"] and len(ds.examples("train")) == 76
    for e in ds.examples("test"):
        assert e["label"] == int(e["value"]) % 2
    assert ds.info()["mean"] == pytest.approx(np.delete(values, []).mean(), abs=5)  # the training rows only
    with pytest.raises(DataError, match="row group 0 holds .* more than the limit"):
        build(table=str(tmp_path / "t.parquet"), max_file_mb=1e-4).splits


def test_statistics_are_cached_reused_and_invalidated(tmp_path):
    root = make_folder(tmp_path / "data", {"cat": 4, "dog": 4})
    NumberFiles.decodes = 0
    ds = build(root=str(root), test_fraction=0.25)
    stats = ds.info()
    assert NumberFiles.decodes == 8  # one pass over every file
    train_values = [e["value"] for e in ds.examples("train")]
    assert stats["mean"] == pytest.approx(np.mean(train_values)) and stats["std"] == pytest.approx(np.std(train_values))
    cache_file = ds.cache_file
    assert cache_file and cache_file.startswith(str(root / ".perceiver-cache"))
    NumberFiles.decodes = 0
    assert build(root=str(root), test_fraction=0.25).info() == stats and NumberFiles.decodes == 0  # reused
    time.sleep(0.01)
    (root / "cat" / "0.num").write_text("50")  # a changed file: new size or mtime -> new fingerprint
    NumberFiles.decodes = 0
    changed = build(root=str(root), test_fraction=0.25).info()
    assert NumberFiles.decodes == 8 and changed != stats
    (root / "dog" / "9.num").write_text("109")  # an added file
    NumberFiles.decodes = 0
    assert build(root=str(root), test_fraction=0.25).info()["mean"] != changed["mean"] and NumberFiles.decodes == 9


def test_a_data_folder_that_cannot_hold_the_cache_caches_elsewhere(tmp_path, monkeypatch):
    root = make_folder(tmp_path / "data")
    (root / ".perceiver-cache").write_text("a file where the cache folder would go")  # as unwritable as read-only
    monkeypatch.setenv("PERCEIVER_CACHE_DIR", str(tmp_path / "cache"))
    ds = build(root=str(root))
    ds.splits
    assert ds.cache_file and ds.cache_file.startswith(str(tmp_path / "cache"))
    NumberFiles.decodes = 0
    build(root=str(root)).splits
    assert NumberFiles.decodes == 0
    explicit = build(root=str(root), cache_dir=str(tmp_path / "mine"))
    explicit.splits
    assert explicit.cache_file.startswith(str(tmp_path / "mine"))


def test_corrupt_files_are_named_and_refused_or_skipped(tmp_path, capsys):
    root = make_folder(tmp_path / "data")
    (root / "dog" / "bad.num").write_text("not a number")
    (root / "cat" / "empty.num").write_text("")
    with pytest.raises(DataError) as err:
        build(root=str(root)).splits
    message = str(err.value)
    assert "\n" not in message and "cat/empty.num: empty file (2 unreadable files in all)" in message
    assert 'data.on_error = "skip"' in message
    ds = build(root=str(root), on_error="skip")
    assert sum(len(ds.examples(s)) for s in ds.splits) == 10 and len(ds.skipped) == 2
    err_text = capsys.readouterr().err
    assert "skipped 2 unreadable file(s)" in err_text
    assert {r["file"].split("data/")[1]: r["reason"] for r in ds.describe()["skipped"]} == {
        "cat/empty.num": "empty file", "dog/bad.num": "could not convert string to float: 'not a number'"}


def test_a_file_spoiled_after_indexing_fails_in_a_worker_with_one_line(tmp_path):
    root = make_folder(tmp_path / "data")
    ds = build(root=str(root), test_fraction=0.2)
    train = ds.examples("train")
    victim = ds.index.table.where(int(train.ids[3]))
    with open(victim, "w") as f:
        f.write("garbage")
    loader = make_loader(train, lambda e: {"x": e["value"]}, batch_size=2, num_workers=2)
    with pytest.raises(DataError) as err:
        list(loader)
    assert str(err.value) == f"{victim}: could not convert string to float: 'garbage'"


def test_reads_are_bounded(tmp_path):
    root = make_folder(tmp_path / "data")
    (root / "cat" / "big.num").write_text("1" * 3000)
    with pytest.raises(DataError, match=r"big.num: 3,000 bytes, more than data.max_file_mb = 0.002 \(2,097 bytes\)"):
        build(root=str(root), max_file_mb=0.002).splits
    (tmp_path / "t.csv").write_text("value,label\n" + "1,a\n" * 10 + "2," + "b" * 5000 + "\n")
    with pytest.raises(DataError, match="row at byte .* is 5,003 bytes, more than the limit"):
        build(table=str(tmp_path / "t.csv"), max_file_mb=0.001).splits


def test_csv_fields_may_hold_quoted_newlines(tmp_path):
    (tmp_path / "t.csv").write_text('value,label,note\n1,a,"two\nlines, and a ""quote"""\n2,b,plain\n3,a,x\n4,b,y\n')
    ds = build(table=str(tmp_path / "t.csv"), test_fraction=0.0)
    rows = [ds.index.table.row(i) for i in range(4)]
    assert rows[0]["note"] == 'two\nlines, and a "quote"' and [r["value"] for r in rows] == ["1", "2", "3", "4"]
