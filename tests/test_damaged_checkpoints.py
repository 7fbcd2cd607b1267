"""Checkpoints as hostile input: a corpus of damaged files made here from a real run (metadata that does not parse,
missing or unknown keys, wrong types, aliases to missing tensors, a header whose dtype was edited F32 -> I32 with the
same size, a damaged trainer state or checkpoint.json). `evaluate`, `predict`, `inspect` and `train --resume` each
answer every case with exit 2 and one line, never a traceback and never a garbage model.
"""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import pytest

from perceiver_core import load_registry, train
from perceiver_core.commands.cli import main

TINY = Path(__file__).parent / "tiny.toml"


def _edit_header(path: Path, edit) -> None:
    """Rewrite a safetensors header (8-byte little-endian length, JSON, then the data, whose offsets are relative
    to the end of the header)."""
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    edit(header)
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data[8 + n:])


def _meta(**changes):
    def edit(header):
        meta = header["__metadata__"]
        for key, value in changes.items():
            if value is None:
                meta.pop(key, None)
            else:
                meta[key] = value
    return edit


def _dtype(name: str, dtype: str = "I32"):
    def edit(header):
        assert header[name]["dtype"] == "F32"
        header[name]["dtype"] = dtype
    return edit


NESTED = "[" * 100_000 + "]" * 100_000
MODEL_CASES = {
    "pipeline-not-json": (_meta(pipeline="{"), "pipeline is not JSON"),
    "context-not-json": (_meta(context="{'a': 1}"), "context is not JSON"),
    "plugins-not-json": (_meta(plugins="nope"), "plugins is not JSON"),
    "metrics-not-json": (_meta(metrics="{"), "metrics is not JSON"),
    "aliases-not-json": (_meta(aliases="["), "aliases is not JSON"),
    "pipeline-deeply-nested": (_meta(pipeline=NESTED), "pipeline is not JSON"),
    "pipeline-a-list": (_meta(pipeline="[]"), "pipeline must be an object, got list"),
    "context-a-string": (_meta(context='"x"'), "context must be an object, got str"),
    "plugins-to-numbers": (_meta(plugins='{"perceiver-image": 1}'), "plugins must map names to names"),
    "alias-to-a-missing-tensor": (_meta(aliases='{"decoder.x": "nope"}'), "aliases name tensors the file does not hold"),
    "step-not-a-number": (_meta(step="abc"), "step is not an integer"),
    "step-negative": (_meta(step="-3"), "step must be a non-negative integer"),
    "no-pipeline": (_meta(pipeline=None), "missing keys pipeline"),
    "no-context": (_meta(context=None), "missing keys context"),
    "no-core-api": (_meta(core_api=None), "missing keys core_api"),
    "no-aliases-and-no-plugins": (_meta(aliases=None, plugins=None), "missing keys aliases, plugins"),
    "unknown-key": (_meta(evil="1"), "unknown keys evil"),
    "pipeline-without-name": (_meta(pipeline='{"encoder": {"use": "perceiver"}}'), "pipeline has no name"),
    "context-unknown-field": (_meta(context='{"bogus": 1}'), "does not describe a model this version can build"),
    "core-api-of-the-future": (_meta(core_api="999"), "was written for core API 999"),
    "latents-f32-as-i32": (_dtype("encoder.latents"), "of another dtype (e.g. encoder.latents: int32 in the file, "
                                                       "float32 here)"),
    "f32-as-u32": (_dtype("encoder.latents", "U32"), "of another dtype"),
    "format-missing": (_meta(format=None), "not a perceiver-checkpoint (format: none)"),
}
BUILD_CASES = {"context-unknown-field", "core-api-of-the-future", "latents-f32-as-i32", "f32-as-u32"}
STATE_CASES = {
    "optim-scalars-not-json": (_meta(optim_scalars="{"), "optim_scalars is not JSON"),
    "param-groups-an-object": (_meta(param_groups="{}"), "param_groups must be an array, got dict"),
    "param-groups-empty": (_meta(param_groups="[]"), "does not fit this run's optimizer, data loader or RNG"),
    "loader-empty": (_meta(loader="{}"), "does not fit this run's optimizer, data loader or RNG"),
    "epoch-missing": (_meta(epoch=None), "missing keys epoch"),
    "state-unknown-key": (_meta(x="1"), "unknown keys x"),
    "optim-moment-f32-as-i32": (None, "tensor optim.0.exp_avg is int32, expected a floating-point dtype"),
    "rng-u8-as-i8": (None, "tensor rng.torch.0 is int8, expected uint8"),
}


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("damaged") / "run"
    spec = load_registry([TINY], include_default=False).resolve("tiny", ["train.max_steps=2", "data.batch_size=64"])
    train(spec, out, progress=False)
    return out


def _record_size(folder: Path, name: str) -> None:
    """checkpoint.json records each part's size: keep it true to the edited file, so that the content is judged
    (a size that differs is refused before: `test_an_edited_part_of_the_unit_is_refused`)."""
    manifest = json.loads((folder / "checkpoint.json").read_text())
    manifest["parts"][name]["bytes"] = (folder / name).stat().st_size
    (folder / "checkpoint.json").write_text(json.dumps(manifest))


