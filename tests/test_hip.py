"""The Hierarchical Perceiver: the official parameter counts (google-deepmind/hierarchical_perceiver perceiver_test.py),
weights shared across groups, group-local first blocks, input orders, regrouping, padding and masked auto-encoding.
"""

from __future__ import annotations

import math

import pytest
import torch

from perceiver_core import build_preset
from perceiver_core.byte_array import ByteArray, Segment
from perceiver_core.config.hip import HiPDecoderConfig, HiPEncoderConfig, MAETaskConfig
from perceiver_core.interfaces import BuildContext
from perceiver_core.model.decoders.hip import HiPDecoder
from perceiver_core.model.encoders.hip import HiPEncoder
from perceiver_core.model.layers.grouping import assign_groups, build_layout, element_order, regroup
from perceiver_core.model.layers.hip_blocks import HiPBlock
from perceiver_core.model.tasks.mae import MAETask

# The official test's mock inputs: one model applied to an ImageNet-like and an AudioSet-like dict.
MOCK = {"imagenet": {"imagenet_image": ((1024,), 3), "imagenet_label": ((32,), 1)},
        "audioset": {"audioset_audio": ((128,), 16), "audioset_label": ((16,), 16)}}
LABELS = ("imagenet_label", "audioset_label")
OFFICIAL = {("HiP", "16"): 99_224_996, ("HiP", "256"): 95_585_188, ("HiP", "Mini"): 18_709_668,
            ("HiPClassBottleneck", "Mini"): 21_114_788}
HIP16_BLOCKS = [702_752, 2_073_472, 57_796_352, 28_937_728, 6_962_176, 1_973_760, 691_968]


def count(*modules) -> int:
    return sum(p.numel() for m in modules for p in m.parameters())


def official_model(base: str, variant: str, device: str = "meta", **extra):
    """The official test's model: kwargs num_position_encoding_channels=512, regroup reshape; the class
    bottleneck passes the label modalities to the processor (so one modality per input goes through the
    encoder, and one position_encoding_linear)."""
    modalities = {name: {"index_shape": shape, "channels": c} for data in MOCK.values()
                  for name, (shape, c) in data.items()}
    bottleneck = base == "HiPClassBottleneck"
    config = HiPEncoderConfig(variant=variant, position_encoding_channels=512, regroup="reshape",
                              modalities=modalities, max_modalities_per_input=1 if bottleneck else 2,
                              class_modalities=LABELS if bottleneck else (), **extra)
    context = BuildContext()
    with torch.device(device):
        encoder = HiPEncoder(config, context)
        decoder = HiPDecoder(HiPDecoderConfig(), context)
    return encoder, decoder


def mock_input(dataset: str, batch: int = 2) -> ByteArray:
    """A mock dict packed into one byte array: segments name the modalities, channels zero-padded to the widest."""
    items = MOCK[dataset]
    channels = max(c for _, c in items.values())
    segments, start, parts = [], 0, []
    for name, (shape, c) in items.items():
        segments.append(Segment(name, start, shape))
        parts.append(torch.nn.functional.pad(torch.rand(batch, math.prod(shape), c), (0, channels - c)))
        start += math.prod(shape)
    return ByteArray(torch.cat(parts, 1), (start,), segments=tuple(segments))


@pytest.mark.parametrize("base,variant", sorted(OFFICIAL))
def test_parameter_count_equals_official(base, variant):
    encoder, decoder = official_model(base, variant)
    assert next(encoder.parameters()).device.type == "meta"
    assert count(encoder, decoder) == OFFICIAL[(base, variant)]


def test_hip16_per_block_counts_and_reconstruction_head():
    encoder, decoder = official_model("HiP", "16")
    assert [count(b) for b in list(encoder.blocks) + list(decoder.blocks)] == HIP16_BLOCKS
    assert count(decoder.head) == 43_872
    assert decoder.blocks[0].skip_proj is None  # HiP-16: mirrored widths are equal, no skip projection


def test_hip256_has_five_skip_projections():
    _, decoder = official_model("HiP", "256")
    assert sum(b.skip_proj is not None for b in decoder.blocks) == 5


