import json
from pathlib import Path

import pytest
import torch

import perceiver_core.runtime.checkpoint as ckpt
from perceiver_core import CheckpointError, build_pipeline, from_checkpoint, save_checkpoint
from perceiver_core.data.loader import collate

TINY = Path(__file__).parent / "tiny.toml"


def _batch(model, n=4):
    from perceiver_core.model.pipeline import build_dataset

    examples = build_dataset(model.spec).examples("test")
    return collate([model.prepare(examples[i]) | {"label": examples[i]["label"]} for i in range(n)])


@pytest.mark.parametrize("name", ["tiny", "tiny-perceiver"])
def test_round_trip_gives_identical_outputs(tmp_path, name):
    torch.manual_seed(0)
    model = build_pipeline(name, registry_files=[TINY]).eval()
    path = tmp_path / "model.safetensors"
    save_checkpoint(path, model, step=7, metrics={"accuracy": 0.5}, plugins={"perceiver-image": "0.1.0"})
    loaded = from_checkpoint(path)
    batch = _batch(model)
    torch.testing.assert_close(loaded(batch), model(batch), rtol=0, atol=0)
    meta = loaded.checkpoint_metadata
    assert meta["format"] == "perceiver-checkpoint" and meta["core_api"] == "1" and meta["step"] == 7
    assert meta["pipeline"]["name"] == name and meta["metrics"] == {"accuracy": 0.5}
    assert meta["pipeline"]["encoder"]["use"] == "perceiver"
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_truncated_checkpoint_gives_a_clear_error(tmp_path, cli):
    model = build_pipeline("tiny", registry_files=[TINY])
    path = tmp_path / "model.safetensors"
    save_checkpoint(path, model)
    data = path.read_bytes()
    for cut in (5, len(data) // 2, len(data) - 3):
        bad = tmp_path / f"cut{cut}.safetensors"
        bad.write_bytes(data[:cut])
        with pytest.raises(CheckpointError, match="not a readable safetensors file"):
            from_checkpoint(bad)
    result = cli("evaluate", "tiny", "--checkpoint", str(bad))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("perceiver: error: ") and "truncated or corrupted" in result.stderr


def test_foreign_or_missing_files_are_refused(tmp_path):
    from safetensors.torch import save_file

    other = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(other))
    with pytest.raises(CheckpointError, match="not a perceiver-checkpoint"):
        from_checkpoint(other)
    with pytest.raises(CheckpointError, match="does not exist"):
        from_checkpoint(tmp_path / "nope.safetensors")


def test_weights_that_do_not_fit_are_refused(tmp_path):
    model = build_pipeline("tiny", registry_files=[TINY])
    path = tmp_path / "m.safetensors"
    save_checkpoint(path, model)
    tensors, meta = ckpt.read_safetensors(path, ckpt.FORMAT)
    spec = json.loads(meta["pipeline"])
    spec["encoder"]["num_latents"] = 99  # metadata now describes another model
    meta["pipeline"] = json.dumps(spec)
    ckpt.atomic_save(tensors, path, meta)
    with pytest.raises(CheckpointError, match=r"does not fit the model .*: tensors .* of another shape "
                                              r"\(e.g. encoder.latents: \[16, 32\] in the file, \[99, 32\] here\)"):
        from_checkpoint(path)


def test_a_failed_write_keeps_the_previous_file(tmp_path, monkeypatch):
    model = build_pipeline("tiny", registry_files=[TINY])
    path = tmp_path / "model.safetensors"
    save_checkpoint(path, model, step=1)
    before = path.read_bytes()

    def crash(*args, **kwargs):
        Path(args[1]).write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(ckpt, "save_file", crash)
    with pytest.raises(CheckpointError, match="could not write .*: disk full .*the previous checkpoint there is "
                                              "unchanged"):
        save_checkpoint(path, model, step=2)
    assert path.read_bytes() == before
    assert list(tmp_path.iterdir()) == [path]


def test_tied_weights_are_saved_once_and_restored():
    lin = torch.nn.Linear(3, 3)
    state = {"a.weight": lin.weight, "b.weight": lin.weight, "a.bias": lin.bias}
    unique, aliases = ckpt._dedupe(state)
    assert set(unique) == {"a.weight", "a.bias"} and aliases == {"b.weight": "a.weight"}
