"""The framework as its users meet it (issue 10): shipped pipelines, per-pipeline requirements, the core's CPU
backend, install hints, inference from a checkpoint alone, resume that cannot change the experiment, and the small
things (collate, file modes, broken pipes, help, `--registry` only where it means something, no_weight_decay)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import perceiver_core
from perceiver_core import RegistryError, UserError, from_checkpoint, load_registry, train
from perceiver_core.plugins import components
from perceiver_core.plugins.manager import PluginManager

ROOT = Path(__file__).resolve().parents[1]
TINY = Path(__file__).parent / "tiny.toml"


def _spec(name="tiny", *overrides):
    return load_registry([TINY], include_default=False).resolve(name, overrides)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A finished `tiny` run folder (12 steps)."""
    out = tmp_path_factory.mktemp("run") / "tiny"
    train(_spec("tiny"), out, progress=False)
    return out


# -- installed, not only cloned ------------------------------------------------------------------------------------
def test_pipelines_come_from_the_plugins_that_ship_them(cli, tmp_path):
    result = cli("pipelines", "--json", "--presets", cwd=tmp_path)  # an empty folder: no registry.toml
    assert result.returncode == 0, result.stderr
    source = {r["name"]: r["source"] for r in json.loads(result.stdout)}
    assert source["digits"] == source["digits-permuted"] == source["imagenet-fourier"] == "perceiver-image"
    assert source["text-mlm-tiny"] == source["mlm-bytes"] == "perceiver-text"
    assert source["wine"] == "perceiver-tabular"
    text = cli("pipelines", cwd=tmp_path).stdout
    assert any(line.startswith("digits ") and line.endswith("[perceiver-image]") for line in text.splitlines())
    # the repository's registry file holds no first-party pipeline any more
    assert tomllib.loads((ROOT / "registry.toml").read_text()).get("pipelines", {}) == {}


def test_a_users_file_overrides_a_shipped_pipeline(write_registry):
    path = write_registry("""
        [pipelines.digits-permuted]
        extends = "digits"
        description = "mine"
    """)
    registry = load_registry([path], include_default=False)
    assert registry.resolve("digits-permuted").description == "mine"
    assert next(r for r in registry.describe() if r["name"] == "digits-permuted")["source"] == str(path)


def test_requires_are_per_pipeline_and_per_file(write_registry):
    path = write_registry("""
        [pipelines.needs]
        extends = "digits"
        requires = { perceiver-nonexistent = ">=1" }

        [pipelines.free]
        extends = "digits"
    """)
    registry = load_registry([path], include_default=False)
    assert registry.resolve("free").name == "free"  # another pipeline's requirement does not hold it back
    with pytest.raises(RegistryError, match=r":3: pipelines.needs.requires.perceiver-nonexistent: the plugin "
                                            r"perceiver-nonexistent is required but not installed"):
        registry.resolve("needs")
    other = write_registry('[requires]\nperceiver-nonexistent = ">=1"\n\n[pipelines.x]\nextends = "digits"\n',
                           name="other.toml")
    registry = load_registry([other], include_default=False)
    registry.resolve("digits")  # a file's [requires] binds that file's pipelines only
    with pytest.raises(RegistryError, match="perceiver-nonexistent is required"):
        registry.resolve("x")


def test_the_core_alone_has_a_cpu_backend_that_perceiver_cpu_refines():
    from perceiver_core.runtime.backends import select_backend

    core = PluginManager(autoload=False)
    backend = select_backend("auto", core)
    assert backend.name == "cpu" and backend.device().type == "cpu"
    assert core.registry.backends["cpu"].distribution == "perceiver-core"
    full = PluginManager()
    assert full.registry.backends["cpu"].distribution == "perceiver-cpu"
    assert not full.problems(), full.problems()  # a refinement, not a duplicate-name error
    cpu = next(r for r in full.reports if r.distribution == "perceiver-cpu")
    assert cpu.backends == ["cpu"]


def test_misspelt_first_party_names_get_did_you_mean(write_registry):
    path = write_registry("""
        [pipelines.x]
        extends = "digits"
        preprocessor = { use = "image.pixel" }
    """)
    with pytest.raises(RegistryError) as info:
        load_registry([path], include_default=False).resolve("x")
    assert "did you mean 'image.pixels'" in str(info.value) and "not installed" not in str(info.value)