@pytest.mark.parametrize("name,expected", [("hip-16", 99_182_080), ("hip-256", 95_564_224)])
def test_presets_without_embeddings_equal_official(name, expected):
    """The presets take 224x224 pixels: without embed/unembed/positions they are the official models exactly."""
    model = build_preset(name)
    io = [model.encoder.embed, model.encoder.positions, model.encoder.position_linear, model.decoder.unembed]
    assert count(model) - count(*io) == expected
    assert model.encoder.positions["input"].shape == (224 * 224, 32 if name == "hip-16" else 16)


def test_all_hip_presets_build():
    for name in ("hip-16", "hip-256", "hip-mini", "hip-class-bottleneck-mini"):
        assert count(build_preset(name)) > 1_000_000


@pytest.mark.parametrize("base", ["HiP", "HiPClassBottleneck"])
def test_one_model_reconstructs_both_mock_inputs(base):
    """As the official test: outputs have the shape of the inputs, for both datasets, from one model."""
    torch.manual_seed(0)
    encoder, decoder = official_model(base, "Mini", device="cpu")
    for dataset in MOCK:
        inputs = mock_input(dataset)
        out = decoder(encoder(inputs), inputs)
        assert out.shape == inputs.data.shape
        assert torch.isfinite(out).all()
    # the unembedding starts at zero, so an untrained HiP reconstructs zeros
    assert count(decoder.unembed) > 0 and float(out.detach().abs().max()) == 0.0


def test_weights_shared_across_groups():
    """One parameter set serves every group: running a group alone through a one-group block with the same
    weights (and that group's latents) gives the same output, and every group's output sends gradient to the
    shared weights."""
    torch.manual_seed(0)
    g, n, m, c = 4, 8, 12, 16
    block = HiPBlock(c, groups=g, latents=n, channels=32, self_attends=1, self_attend_heads=4)
    assert block.latents.shape == (g * n, 32)  # the only per-group parameters
    x = torch.randn(2, g, m, c)
    z = block(x)  # [2, G, N, 32]
    single = HiPBlock(c, groups=1, latents=n, channels=32, self_attends=1, self_attend_heads=4)
    state = {k: v for k, v in block.state_dict().items() if k != "latents"}
    single.load_state_dict({**state, "latents": block.latents.detach()[2 * n:3 * n]})
    torch.testing.assert_close(single(x[:, 2:3])[:, 0], z[:, 2], rtol=1e-5, atol=1e-5)
    shared = block.cross_attend.attention.q_proj.weight
    grads = []
    for k in range(g):
        (grad,) = torch.autograd.grad(z[:, k].square().sum(), shared, retain_graph=True)
        assert grad.abs().sum() > 0, f"group {k} sends no gradient to the shared weights"
        grads.append(grad)
    (total,) = torch.autograd.grad(z.square().sum(), shared)
    torch.testing.assert_close(sum(grads), total, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("order", ["raster", "morton"])
def test_first_block_sees_only_its_own_group(order):
    """Perturb the elements of one group: the other groups' first-block outputs do not change."""
    torch.manual_seed(0)
    config = HiPEncoderConfig(num_groups=(4, 1, 4), self_attends=(1, 1, 1), latents=(4, 8, 4), channels=(16, 32, 16),
                              self_attend_heads=(2, 4, 2), embedding_channels=8, order=order)
    encoder = HiPEncoder(config, BuildContext(index_shape=(8, 8), input_channels=3)).eval()
    x = torch.randn(1, 64, 3)
    before = encoder(ByteArray(x, (8, 8))).levels[0]  # [1, 4, 4, 16]
    layout = build_layout([(0, (8, 8))], 4, order)
    y = x.clone()
    y[:, layout.index[1]] += 1.0  # every element of group 1
    after = encoder(ByteArray(y, (8, 8))).levels[0]
    changed = [not torch.equal(before[:, k], after[:, k]) for k in range(4)]
    assert changed == [False, True, False, False]


def test_raster_groups_are_row_stripes_and_morton_groups_are_tiles():
    raster = build_layout([(0, (32, 32))], 16, "raster").index  # [16, 64]
    rows = raster // 32
    assert all(set(rows[k].tolist()) == {2 * k, 2 * k + 1} for k in range(16))  # two full rows per group
    morton = build_layout([(0, (32, 32))], 16, "morton").index
    for k in range(16):
        r, c = morton[k] // 32, morton[k] % 32
        assert (r.max() - r.min(), c.max() - c.min()) == (7, 7)  # an 8x8 tile
    order = element_order((4, 4), "morton").tolist()
    assert order[:4] == [0, 1, 4, 5] and order[4:8] == [2, 3, 6, 7]  # Z-order over 2x2 quadrants
    assert sorted(element_order((5, 7), "morton").tolist()) == list(range(35))  # any grid: a permutation


def test_regroup_reshape_and_transpose_reshape():
    x = torch.arange(4 * 2).view(1, 4, 2, 1).float()  # 4 groups of 2 latents: values 0..7
    merged = regroup(x, 2, "reshape")
    assert merged[0, :, :, 0].tolist() == [[0, 1, 2, 3], [4, 5, 6, 7]]  # neighbouring groups merge
    mixed = regroup(x, 2, "transpose_reshape")
    assert mixed[0, :, :, 0].tolist() == [[0, 2, 4, 6], [1, 3, 5, 7]]  # every new group takes from all old ones
    with pytest.raises(ValueError, match="cannot regroup"):
        regroup(x, 3)


def test_groups_per_modality_and_padding():
    assert assign_groups(16, [1024, 32]) == ([15, 1], 69)  # extra groups greedily to the largest per group
    assert assign_groups(16, [128, 16]) == ([14, 2], 10)
    layout = build_layout([(0, (10,)), (10, (3,))], 4, "raster")  # 10 elements in 3 groups, 3 in 1
    assert layout.groups_of == ((0, 1, 2), (3,))
    assert layout.index.tolist() == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, -1, -1], [10, 11, 12, -1]]
    x = torch.randn(2, 13, 5)
    grouped = layout.group(x)  # [2, 4, 4, 5], padding zero
    assert grouped[:, 2, 2:].abs().sum() == 0
    torch.testing.assert_close(layout.ungroup(grouped), x)
    with pytest.raises(ValueError, match="groups never mix modalities"):
        assign_groups(1, [4, 4])


