"""Several inputs in one model: packing, the multimodal decoder and task, subsampled and chunked decoding,
registry validation, checkpoints, streaming and compiled paths (the demo pipeline `digits-label` of
perceiver-image: an 8x8 digit and its label)."""

from __future__ import annotations

import json

import pytest
import torch

from perceiver_core import from_checkpoint
from perceiver_core.byte_array import ByteArray
from perceiver_core.data.loader import collate
from perceiver_core.errors import RegistryError
from perceiver_core.model.build import build_pipeline
from perceiver_core.model.packing import Packing
from perceiver_core.model.pipeline import build_dataset
from perceiver_core.model.preprocessors.patches import grid_patches
from perceiver_core.registry.file import load_registry, resolve_table
from perceiver_core.runtime.checkpoint import save_checkpoint


def _model(seed=0, **sets):
    torch.manual_seed(seed)
    return build_pipeline("digits-label", overrides=[f"{k}={v}" for k, v in sets.items()])


def _batch(model, n=5):
    dataset = build_dataset(model.spec)
    examples = [dataset.examples("test")[i] for i in range(n)]
    batch = collate([model.prepare(e) for e in examples])
    batch["label"] = torch.tensor([e["label"] for e in examples])
    return batch


def test_packing_order_widths_padding_and_segments():
    torch.manual_seed(0)
    packing = Packing({"label": 10, "audio": 7, "image": 12}, min_padding=4)
    assert packing.names == ["audio", "image", "label"] and packing.width == 16
    assert {k: tuple(v.shape) for k, v in packing.state_dict().items()} == {
        "padding.audio": (1, 9), "padding.image": (1, 4), "padding.label": (1, 6)}
    parts = {"label": ByteArray(torch.randn(2, 1, 10), (1,)), "audio": ByteArray(torch.randn(2, 6, 7), (6,)),
             "image": ByteArray(torch.randn(2, 12, 12), (3, 4))}
    packed = packing([(n, parts[n], None) for n in packing.names]).materialise()
    assert packed.data.shape == (2, 19, 16) and packed.index_shape == (19,)
    assert [(s.modality, s.start, s.index_shape) for s in packed.segments] == [
        ("audio", 0, (6,)), ("image", 6, (3, 4)), ("label", 18, (1,))]
    assert torch.equal(packed.data[:, :6, :7], parts["audio"].data)
    assert torch.equal(packed.data[:, 6:18, :12], parts["image"].data)
    assert torch.equal(packed.data[:, :6, 7:], packing.padding["audio"].expand(2, 6, -1))  # its own vector
    assert torch.equal(packed.data[:, 18:, 10:], packing.padding["label"].expand(2, 1, -1))
    image = packed.segment("image")  # split back: its span, its own index shape
    assert image.index_shape == (3, 4) and torch.equal(image.data[..., :12], parts["image"].data)
    with pytest.raises(Exception, match="no segment 'video'; segments: audio, image, label"):
        packed.segment("video")


def test_mask_tokens_replace_elements_with_their_probability():
    torch.manual_seed(0)
    packing = Packing({"a": 3, "b": 5}, min_padding=0, mask={"a": (1.0, 0.0), "b": (0.5, 0.5)})
    parts = [("a", ByteArray(torch.randn(4, 10, 3), (10,)), None),
             ("b", ByteArray(torch.randn(4, 2000, 5), (2000,)), None)]
    packed = packing(parts).materialise().data
    assert torch.equal(packed[:, :10], packing.mask["a"].expand(4, 10, -1))  # p = 1: every element hidden
    hidden = (packed[:, 10:] == packing.mask["b"]).all(-1).float().mean().item()
    assert 0.45 < hidden < 0.55
    packing.eval()  # evaluation probabilities: a is shown
    assert torch.equal(packing(parts).materialise().data[:, :10, :3], parts[0][1].data)
    never = Packing({"a": 3, "b": 5}, mask={"a": (0.0, 1.0)}).train()
    out = never(parts).materialise().data
    assert torch.equal(out[:, :10, :3], parts[0][1].data)  # p = 0 in training: nothing hidden
    out.sum().backward()  # ... but the token is in the graph: a zero gradient, as DDP needs of every parameter
    assert never.mask["a"].grad is not None and not never.mask["a"].grad.any()