def test_an_edited_part_of_the_unit_is_refused(run, tmp_path, capsys):
    folder = tmp_path / "run"
    shutil.copytree(run, folder)
    _edit_header(folder / "model.safetensors", _meta(evil="1" * 100))
    line = _one_line(capsys, ["train", "--resume", str(folder), "--no-progress"])
    assert "not one unit: checkpoint.json names step 2 but model.safetensors is from this unit but" in line
    assert "(truncated or edited?)" in line


def _one_line(capsys, argv: list[str]) -> str:
    assert main(argv) == 2, argv
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("perceiver: error: ") and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("case", list(MODEL_CASES))
def test_a_damaged_model_file_is_one_line_for_every_command(run, tmp_path, capsys, case):
    edit, message = MODEL_CASES[case]
    folder = tmp_path / "run"
    shutil.copytree(run, folder)
    _edit_header(folder / "model.safetensors", edit)
    _record_size(folder, "model.safetensors")
    ckpt = str(folder / "model.safetensors")
    for argv in (["inspect", ckpt], ["evaluate", "tiny", "--checkpoint", ckpt],
                 ["predict", "--checkpoint", ckpt, "test:0"], ["train", "--resume", str(folder), "--no-progress"]):
        if argv[0] == "inspect" and case in BUILD_CASES:  # inspect shows the metadata; it builds no model
            assert main(argv) == 0
            capsys.readouterr()
            continue
        if argv[0] == "train" and case == "context-unknown-field":  # a resume builds from pipeline.json and the
            assert main(argv) == 0  # dataset, not from this context: the weights resume (the run's own files)
            capsys.readouterr()
            continue
        assert message in _one_line(capsys, argv), argv[0]


@pytest.mark.parametrize("case", list(STATE_CASES))
def test_a_damaged_trainer_state_is_one_line_on_resume(run, tmp_path, capsys, case):
    edit, message = STATE_CASES[case]
    folder = tmp_path / "run"
    shutil.copytree(run, folder)
    state = folder / "trainer_state.safetensors"
    if case == "optim-moment-f32-as-i32":
        edit = _dtype("optim.0.exp_avg")
    elif case == "rng-u8-as-i8":
        def edit(header):
            header["rng.torch.0"]["dtype"] = "I8"
    _edit_header(state, edit)
    _record_size(folder, "trainer_state.safetensors")
    assert message in _one_line(capsys, ["train", "--resume", str(folder), "--no-progress"])


MANIFESTS = {
    "not-json": ("{", "checkpoint.json is damaged: not JSON"),
    "a-list": ("[]", "expected the keys format, parts, step, unit; found list"),
    "missing-key": ('{"format": "perceiver-checkpoint-unit", "step": 2, "unit": "x"}', "found ['format', 'step'"),
    "step-a-string": (None, "step must be a non-negative integer"),
    "staged-outside-the-folder": (None, "must be a plain file name"),
    "another-unit": (None, "not one unit: checkpoint.json names step 2 but model.safetensors is from step 2 (unit"),
}


@pytest.mark.parametrize("case", list(MANIFESTS))
def test_a_damaged_manifest_is_one_line_on_resume(run, tmp_path, capsys, case):
    text, message = MANIFESTS[case]
    folder = tmp_path / "run"
    shutil.copytree(run, folder)
    manifest = json.loads((folder / "checkpoint.json").read_text())
    if case == "step-a-string":
        manifest["step"] = "2"
    elif case == "staged-outside-the-folder":
        manifest["parts"]["model.safetensors"]["staged"] = "../../etc/passwd"
    elif case == "another-unit":
        manifest["unit"] = "2-000000000000"
    (folder / "checkpoint.json").write_text(text if text is not None else json.dumps(manifest))
    assert message in _one_line(capsys, ["train", "--resume", str(folder), "--no-progress"])


def _huge_tensor(header):
    """A header whose tensor claims 10^12 bytes of a file of a few kilobytes."""
    start = header["encoder.latents"]["data_offsets"][0]
    header["encoder.latents"]["shape"] = [250_000, 1_000_000]
    header["encoder.latents"]["data_offsets"] = [start, start + 10**12]


@pytest.mark.slow
@pytest.mark.parametrize("case", ["pipeline-deeply-nested", "latents-f32-as-i32", "huge-tensor"])
def test_damaged_checkpoints_through_the_cli_are_bounded(run, tmp_path, case):
    """The real CLI process: exit 2, one line, no traceback, peak RSS bounded (no allocation from a header)."""
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location("hostile_corpus", Path(__file__).parent / "hostile_corpus.py")
    corpus = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(corpus)
    folder = tmp_path / "run"
    shutil.copytree(run, folder)
    _edit_header(folder / "model.safetensors", _huge_tensor if case == "huge-tensor" else MODEL_CASES[case][0])
    import os

    proc, peak = corpus.run_measured([sys.executable, "-m", "perceiver_core", "evaluate", "tiny", "--checkpoint",
                                      str(folder / "model.safetensors")], env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert peak < 1.2 * 2**30, peak