def _tiny(mask_ratio: float, **extra):
    config = HiPEncoderConfig(num_groups=(4, 1, 4), self_attends=(1, 1, 1), latents=(4, 8, 4), channels=(16, 32, 16),
                              self_attend_heads=(2, 4, 2), embedding_channels=8, mask_ratio=mask_ratio, **extra)
    context = BuildContext(index_shape=(8, 8), input_channels=1)
    return HiPEncoder(config, context), HiPDecoder(HiPDecoderConfig(), context)


def test_masked_auto_encoding_hides_a_fixed_share_of_each_group():
    torch.manual_seed(0)
    encoder, decoder = _tiny(0.75)
    seen = {}

    def spy(module, args, kwargs=None):
        seen["shape"] = args[0].shape

    encoder.blocks[0].register_forward_pre_hook(spy)
    x = ByteArray(torch.randn(3, 64, 1), (8, 8))
    encoded = encoder(x)
    assert seen["shape"] == (3, 4, 4, 8)  # 4 of each group's 16 elements reach the encoder
    out = decoder(encoded, x)
    assert out["reconstruction"].shape == (3, 64, 1) and out["target"] is x.data
    assert out["mask"].sum(1).tolist() == [48, 48, 48]
    assert (out["reconstruction"][~out["mask"]] == 0).all()  # only hidden elements are reconstructed
    task = MAETask(MAETaskConfig(), BuildContext())
    torch.nn.init.normal_(decoder.unembed["input"].weight)  # a non-zero reconstruction
    out = decoder(encoder(x), x)
    loss = task.loss(out, {})
    hidden = out["mask"]
    expected = (out["reconstruction"] - x.data)[hidden].square().mean()
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert encoder.positions["input"].grad.abs().sum() > 0  # positions learn from the reconstruction
    metrics = task.metrics(out, {})
    assert metrics["psnr"][1] == 3 and math.isfinite(metrics["psnr"][0])