def test_one_input_with_nothing_to_add_passes_through():
    torch.manual_seed(0)
    assert Packing({"image": 19}).passthrough and not Packing({"image": 19}).state_dict()
    padded = Packing({"image": 19}, min_padding=3)
    assert not padded.passthrough and padded.width == 22


def test_an_inputs_table_of_one_input_names_its_keys_after_it(write_registry):
    from perceiver_core.model.pipeline import build_from_spec

    path = write_registry("""
        [pipelines.one-table]
        task = { use = "multimodal", outputs = { image = { loss = "mse", target = "image.pixels" } } }
        data = { use = "image.digits" }
        encoder = { use = "perceiver", num_latents = 8, latent_channels = 16, num_blocks = 1 }
        decoder = { use = "multimodal", outputs = { image = { query = "fourier", num_bands = 4 } } }
        [pipelines.one-table.inputs.image]
        preprocessor = { use = "image.pixels" }
        position = { use = "fourier", num_bands = 4 }
        """)
    torch.manual_seed(0)
    model = build_from_spec(load_registry([path], include_default=False).resolve("one-table")).eval()
    assert model.packing.passthrough and model.context.index_shape == (8, 8)  # nothing packed: the input as it is
    assert set(model.context.inputs) == {"image"} and "image" in dict(model.position.named_children())
    batch = _batch(model, 2)
    assert set(batch) == {"image.pixels", "label"}
    with torch.no_grad():
        assert model(batch)["image"].shape == (2, 64, 1)


def test_multi_input_pipeline_shape_context_and_parameters():
    model = _model()
    assert isinstance(model.preprocessor.image, torch.nn.Module) and set(model.position) == {"image", "label"}
    ctx = model.context
    assert ctx.index_shape == (65,) and ctx.input_channels == max(1 + 18, 10) + 4
    assert ctx.inputs["image"]["position_channels"] == 18 and ctx.inputs["label"]["channels"] == 10
    keys = set(model.state_dict())
    assert {"packing.padding.image", "packing.padding.label", "packing.mask.label"} <= keys
    assert "packing.mask.image" not in keys  # no mask probability: no mask token
    batch = _batch(model)
    model.eval()
    with torch.no_grad():
        out = model(batch)
    assert out["image"].shape == (5, 64, 1) and out["label"].shape == (5, 1, 10)
    packed = model.embed(batch)
    assert [s.modality for s in packed.segments] == ["image", "label"]
    assert torch.equal(packed.data[:, 64], model.packing.mask["label"][0].expand(5, -1))  # hidden in evaluation


def test_chunked_decoding_equals_all_at_once():
    model = _model().eval()
    batch = _batch(model)
    with torch.no_grad():
        encoded, byte_array = model.encode(batch)
        model.decoder.config.chunk_size = None
        whole = model.decode(encoded, byte_array)
        for chunk in (1, 7, 30, 64):
            model.decoder.config.chunk_size = chunk
            parts = model.decode(encoded, byte_array)
            for name in whole:
                err = ((parts[name] - whole[name]).abs().max() / whole[name].abs().max()).item()
                assert err < 1e-5, (chunk, name, err)


def test_subsampled_output_points_are_rows_of_the_full_output():
    model = _model().eval()
    batch = _batch(model)
    idx = torch.tensor([0, 5, 17, 63])
    with torch.no_grad():
        encoded, byte_array = model.encode(batch)
        full = model.decode(encoded, byte_array)
        some = model.decode(encoded, byte_array, {"image": idx})
    assert torch.allclose(some["image"], full["image"][:, idx], atol=1e-6)
    assert torch.equal(some["image.indices"], idx) and some["label"].shape == (5, 1, 10)
    loss = model.task.loss(some, batch)  # targets picked at the decoded points
    want = ((some["image"] - batch["image.pixels"][:, idx]) ** 2).mean() + 0.1 * torch.nn.functional.cross_entropy(
        some["label"][:, 0], batch["label"])
    assert torch.allclose(loss, want)