def test_install_hints_name_what_really_installs(monkeypatch):
    assert components.install_hint("perceiver-image") == f"pip install {ROOT / 'plugins' / 'perceiver-image'}"
    monkeypatch.setattr(components, "source_checkout", lambda: None)  # as from wheels
    hint = components.install_hint("perceiver-text")
    assert 'pip install "perceiver-core[text]==0.1.0" --find-links' in hint
    assert "pip install perceiver-text" not in hint  # never a bare index name someone else could claim
    assert "no release of perceiver includes perceiver-multimodal" in components.install_hint("perceiver-multimodal")
    assert 'pip install "perceiver-core[audio]==0.1.0" --find-links' in components.install_hint("perceiver-audio")


def test_every_distribution_states_its_license():
    assert "Apache License" in (ROOT / "LICENSE").read_text()
    projects = [ROOT, *sorted(p.parent for p in (ROOT / "plugins").glob("*/pyproject.toml"))]
    for project in projects:
        meta = tomllib.loads((project / "pyproject.toml").read_text())["project"]
        assert meta["license"] == "Apache-2.0" and meta["license-files"] == ["LICENSE"], project
        assert (project / "LICENSE").read_text() == (ROOT / "LICENSE").read_text(), project
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert {"image", "text", "tabular", "cpu", "cuda", "mps", "all"} <= set(extras)


# -- inference from a checkpoint alone ------------------------------------------------------------------------------
def test_from_checkpoint_takes_a_run_folder_and_predicts_raw_examples(run, tmp_path):
    from perceiver_image.configs import DigitsConfig
    from perceiver_image.digits import DigitsDataset

    model = perceiver_core.from_checkpoint(run)  # the folder, not only its model.safetensors
    examples = [DigitsDataset(DigitsConfig()).examples("test")[i] for i in range(5)]
    batch = perceiver_core.collate([model.prepare(x) for x in examples])
    logits = model.logits(batch)
    assert logits.shape == (5, 10)  # [B, K], not [B, 1, K]
    predictions = model.predict(examples)
    assert [p["label"] for p in predictions] == logits.argmax(-1).tolist()
    pre = model.preprocessor  # a bare tensor is a normalised image batch [B, C, H, W], as HF models take
    images = torch.stack([((torch.as_tensor(x["image"]) - pre.mean) / pre.std).permute(2, 0, 1) for x in examples])
    assert torch.equal(model.logits(images), logits)  # a bare tensor for a single-input model
    np.save(tmp_path / "a.npy", examples[0]["image"])
    assert model.predict_files([tmp_path / "a.npy"]) == predictions[:1]


def test_a_bare_tensor_for_a_model_that_needs_a_mapping_says_what_it_expects(tmp_path):
    table = json.loads(json.dumps(load_registry(include_default=False).resolve("text-mlm-tiny").to_json()))
    from perceiver_core.registry.file import resolve_table

    model = perceiver_core.build_from_spec(resolve_table("t", table, "test"), perceiver_core.BuildContext())
    with pytest.raises(UserError, match=r"takes a batch mapping .* not a bare tensor"):
        model(torch.zeros(2, 50, dtype=torch.long))


@pytest.mark.slow
def test_evaluate_and_predict_from_the_checkpoint_alone(cli, run, tmp_path):
    ev = cli("evaluate", "--checkpoint", str(run), "--json", cwd=tmp_path)  # no PIPELINE, no registry file
    assert ev.returncode == 0, ev.stderr
    assert "note:" not in ev.stderr, ev.stderr  # (it said "used its model with the data of None")
    assert json.loads(ev.stdout)["accuracy"] == json.loads((run / "config.json").read_text())["metrics"]["accuracy"]
    wrong = cli("evaluate", "digits", "--checkpoint", str(run), cwd=tmp_path)
    assert wrong.returncode == 2
    assert wrong.stderr.strip() == (f"perceiver: error: {run} was trained as pipeline 'tiny', not 'digits'; leave "
                                    "PIPELINE out (the checkpoint names its pipeline) or change the data with --set "
                                    "data.use=...")
    model_change = cli("evaluate", "--checkpoint", str(run), "--set", "encoder.num_latents=3", cwd=tmp_path)
    assert model_change.returncode == 2 and "may change only data.*, train.* and backend" in model_change.stderr
    pr = cli("predict", "--checkpoint", str(run), "test:0", "test:1", "--json", cwd=tmp_path)
    assert pr.returncode == 0, pr.stderr
    assert [r["input"] for r in json.loads(pr.stdout)] == ["test:0", "test:1"]