def test_masks_are_random_in_training_and_fixed_in_evaluation():
    encoder, decoder = _tiny(0.5)
    x = ByteArray(torch.randn(2, 64, 1), (8, 8))
    masks = [decoder(encoder(x), x)["mask"] for _ in range(2)]
    assert not torch.equal(*masks)
    encoder.eval(), decoder.eval()
    masks = [decoder(encoder(x), x)["mask"] for _ in range(2)]
    assert torch.equal(*masks)


def test_processor_latents_subsampled_in_training_only():
    encoder, decoder = _tiny(0.0, processor_latents_train=4)
    x = ByteArray(torch.randn(2, 64, 1), (8, 8))
    assert encoder(x).latents.shape == (2, 4, 32)
    assert decoder(encoder(x), x).shape == (2, 64, 1)
    encoder.eval()
    assert encoder(x).latents.shape == (2, 8, 32)


@pytest.mark.parametrize("fields,message", [
    ({"num_groups": (4, 1)}, "odd number of blocks"),
    ({"num_groups": (4, 2, 4)}, "processor .* must have 1 group"),
    ({"latents": (4, 6, 4)}, "cannot be regrouped"),
    ({"self_attend_heads": (3, 4, 2)}, "divisible by self_attend_heads"),
    ({"channels": (16, 32)}, "one per block"),
    ({"processor_latents_train": 3}, "divisible by the next block's 4 groups"),
])
def test_config_errors(fields, message):
    base = {"num_groups": (4, 1, 4), "self_attends": (1, 1, 1), "latents": (4, 8, 4), "channels": (16, 32, 16),
            "self_attend_heads": (2, 4, 2), "embedding_channels": 8}
    if "num_groups" in fields and len(fields["num_groups"]) == 2:
        base = {k: v[:2] if isinstance(v, tuple) else v for k, v in base.items()}
    with pytest.raises(ValueError, match=message):
        HiPEncoderConfig(**{**base, **fields})


def test_input_errors_name_the_modality():
    encoder, _ = official_model("HiP", "Mini", device="cpu")
    with pytest.raises(Exception, match="give the input segments"):
        encoder(ByteArray(torch.randn(1, 1024, 3), (1024,)))
    bad = ByteArray(torch.randn(1, 1024, 3), (1024,), segments=(Segment("video", 0, (1024,)),))
    with pytest.raises(Exception, match="'video' is not one this HiP embeds"):
        encoder(bad)


@pytest.mark.slow
def test_hip_tiny_learns_to_reconstruct(cli, tmp_path):
    """`perceiver train hip-tiny`: the reconstruction loss of the hidden pixels falls clearly. An untrained HiP
    reconstructs zeros (zero-initialised unembedding), so its first loss is the mean square of the hidden
    normalised pixels (about 0.6); after 5 epochs (~115 steps) the test loss is about half of it."""
    import json

    result = cli("train", "hip-tiny", "--out", str(tmp_path), "--json", "--no-progress")
    assert result.returncode == 0, result.stderr
    final = json.loads(result.stdout)
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    first = next(r["loss"] for r in records if r["split"] == "train")
    assert first > 0.4
    assert final["loss"] < 0.6 * first, (first, final)
    assert final["psnr"] > 10.5