def test_input_queries_read_their_own_packed_elements():
    model = _model(**{"decoder.outputs.label.query": "input"}).eval()
    assert model.decoder.reads_inputs and model.decoder.queries["label"].num_channels == 23
    batch = _batch(model)
    with torch.no_grad():
        out = model(batch)
        encoded, array = model.encode(batch)
        queries = model.decoder.build_queries("label", encoded, array, torch.tensor([0]))
    assert out["label"].shape == (5, 1, 10)
    assert torch.equal(queries[..., :23], array.data[:, 64:65])  # the label's (masked) element


def test_random_output_points_in_training():
    model = _model(**{"decoder.outputs.image.train_points": 16}).train()
    out = model(_batch(model))
    assert out["image"].shape == (5, 16, 1) and out["image.indices"].unique().numel() == 16
    assert "label.indices" not in out


def test_checkpoint_round_trip(tmp_path):
    model = _model().eval()
    save_checkpoint(tmp_path / "m.safetensors", model)
    loaded = from_checkpoint(tmp_path / "m.safetensors")
    assert loaded.spec.to_json() == model.spec.to_json()
    batch = _batch(model)
    with torch.no_grad():
        a, b = model(batch), loaded(batch)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert loaded.predict([{"image": batch["image.pixels"][0].reshape(8, 8, 1).numpy() * 0.5 + 0.5}])[0]["label"]
    from perceiver_core.runtime.checkpoint import inspect_checkpoint
    components = inspect_checkpoint(tmp_path / "m.safetensors")["components"]
    assert components["inputs.image"] == "image.pixels + fourier" and components["inputs.label"] == "label + none"


def test_streamed_chunked_encoding_equals_the_plain_path(monkeypatch):
    """In chunked inference each chunk of the packed input is computed from its inputs' rows (their own position
    features, padding, mask tokens): the packed array is never materialised, and the result is the plain path's."""
    from perceiver_core.model.packing import PackedStream

    plain = _model(**{"encoder.cross_attend_chunk_keys": 0}).eval()
    chunked = _model(**{"encoder.cross_attend_chunk_keys": 7}).eval()
    chunked.load_state_dict(plain.state_dict())
    batch = _batch(plain)
    with torch.no_grad():
        a = plain(batch)
        stream = chunked.stream(batch)
        rows = torch.cat([stream.chunk(i, min(i + 7, 65))[0] for i in range(0, 65, 7)], dim=1)
        assert torch.equal(rows, stream.materialise().data)  # chunks are the packed array's rows exactly
        monkeypatch.setattr(PackedStream, "materialise", lambda self: pytest.fail("materialised while chunked"))
        b = chunked(batch)
    for k in a:
        assert ((a[k] - b[k]).abs().max() / a[k].abs().max()).item() < 1e-5


@pytest.mark.slow
def test_compiled_model_gives_the_same_outputs():
    """A multi-input model traces whole (dynamo with the eager backend: the graph, not the kernels, is what
    packing could break)."""
    model = _model().eval()
    batch = _batch(model)
    with torch.no_grad():
        want, got = model(batch), torch.compile(model, backend="eager")(batch)
    assert all(torch.allclose(got[k], want[k], atol=1e-6) for k in want)


@pytest.mark.slow
def test_regionally_compiled_model_gives_the_same_outputs():
    """Regional compilation (each attention block, as training compiles) of a multi-input model."""
    from perceiver_core.model.layers.compile import compile_model

    model = _model().eval()
    batch = _batch(model)
    with torch.no_grad():
        want = model(batch)
        got = compile_model(_model().eval(), {"backend": "eager"}, "regional")(batch)
    assert all(torch.allclose(got[k], want[k], atol=1e-6) for k in want)


def test_spec_round_trips_through_json():
    spec = load_registry(include_default=False).resolve("digits-label")
    table = spec.to_json()
    assert list(table["inputs"]) == ["image", "label"] and "preprocessor" not in table
    again = resolve_table(spec.name, json.loads(json.dumps(table)), "checkpoint")
    assert again.to_json() == table


