"""Fine-tuning: `perceiver train PIPELINE --init-from CHECKPOINT` (and `init_from` in a registry file) loads an
imported HF classifier's weights module by module, re-initialises the decoder for a new number of classes, freezes
what it is told to, says so in one line, and the loss falls on digits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from perceiver_core import RegistryError, load_registry
from perceiver_core.registry.file import resolve_table
from perceiver_core.runtime.transfer import freeze, init_weights

TINY = Path(__file__).parent / "tiny.toml"


def _toml(value) -> str:
    """A JSON value as a TOML inline value (tables inline, no nulls)."""
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items() if v is not None) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(value)


def test_init_from_loads_selected_modules_and_reports(tmp_path):
    from perceiver_core import build_from_spec, save_checkpoint
    from perceiver_core.config.train import InitFromConfig

    spec = load_registry([TINY], include_default=False).resolve("tiny")
    source = build_from_spec(spec)
    save_checkpoint(tmp_path / "src.safetensors", source)
    five = load_registry([TINY], include_default=False).resolve("tiny", ["task.num_classes=5"])
    from perceiver_core import BuildContext

    target = build_from_spec(five, BuildContext(dataset={"image_shape": (8, 8, 1)}))
    fresh_pre = {k: v.clone() for k, v in target.state_dict().items()}
    report = init_weights(target, InitFromConfig(checkpoint=str(tmp_path / "src.safetensors"), reinit=["preprocessor"]))
    state, src = target.state_dict(), source.state_dict()
    assert torch.equal(state["encoder.latents"], src["encoder.latents"])  # loaded
    assert torch.equal(state["decoder.query"], src["decoder.query"])  # same shape in the decoder: loaded
    assert not torch.equal(state["decoder.head.weight"], src["decoder.head.weight"][:5])  # [5, C] vs [10, C]: fresh
    assert torch.equal(state["decoder.head.weight"], fresh_pre["decoder.head.weight"])
    line = report.describe()
    assert line.startswith(f"init from {tmp_path / 'src.safetensors'}: loaded ") and "encoder (" in line
    assert "2 of another shape kept fresh (e.g. decoder.head.weight: [10, 32] in the file, [5, 32] here)" in line
    assert freeze(target, ["encoder"]) == ["encoder"]
    assert all(not p.requires_grad for n, p in target.named_parameters() if n.startswith("encoder."))
    assert all(p.requires_grad for n, p in target.named_parameters() if n.startswith("decoder."))


def test_init_from_in_a_registry_file_is_validated(write_registry):
    path = write_registry("""
        [pipelines.ft]
        extends = "digits"
        init_from = { checkpoint = "runs/base", reinit = ["decoder"], freeze = ["encodr"] }
    """)
    with pytest.raises(RegistryError, match=r"pipelines.ft.init_from.freeze.0: Input should be 'preprocessor'"):
        load_registry([path], include_default=False).resolve("ft")
    path.write_text('[pipelines.ft]\nextends = "digits"\ninit_from = "runs/base"\n')
    spec = load_registry([path], include_default=False).resolve("ft")
    assert spec.init_from.checkpoint == "runs/base" and spec.to_json()["init_from"] == {"checkpoint": "runs/base"}


@pytest.mark.slow
def test_imported_hf_classifier_fine_tuned_for_new_classes_on_digits(cli, tmp_path):
    transformers = pytest.importorskip("transformers", reason="needs HF transformers (the test extra)")
    torch.manual_seed(0)
    labels = {str(i): f"class {i}" for i in range(5)}  # 5 classes in the source model, 10 digits after
    config = transformers.PerceiverConfig(num_latents=16, d_latents=64, num_blocks=1, num_self_attends_per_block=2,
                                          num_self_attention_heads=4, num_cross_attention_heads=1, image_size=8,
                                          id2label=labels, label2id={v: int(k) for k, v in labels.items()})
    transformers.PerceiverForImageClassificationLearned(config).save_pretrained(tmp_path / "hf")
    imported = cli("import-hf", str(tmp_path / "hf"), "--out", str(tmp_path / "hf.safetensors"), "--json")
    assert imported.returncode == 0, imported.stderr
    assert json.loads(imported.stdout)["checkpoint"] == str(tmp_path / "hf.safetensors")  # import-hf --json
    spec = json.loads(cli("inspect", str(tmp_path / "hf.safetensors"), "--json").stdout)["spec"]

    # the imported architecture on digits: one grey channel, ten classes
    table = {"description": "the imported HF classifier fine-tuned on digits",
             "task": {"use": "classification", "num_classes": 10},
             "data": {"use": "image.digits", "batch_size": 64},
             "preprocessor": {**spec["preprocessor"], "mean": [0.0], "std": [1.0]},
             "position": spec["position"], "encoder": spec["encoder"], "decoder": spec["decoder"],
             "train": {"max_steps": 80, "lr": 1e-3, "log_every": 5, "warmup_steps": 5}, "backend": "cpu"}
    registry = tmp_path / "ft.toml"
    registry.write_text("[pipelines.ft]\n" + "".join(f"{k} = {_toml(v)}\n" for k, v in table.items()))
    out = tmp_path / "ft"
    result = cli("train", "ft", "--registry", str(registry), "--out", str(out), "--no-progress", "--json",
                 "--init-from", str(tmp_path / "hf.safetensors"), "--reinit", "decoder", "--freeze", "position",
                 env={"OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr
    report = [line for line in result.stderr.splitlines() if "init from" in line]
    assert len(report) == 1, result.stderr
    assert "loaded preprocessor (1), position (3), encoder (51); re-initialised preprocessor (1), decoder (21)" \
        in report[0], report[0]  # the conv bias fits, its weight (3 channels in, 1 here) does not
    assert "preprocessor.convnet.weight: [256, 3, 1, 1] in the file, [256, 1, 1, 1] here" in report[0]
    assert report[0].endswith("frozen: position")
    trained = json.loads(result.stdout)
    assert trained["init"]["loaded"]["encoder"] > 10 and trained["init"]["reinit"]["decoder"] > 0

    losses = [json.loads(line)["loss"] for line in (out / "metrics.jsonl").read_text().splitlines()
              if json.loads(line)["split"] == "train"]
    first, last = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
    assert last < first - 0.3, losses  # the loss falls
    assert trained["accuracy"] > 0.3, trained  # ten classes: chance is 0.1
    source, final = load_file(tmp_path / "hf.safetensors"), load_file(out / "model.safetensors")
    assert torch.equal(final["position.embedding"], source["position.embedding"])  # loaded and frozen
    assert not torch.equal(final["encoder.latents"], source["encoder.latents"])  # loaded and trained
    # the run records where it started: a resume does not load the weights again, and keeps position frozen
    assert json.loads((out / "pipeline.json").read_text())["init_from"]["reinit"] == ["decoder"]
    assert resolve_table("ft", json.loads((out / "pipeline.json").read_text()), "x").init_from.freeze == ["position"]
