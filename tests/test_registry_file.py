"""A corpus of malformed registry files: each must give one message with file:line, the key path, and a hint."""

import json
import textwrap
from pathlib import Path

import pytest

from perceiver_core import RegistryError, load_registry

VALID = """
[pipelines.base]
description = "a valid pipeline"
task = { use = "classification", num_classes = 10 }
data = { use = "image.digits", batch_size = 16 }
preprocessor = { use = "image.pixels" }
position = { use = "fourier", num_bands = 4 }
encoder = { use = "perceiver", num_latents = 8, latent_channels = 32, num_blocks = 1, self_attends_per_block = 1, self_attend_heads = 2 }
decoder = { use = "classification" }
train = { epochs = 1 }
"""

# (name, extra text appended after VALID or replacing it, pipeline to resolve, expected line, key, fragments)
CORPUS = [
    ("toml-syntax", VALID + "\n[pipelines.x]\nencoder = { use = \n", None, 12, None, ["not valid TOML"]),
    ("top-level-typo", VALID + "\n[pipeline.x]\ndescription = 'd'\n", None, 11, "pipeline",
     ["unknown top-level table", "did you mean 'pipelines'"]),
    ("pipeline-key-typo", VALID + "\n[pipelines.x]\nextends = 'base'\nencodr = { use = 'perceiver' }\n", "x", 13,
     "pipelines.x.encodr", ["unknown key", "did you mean 'encoder'"]),
    ("component-typo", VALID + "\n[pipelines.x]\nextends = 'base'\nencoder = { use = 'perciever' }\n", "x", 13,
     "pipelines.x.encoder.use", ["unknown encoder 'perciever'", "did you mean 'perceiver'"]),
    ("config-key-typo", VALID + "\n[pipelines.x]\nextends = 'base'\nencoder = { use = 'perceiver', num_latent = 4 }\n",
     "x", 13, "pipelines.x.encoder.num_latent", ["unknown key", "did you mean 'num_latents'"]),
    ("wrong-type", VALID + "\n[pipelines.x]\nextends = 'base'\n\n[pipelines.x.encoder]\nuse = 'perceiver'\n"
     "num_latents = 'many'\n", "x", 16, "pipelines.x.encoder.num_latents", ["valid integer", "'many'", "expected int"]),
    ("missing-required", VALID.replace("num_classes = 10", "label_smoothing = 0.1"), "base", 3,
     "pipelines.base.task.num_classes", ["missing required key", "number of classes"]),
    ("extends-unknown", VALID + "\n[pipelines.x]\nextends = 'bsae'\n", "x", 12, "pipelines.x.extends",
     ["unknown pipeline 'bsae'", "did you mean 'base'"]),
    ("extends-cycle", VALID + "\n[pipelines.x]\nextends = 'y'\n[pipelines.y]\nextends = 'x'\n", "x", 12,
     "pipelines.x.extends", ["cycle: x -> y -> x"]),
    ("missing-section", VALID.replace('decoder = { use = "classification" }\n', ""), "base", 1,
     "pipelines.base.decoder", ["missing", "registered decoders: ", "classification, "]),
    ("missing-plugin", VALID + "\n[pipelines.x]\nextends = 'base'\npreprocessor = { use = 'multimodal.fusion' }\n", "x",
     13, "pipelines.x.preprocessor.use", ["perceiver-multimodal, which is not installed", "no release of perceiver includes perceiver-multimodal"]),
    ("requires-missing", "[requires]\nperceiver-nonexistent = '>=1'\n" + VALID, "base", 2,
     "requires.perceiver-nonexistent", ["not installed", "no release of perceiver includes perceiver-nonexistent"]),
    ("requires-version", "[requires]\nperceiver-image = '>=99'\n" + VALID, "base", 2, "requires.perceiver-image",
     ["'>=99' is required", "perceiver-image 0.1.0 is installed but '>=99' is required"]),
    ("literal", VALID.replace("train = { epochs = 1 }", "train = { epochs = 1, optimizer = 'sgd' }"), "base", 9,
     "pipelines.base.train.optimizer", ["'adamw' or 'lamb'", "'sgd'"]),
    ("validator", VALID.replace("num_blocks = 1", "num_blocks = 1, num_cross_attends = 3"), "base", 7,
     "pipelines.base.encoder.num_cross_attends", ["num_cross_attends (3) cannot exceed num_blocks (1)"]),
    ("inherited", VALID.replace("num_bands = 4", "num_bands = 0") + "\n[pipelines.x]\nextends = 'base'\n", "x", 6,
     "pipelines.base.position.num_bands", ["greater than or equal to 1"]),
    ("bad-backend", VALID + "backend = 3\n", "base", 10, "pipelines.base.backend", ["backend name"]),
]


@pytest.mark.parametrize("name, text, pipeline, line, key, fragments", CORPUS, ids=[c[0] for c in CORPUS])
def test_malformed_registry_gives_file_line_key_and_hint(tmp_path, name, text, pipeline, line, key, fragments):
    path = tmp_path / f"{name}.toml"
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    with pytest.raises(RegistryError) as info:
        registry = load_registry([path], include_default=False)
        registry.resolve(pipeline or "base")
    message = str(info.value)
    assert message.startswith(f"{path}:{line}: "), message
    if key:
        assert f": {key}: " in message, message
    for fragment in fragments:
        assert fragment in message, message
    assert "\n" not in message