def test_registry_errors_name_the_input(write_registry):
    path = write_registry("""
        [pipelines.bad]
        extends = "digits-label"
        [pipelines.bad.inputs.label]
        preprocessor = { use = "label", num_clases = 10 }
        mask_probability = 2.0
        [pipelines.bad.inputs.extra]
        preprocessor = "image.pixel"
        [pipelines.both]
        extends = "digits-label"
        preprocessor = { use = "image.pixels" }
        """)
    errors = load_registry([path], include_default=False).validate_all()
    text = "\n".join(errors)
    assert "pipelines.bad.inputs.label.preprocessor.num_clases: unknown key (did you mean 'num_classes'?)" in text
    assert "pipelines.bad.inputs.label.mask_probability: Input should be less than or equal to 1" in text
    assert "pipelines.bad.inputs.extra.preprocessor.use" in text and "image.pixels" in text
    assert "pipelines.both.preprocessor: a pipeline with `inputs`" in text
    with pytest.raises(RegistryError):
        load_registry([path], include_default=False).resolve("bad")


def test_schema_describes_inputs(cli):
    proc = cli("schema")
    assert proc.returncode == 0, proc.stderr
    schema = json.loads(proc.stdout)
    pipeline = schema["$defs"]["Pipeline"]["properties"]
    assert "inputs" in pipeline and "packing" in pipeline
    assert {"preprocessor", "position", "mask_probability"} <= set(schema["$defs"]["Input"]["properties"])


def test_grid_patches_order_is_deepminds_space_to_depth():
    x = torch.arange(2 * 4 * 6 * 3, dtype=torch.float32).reshape(1, 2, 4, 6, 3)  # [B, T, H, W, C]
    p = grid_patches(x, (1, 2, 3))  # [B, 2 * 2 * 2, 1 * 2 * 3 * 3]
    ref = x.reshape(1, 2, 1, 2, 2, 2, 3, 3).permute(0, 1, 3, 5, 2, 4, 6, 7).reshape(1, 8, 18)
    assert torch.equal(p, ref)
    wave = torch.arange(12.0).reshape(1, 12, 1)
    assert torch.equal(grid_patches(wave, (4,)), wave.reshape(1, 3, 4))


@pytest.mark.slow
def test_digits_label_learns_both_inputs_and_reads_back_the_hidden_label(tmp_path):
    """The demo (docs/multimodal.md): per-input losses fall, the reconstruction beats the mean image (test MSE
    0.295) and the label, hidden in evaluation, is read back far above chance (10.3%)."""
    from perceiver_core import train

    spec = load_registry(include_default=False).resolve("digits-label")
    result = train(spec, tmp_path, progress=False)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    tests = [r for r in rows if r["split"] == "test"]
    assert tests[-1]["image_loss"] < tests[0]["image_loss"] / 2 and tests[-1]["label_loss"] < tests[0]["label_loss"] / 4
    assert result["image_loss"] < 0.15 and result["label_accuracy"] > 0.85


@pytest.mark.slow
def test_two_gloo_processes_train_a_multi_input_pipeline(tmp_path):
    """DDP needs a gradient for every parameter every step: a mask token that hides nothing in training (image,
    probability 0) and random output points per process must not break it."""
    import os
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m",
           "perceiver_core", "train", "digits-label", "--no-progress", "--set", "inputs.image.mask_probability=0.0",
           "--set", "decoder.outputs.image.train_points=16", "--max-steps", "4", "--out", str(tmp_path / "run")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "run" / "model.safetensors").is_file()


def test_encoder_latent_init_scale_sets_the_latent_arrays_std():
    """encoder.latent_init_scale (default DeepMind's 0.02): larger keeps the latents distinct from the first step,
    which a multimodal autoencoder of a zero-mean waveform needs (perceiver-video's multimodal-ae-tiny)."""
    from perceiver_core.config.encoders import PerceiverEncoderConfig
    from perceiver_core.interfaces import BuildContext
    from perceiver_core.model.encoders.perceiver import PerceiverEncoder

    def std(**kw):
        torch.manual_seed(0)
        enc = PerceiverEncoder(PerceiverEncoderConfig(num_latents=256, latent_channels=64, self_attends_per_block=0,
                                                      **kw), BuildContext(input_channels=8))
        return float(enc.latents.std())

    assert 0.015 < std() < 0.02  # truncated at 2 std: a little below 0.02
    assert 0.75 < std(latent_init_scale=1.0) < 1.0