def test_a_training_step_takes_named_outputs(cli, tmp_path):
    """The MAE decoder returns named tensors, not one tensor: the training loop's epoch-loss bookkeeping must take
    them (it called .detach() on the outputs and crashed every HiP MAE run)."""
    import json

    result = cli("train", "hip-tiny", "--out", str(tmp_path), "--max-steps", "2", "--json", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["step"] == 2


@pytest.mark.slow
def test_classifier_fine_tuned_from_the_mae_encoder(cli, tmp_path):
    """MAE-pretrained positions into a classifier (the HiP paper's recipe): `hip-digits --init-from` the MAE run with
    `--load encoder` loads every encoder tensor (positions included) and keeps the classification decoder fresh."""
    import json

    mae = cli("train", "hip-tiny", "--out", str(tmp_path / "mae"), "--max-steps", "4", "--json", "--no-progress")
    assert mae.returncode == 0, mae.stderr
    ft = cli("train", "hip-digits", "--out", str(tmp_path / "cls"), "--max-steps", "4", "--json", "--no-progress",
             "--init-from", str(tmp_path / "mae"), "--load", "encoder")
    assert ft.returncode == 0, ft.stderr
    report = json.loads(ft.stdout)["init"]
    assert "loaded encoder" in ft.stderr and "re-initialised decoder" in ft.stderr, ft.stderr
    assert report, report


def test_positions_none_takes_positions_from_the_input():
    """positions = "none": no table (e.g. Fourier features concatenated by the pipeline); MAE then has no queries."""
    config = {"num_groups": (4, 1, 4), "self_attends": (1, 1, 1), "latents": (4, 8, 4), "channels": (16, 32, 16),
              "self_attend_heads": (2, 4, 2), "embedding_channels": 8, "positions": "none"}
    encoder = HiPEncoder(HiPEncoderConfig(**config), BuildContext(index_shape=(8, 8), input_channels=3))
    assert len(encoder.positions) == 0
    assert encoder(ByteArray(torch.randn(2, 64, 3), (8, 8))).latents.shape == (2, 8, 32)
    with pytest.raises(ValueError, match="queries the decoder with learned positions"):
        HiPEncoderConfig(**config, mask_ratio=0.5)


@pytest.mark.slow
def test_bench_hip_preset_runs(tmp_path, capsys):
    """`perceiver bench --preset hip-tiny` trains and infers HiP end to end (figures are printed, not asserted)."""
    import json

    from perceiver_core.commands.cli import main

    out = tmp_path / "bench.json"
    assert main(["bench", "--backend", "cpu", "--preset", "hip-tiny", "--steps", "2", "--warmup", "1",
                 "--out", str(out), "--quiet"]) == 0
    report = json.loads(out.read_text())
    assert [(r["mode"], r["batch"]) for r in report["rows"]] == [("train", 2), ("infer", 2)]
    assert all(r["ours"]["images_per_s"] > 0 and r["ours"]["mfu"] > 0 for r in report["rows"])


def test_mae_without_masking_is_a_one_line_error():
    from perceiver_core.errors import UserError

    encoder, decoder = _tiny(0.0)
    x = ByteArray(torch.randn(2, 64, 1), (8, 8))
    with pytest.raises(UserError, match="mask_ratio > 0"):
        MAETask(MAETaskConfig(), BuildContext()).loss(decoder(encoder(x), x), {})


def test_checkpoint_round_trip_rebuilds_the_same_hip(tmp_path):
    """A saved HiP auto-encoder (encoder config carried in the build context) rebuilds from its file alone and
    gives the same reconstruction, masks included (evaluation masks are fixed)."""
    from perceiver_core.data.loader import collate
    from perceiver_core.model.build import build_pipeline
    from perceiver_core.model.pipeline import build_dataset
    from perceiver_core.runtime.checkpoint import from_checkpoint, save_checkpoint

    torch.manual_seed(0)
    model = build_pipeline("hip-tiny").eval()
    torch.nn.init.normal_(model.decoder.unembed["input"].weight)
    examples = build_dataset(model.spec).examples("test")
    batch = collate([model.prepare(examples[i]) for i in range(4)])
    save_checkpoint(tmp_path / "model.safetensors", model)
    loaded = from_checkpoint(tmp_path / "model.safetensors")
    assert loaded.context.encoder_config["mask_ratio"] == 0.5
    with torch.no_grad():
        a, b = model(batch), loaded(batch)
    assert torch.equal(a["mask"], b["mask"])
    torch.testing.assert_close(a["reconstruction"], b["reconstruction"])


def test_frozen_positions_get_no_gradient():
    encoder, decoder = _tiny(0.5, train_positions=False, position_encoding_channels=32)
    x = ByteArray(torch.randn(2, 64, 1), (8, 8))
    torch.nn.init.normal_(decoder.unembed["input"].weight)
    MAETask(MAETaskConfig(), BuildContext()).loss(decoder(encoder(x), x), {}).backward()
    assert encoder.positions["input"].grad is None and encoder.position_linear[0].weight.grad is None
    assert encoder.embed["input"].weight.grad is not None


def test_multimodal_mae_counts_each_modality_own_channels():
    """A packed image (3 channels) + audio (16 channels) input: the MSE averages over each element's own channels,
    not the zero padding up to 16."""
    torch.manual_seed(0)
    modalities = {"image": {"index_shape": (64,), "channels": 3}, "audio": {"index_shape": (32,), "channels": 16}}
    config = HiPEncoderConfig(num_groups=(4, 1, 4), self_attends=(1, 1, 1), latents=(4, 8, 4), channels=(16, 32, 16),
                              self_attend_heads=(2, 4, 2), embedding_channels=8, modalities=modalities, mask_ratio=0.5)
    context = BuildContext()
    encoder, decoder = HiPEncoder(config, context), HiPDecoder(HiPDecoderConfig(), context)
    for layer in decoder.unembed.values():
        torch.nn.init.normal_(layer.weight)
    data = torch.zeros(2, 96, 16)
    data[:, :64, :3] = torch.randn(2, 64, 3)
    data[:, 64:] = torch.randn(2, 32, 16)
    x = ByteArray(data, (96,), segments=(Segment("image", 0, (64,)), Segment("audio", 64, (32,))))
    out = decoder(encoder(x), x)
    assert out["channels"].tolist() == [3] * 64 + [16] * 32
    hidden = out["mask"]
    diff = (out["reconstruction"] - data).square()
    image, audio = diff[:, :64, :3][hidden[:, :64]], diff[:, 64:][hidden[:, 64:]]
    expected = (image.sum() + audio.sum()) / (image.numel() + audio.numel())
    torch.testing.assert_close(MAETask(MAETaskConfig(), BuildContext()).loss(out, {}), expected)


def test_morton_over_explicit_positions_restores_tiles_of_permuted_pixels():
    """Pixels under a fixed permutation carry their true positions ([1, M, 2]); Morton order over those
    coordinates groups them into the same 8x8 tiles as Morton over the grid does for unpermuted pixels."""
    from perceiver_core import linear_positions
    from perceiver_core.model.layers.grouping import point_order

    perm = torch.randperm(32 * 32, generator=torch.Generator().manual_seed(0))
    positions = linear_positions((32, 32))[perm]  # [M, 2] true positions of the shuffled pixels
    layout = build_layout([(0, (32, 32))], 16, "morton", [point_order(positions)])
    grid = build_layout([(0, (32, 32))], 16, "morton").index
    for k in range(16):
        assert sorted(perm[layout.index[k]].tolist()) == sorted(grid[k].tolist())
    encoder = HiPEncoder(HiPEncoderConfig(num_groups=(16, 1, 16), self_attends=(1, 1, 1), latents=(4, 16, 4),
                                          channels=(16, 32, 16), self_attend_heads=(2, 4, 2), embedding_channels=8,
                                          order="morton"), BuildContext(index_shape=(32, 32), input_channels=1))
    x = ByteArray(torch.randn(2, 1024, 1), (32, 32), positions=positions[None])
    assert torch.equal(encoder(x).state["layout"].index, layout.index)


def test_morton_per_example_points_groups_each_example_by_its_own_coordinates():
    """Point clouds ([B, M, d] positions): each example is grouped by the Z-order of its own points, and the MAE
    reconstruction lands back on its elements."""
    torch.manual_seed(0)
    encoder, decoder = _tiny(0.5, order="morton")
    coords = torch.rand(2, 64, 3)
    coords[1] = coords[0].flip(0)  # example 1: the same points in reverse order
    x = ByteArray(torch.randn(2, 64, 1), (8, 8), positions=coords)
    encoded = encoder(x)
    index = encoded.state["layout"].index  # [2, 4, 16]
    assert index.shape == (2, 4, 16)
    for k in range(4):  # the same spatial groups, as element ids of each example's own order
        assert sorted(index[0, k].tolist()) == sorted((63 - index[1, k]).tolist())
    out = decoder(encoded, x)
    assert out["mask"].sum(1).tolist() == [32, 32]
    assert (out["reconstruction"][~out["mask"]] == 0).all()