def test_inspect_and_config_json(capsys, run):
    from perceiver_core.commands.cli import main

    config = json.loads((run / "config.json").read_text())  # plain JSON beside the weights
    assert config["pipeline"]["name"] == "tiny" and config["step"] == 12
    model = from_checkpoint(run)
    count = sum(t.numel() for t in model.state_dict().values())
    assert config["num_parameters"] == count
    assert main(["inspect", str(run / "model.safetensors"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["pipeline"] == "tiny" and info["num_parameters"] == count and info["step"] == 12
    assert info["plugins"]["perceiver-image"] == "0.1.0" and set(info["metrics"]) >= {"loss", "accuracy"}
    assert main(["inspect", str(run)]) == 0
    text = capsys.readouterr().out
    assert f"parameters  {count:,}" in text and "pipeline    tiny" in text


# -- resume ---------------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_resume_restores_the_runs_pipeline_and_refuses_changes(cli, tmp_path):
    common = ["--no-progress", "--set", "data.batch_size=200", "--set", "train.max_steps=14"]
    full, part = tmp_path / "full", tmp_path / "part"
    assert cli("train", "tiny", "--registry", str(TINY), "--out", str(full), *common).returncode == 0
    result = cli("train", "tiny", "--registry", str(TINY), "--out", str(part), "--stop-after", "5", *common)
    assert result.returncode == 0, result.stderr
    # no registry file now: the run's pipeline.json is the pipeline
    refused = cli("train", "--resume", str(part), "--set", "train.lr=0.1", "--max-steps", "20", cwd=tmp_path)
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1
    assert "these flags change the run's pipeline: train.lr (0.003 -> 0.1), train.max_steps (14 -> 20)" \
        in refused.stderr
    other = cli("train", "digits", "--resume", str(part), cwd=tmp_path)
    assert other.returncode == 2 and "that run trains pipeline 'tiny', not 'digits'" in other.stderr
    resumed = cli("train", "--resume", str(part), "--no-progress", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    a, b = load_file(full / "model.safetensors"), load_file(part / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # bit for bit


@pytest.mark.parametrize("flags, message", [
    (["--max-steps", "0"], "--max-steps must be a positive number of steps, got 0"),
    (["--stop-after", "-1"], "--stop-after must be a positive number of steps, got -1"),
    (["--set", "train.max_steps=0"], "train.max_steps: Input should be greater than or equal to 1"),
])
def test_out_of_range_steps_are_errors(capsys, tmp_path, flags, message):
    from perceiver_core.commands.cli import main

    assert main(["train", "tiny", "--registry", str(TINY), "--out", str(tmp_path / "r"), *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


# -- small things ---------------------------------------------------------------------------------------------------
def test_collate_has_default_collate_semantics():
    items = [{"x": np.float32(1.5), "n": np.int64(2), "a": np.ones(3, np.float32), "meta": {"k": 1, "s": "a"},
              "f": 0.5, "i": 3, "s": "u"},
             {"x": np.float32(2.5), "n": np.int64(4), "a": np.zeros(3, np.float32), "meta": {"k": 2, "s": "b"},
              "f": 1.5, "i": 4, "s": "v"}]
    batch = perceiver_core.collate(items)
    assert batch["x"].dtype == torch.float32 and batch["x"].tolist() == [1.5, 2.5]
    assert batch["n"].dtype == torch.int64 and batch["a"].shape == (2, 3)
    assert torch.equal(batch["meta"]["k"], torch.tensor([1, 2])) and batch["meta"]["s"] == ["a", "b"]
    assert batch["f"].dtype == torch.float32 and batch["i"].dtype == torch.int64 and batch["s"] == ["u", "v"]


def test_checkpoints_honour_the_umask_and_are_fsynced(tmp_path, monkeypatch):
    from perceiver_core.runtime import checkpoint

    synced = []
    real = os.fsync
    monkeypatch.setattr(checkpoint.os, "fsync", lambda fd: (synced.append(fd), real(fd)))
    old = os.umask(0o022)
    try:
        checkpoint.atomic_save({"w": torch.ones(2)}, tmp_path / "a.safetensors", {"format": "x"})
    finally:
        os.umask(old)
    assert (tmp_path / "a.safetensors").stat().st_mode & 0o777 == 0o644
    assert len(synced) >= 1


def test_schema_into_a_closed_pipe_is_quiet():
    """`perceiver schema | head`: the reader leaves early; the command ends quietly (no "Broken pipe")."""
    proc = subprocess.Popen([sys.executable, "-m", "perceiver_core", "schema"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    proc.stdout.close()  # no reader left before it writes: every write fails with EPIPE
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 0 and err == "", err


def test_perceiver_alone_prints_help_and_help_has_examples(cli):
    alone = cli()
    assert alone.returncode == 0 and "usage: perceiver" in alone.stdout and "examples:" in alone.stdout
    train_help = cli("train", "--help").stdout
    assert "examples:" in train_help and "perceiver train --resume runs/digits" in train_help


@pytest.mark.parametrize("command", ["components", "backends", "schema", "inspect x", "evaluate --checkpoint x"])
def test_registry_is_offered_only_where_it_means_something(cli, command):
    result = cli(*command.split(), "--registry", "r.toml")
    assert result.returncode == 2 and "unrecognized arguments: --registry" in result.stderr
    assert "--registry" in cli("train", "--help").stdout and "--registry" in cli("pipelines", "--help").stdout


def test_weight_decay_exclusions_follow_no_weight_decay():
    from torch import nn

    from perceiver_core.runtime.optim import param_groups

    class PluginPart(nn.Module):
        def __init__(self):
            super().__init__()
            self.codebook = nn.Parameter(torch.zeros(4, 3))  # a plugin's learned table: no "embedding" in the name
            self.query_proj = nn.Linear(3, 3)  # a matrix whose name merely contains "query": decayed

        def no_weight_decay(self):
            return {"codebook"}

    model = nn.Module()
    model.part = PluginPart()
    decay, no_decay = param_groups(model, 0.1)
    assert any(p is model.part.codebook for p in no_decay["params"])
    assert any(p is model.part.query_proj.weight for p in decay["params"])
    tiny = perceiver_core.build_from_spec(_spec("tiny"))
    names = {id(p): n for n, p in tiny.named_parameters()}
    excluded = {names[id(p)] for p in param_groups(tiny, 0.1)[1]["params"] if p.dim() >= 2}
    assert excluded == {"encoder.latents", "decoder.query"}


def test_digits_come_from_load_digits_and_images_through_pillow(tmp_path):
    from PIL import Image
    from sklearn.datasets import load_digits

    from perceiver_image.common import read_image
    from perceiver_image.digits import load_digits_arrays

    images, labels = load_digits_arrays()
    x, y = load_digits(return_X_y=True)
    assert np.array_equal(labels, y) and np.allclose(images.reshape(len(x), -1) * 16, x)
    pixels = (np.arange(64, dtype=np.uint8) * 4).reshape(8, 8)
    Image.fromarray(pixels).save(tmp_path / "d.pgm")
    assert torch.allclose(read_image(str(tmp_path / "d.pgm"))["image"][..., 0], torch.from_numpy(pixels / 255.0).float())
    (tmp_path / "bad.pgm").write_bytes(b"P5\n8 8\n255\n")
    with pytest.raises(UserError, match="bad.pgm: corrupt or truncated image"):
        read_image(str(tmp_path / "bad.pgm"))


# -- registry validation -------------------------------------------------------------------------------------------
def test_every_error_of_a_pipeline_comes_out_at_once(cli, write_registry):
    path = write_registry("""
        [pipelines.x]
        extends = "digits"
        encoder = { use = "perceiver", num_latent = 8, latent_channels = "wide" }
        train = { epochs = 0 }
        backend = "tpu"
    """)
    with pytest.raises(RegistryError) as info:
        load_registry([path], include_default=False).resolve("x")
    assert "(and 3 more errors: `perceiver validate` lists them)" in str(info.value)
    result = cli("validate", str(path))
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 4, result.stderr
    text = result.stderr
    assert f"{path}:3: pipelines.x.encoder.num_latent: unknown key (did you mean 'num_latents'?)" in text
    assert "pipelines.x.encoder.latent_channels: Input should be a valid integer" in text
    assert f"{path}:4: pipelines.x.train.epochs: Input should be greater than or equal to 1" in text
    assert f"{path}:5: pipelines.x.backend: unknown backend 'tpu'" in text


def test_schema_comes_from_the_validating_models():
    jsonschema = pytest.importorskip("jsonschema")
    from perceiver_core.registry.schema import registry_schema

    schema = registry_schema()
    doc = {"pipelines": {"d": {"extends": "digits", "encoder": "perceiver", "position": "none",
                               "init_from": "runs/base", "backend": "cpu",
                               "requires": {"perceiver-image": ">=0.1"}}}}
    jsonschema.validate(doc, schema)  # documented forms: the shorthand, init_from as a path, per-pipeline requires
    for bad in ({"backend": "tpu"}, {"encoder": "perceiverr"}, {"encoder": {"use": "perceiver", "num_latent": 3}}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({"pipelines": {"d": bad}}, schema)


def test_validate_reads_its_files_together(cli, write_registry):
    base = write_registry('[pipelines.mine]\nextends = "digits"\ndescription = "base"\n', name="a.toml")
    child = write_registry('[pipelines.child]\nextends = "mine"\n', name="b.toml")
    result = cli("validate", str(base), str(child), "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)["pipelines"] == ["child", "mine"]
