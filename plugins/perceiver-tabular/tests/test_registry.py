"""The pipelines shipped with the plugin (perceiver_tabular/pipelines.toml) validates, builds and runs (once the plugin is pip-installed);
the slow test trains the wine pipeline through the CLI and checks its test accuracy."""

import json
import math
from importlib import metadata
from pathlib import Path

import pytest
import torch

REGISTRY = Path(__file__).resolve().parents[1] / "perceiver_tabular" / "pipelines.toml"  # shipped in the wheel


@pytest.fixture(autouse=True)
def _installed():
    try:
        metadata.distribution("perceiver-tabular")
    except metadata.PackageNotFoundError:
        pytest.skip("perceiver-tabular is not installed: registry files only see installed plugins (pip install -e .)")


def _model(pipeline):
    from perceiver_core import build_dataset, build_from_spec, load_registry

    registry = load_registry([REGISTRY], include_default=False)
    assert registry.validate_all() == []
    spec = registry.resolve(pipeline)
    dataset = build_dataset(spec)
    torch.manual_seed(0)
    return build_from_spec(spec, dataset=dataset).eval(), dataset


def _batch(model, examples):
    from perceiver_core import collate

    return collate([{**model.prepare(e), "label": e["label"]} for e in examples])


@pytest.mark.parametrize("pipeline, classes", [("wine", 3), ("breast-cancer", 2)])
def test_registry_snippet_builds_and_runs(pipeline, classes):
    model, dataset = _model(pipeline)
    batch = _batch(model, [dataset.examples("train")[i] for i in range(4)])
    with torch.no_grad():
        outputs = model(batch)  # [B, O, K]
    assert list(outputs.shape) == [4, 1, classes]
    assert len(model.predict(batch)) == 4


def test_the_encoder_ignores_missing_values():
    model, dataset = _model("wine")
    row = dataset.examples("test")[0]
    features = row["features"].astype(float).tolist()
    missing = dict(row, features=[math.nan if j == 3 else v for j, v in enumerate(features)])
    batch = _batch(model, [row, missing])
    with torch.no_grad():
        full, masked = model(batch)
        batch["values"][1, 3] = 7.0  # a value behind the mask must not matter
        assert torch.allclose(model(batch)[1], masked, atol=1e-6)
    assert not torch.allclose(full, masked, atol=1e-6)


@pytest.mark.slow
def test_wine_trains_to_a_sensible_accuracy(perceiver_cli, tmp_path):
    code, out, err = perceiver_cli("train", "wine", "--registry", str(REGISTRY), "--out", str(tmp_path / "wine"),
                                   "--no-progress", "--json")
    assert code == 0, err
    tests = [json.loads(line) for line in (tmp_path / "wine" / "metrics.jsonl").read_text().splitlines()
             if json.loads(line).get("split") == "test"]
    assert tests[-1]["accuracy"] >= 0.85, tests