def test_valid_file_resolves_with_defaults_and_extends(tmp_path):
    path = tmp_path / "ok.toml"
    path.write_text(VALID + "\n[pipelines.x]\nextends = 'base'\nencoder = { use = 'perceiver', num_latents = 4 }\n")
    spec = load_registry([path], include_default=False).resolve("x")
    enc = spec["encoder"].config
    assert (enc.num_latents, enc.latent_channels) == (4, 32)  # merged key by key with the parent
    assert spec["position"].config.num_bands == 4
    assert spec.train.lr == 1e-3  # default filled in
    json.dumps(spec.to_json())


def test_set_overrides_are_validated(tmp_path):
    path = tmp_path / "ok.toml"
    path.write_text(VALID)
    registry = load_registry([path], include_default=False)
    spec = registry.resolve("base", ["train.epochs=3", "encoder.num_latents=12", "preprocessor.permute_seed=5"])
    assert (spec.train.epochs, spec["encoder"].config.num_latents) == (3, 12)
    assert spec["preprocessor"].config.permute_seed == 5
    with pytest.raises(RegistryError, match=r"pipelines.base.train.epochs: Input should be a valid integer"):
        registry.resolve("base", ["train.epochs=many"])
    with pytest.raises(RegistryError, match=r"expected key.path=value"):
        registry.resolve("base", ["train.epochs"])


def test_presets_can_be_extended_and_named(tmp_path):
    path = tmp_path / "ok.toml"
    path.write_text("[pipelines.mine]\nextends = 'imagenet-fourier'\ntrain = { epochs = 2 }\n")
    registry = load_registry([path], include_default=False)
    assert "mine" in registry.names() and "imagenet-fourier" not in registry.names()  # presets are not pipelines
    assert next(r for r in registry.describe(presets=True) if r["name"] == "imagenet-fourier")["source"] == \
        "perceiver-image"  # the plugin that owns its components ships it
    spec = registry.resolve("mine")
    assert spec["encoder"].config.num_latents == 512 and spec.train.epochs == 2
    assert registry.resolve("imagenet-fourier")["position"].config.num_bands == 64
    assert any(r["name"] == "imagenet-fourier" and r["preset"] for r in registry.describe(presets=True))


def test_unknown_pipeline_suggests(tmp_path):
    path = tmp_path / "ok.toml"
    path.write_text(VALID)
    with pytest.raises(RegistryError, match=r"no pipeline named 'bsae' \(did you mean 'base'\?\)"):
        load_registry([path], include_default=False).resolve("bsae")


def test_validate_cli_reports_and_exits_2(cli, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(VALID.replace("num_latents = 8", "num_latent = 8"))
    result = cli("validate", str(bad))
    assert result.returncode == 2
    assert f"{bad}:8: pipelines.base.encoder.num_latent: unknown key (did you mean 'num_latents'?)" in result.stderr
    assert "Traceback" not in result.stderr
    good = tmp_path / "good.toml"
    good.write_text(VALID)
    result = cli("validate", str(good), "--json")
    assert result.returncode == 0 and json.loads(result.stdout)["valid"] is True


def test_installed_pipelines_are_valid(cli):
    result = cli("validate", "--json")  # no file: every pipeline the installed plugins ship, and ./registry.toml
    assert result.returncode == 0, result.stdout + result.stderr
    assert {"digits", "digits-permuted", "text-mlm-tiny", "wine"} <= set(json.loads(result.stdout)["pipelines"])


def test_schema_lists_components_without_importing_torch(cli):
    result = cli("schema")
    assert result.returncode == 0, result.stderr
    schema = json.loads(result.stdout)
    text = json.dumps(schema)
    for name in ("perceiver", "fourier", "image.pixels", "image.digits", "classification"):
        assert f'"{name}"' in text
    probe = cli("schema", python=[__import__("sys").executable, "-X", "importtime"])
    assert " torch" not in probe.stderr


def test_validate_takes_set_as_train_does(tmp_path, capsys):
    """`validate --set` applies the overrides to every pipeline it validates, with train's parser and train's
    errors: what validates with --set trains with the same --set, and what train refuses validate refuses alike."""
    from perceiver_core.commands.cli import main

    registry = tmp_path / "r.toml"
    TINY = Path(__file__).parent / "tiny.toml"
    registry.write_text(TINY.read_text().replace("self_attend_heads = 2", "self_attend_heads = 3"))
    assert main(["validate", str(registry)]) == 2  # 32 latent channels do not split into 3 heads
    capsys.readouterr()
    assert main(["validate", str(registry), "--set", "encoder.self_attend_heads=4"]) == 0
    assert capsys.readouterr().out.startswith("ok: 2 pipeline(s): tiny, tiny-perceiver")
    bad = ["--set", "train.lr=1e6"]
    assert main(["validate", str(TINY), *bad]) == 2
    validated = capsys.readouterr().err.splitlines()
    assert main(["train", "tiny", "--registry", str(TINY), "--out", str(tmp_path / "run"), *bad]) == 2
    trained = capsys.readouterr().err.strip()
    assert trained == f"perceiver: error: {validated[0]}"
    assert validated[0].startswith("--set train.lr=1e6: pipelines.tiny.train.lr: Input should be less than or equal")
    assert validated[1].startswith("--set train.lr=1e6: pipelines.tiny-perceiver.train.lr:")
