"""One-input pipelines are unchanged by multi-input packing: same parameters, same state-dict keys (old checkpoints
load), same weights for the same seed, and the same outputs bit for bit for the same weights and inputs.

The reference is the build and forward path as it was before pipelines could have several inputs, kept here
(`old_build`, `old_forward`): the preprocessor, its position encoding, the encoder and the decoder built in that
order from the same context, and `encoder(InputStream(preprocessor(batch), position))` -> decoder. It was checked
once against the code on main before the change (same seeds, every pipeline and preset: identical outputs and
weights); this test keeps it so.
"""

from __future__ import annotations

import pytest
import torch

from perceiver_core.data.loader import collate
from perceiver_core.interfaces import BuildContext
from perceiver_core.model.input_stream import InputStream
from perceiver_core.model.pipeline import _build, build_dataset, build_from_spec
from perceiver_core.plugins.manager import get_plugin_manager
from perceiver_core.registry.file import load_registry

REGISTRY = load_registry(include_default=False)
ALL = sorted(set(REGISTRY.pipelines) | set(REGISTRY.presets))
ONE_INPUT = [n for n in ALL if "inputs" not in REGISTRY._merged(n)[0]]
#: small enough to run on a CPU in the quick suite (the others: `slow`, or keys and shapes only on the meta device)
QUICK = ["digits", "text-mlm-tiny", "hip-tiny"]
SMALL = ["digits-permuted", "hip-digits", "stereo-tiny", "wine", "breast-cancer", "shapes", "shapes-perceiver"]


def old_build(spec, context):
    """The pre-packing `build_from_spec` (one preprocessor, one position encoding), verbatim in its order."""
    registry = get_plugin_manager().registry
    task = _build(spec, "task", context, registry)
    preprocessor = _build(spec, "preprocessor", context, registry)
    context.index_shape = tuple(preprocessor.index_shape)
    position = _build(spec, "position", context, registry)
    context.position_channels = position.num_channels(len(context.index_shape))
    context.input_channels = preprocessor.output_channels + context.position_channels
    encoder = _build(spec, "encoder", context, registry)
    decoder = _build(spec, "decoder", context, registry)
    decoder.tie_to(preprocessor)
    model = torch.nn.Module()
    model.preprocessor, model.position, model.encoder, model.decoder, model.task = \
        preprocessor, position, encoder, decoder, task
    return model


def old_forward(model, batch):
    """The pre-packing `Pipeline.forward`."""
    stream = InputStream(model.preprocessor(batch), model.position)
    if not model.decoder.reads_inputs and model.encoder.streams(stream.num_elements):
        return model.decoder(model.encoder.forward_stream(stream), stream.base)
    byte_array = stream.materialise()
    return model.decoder(model.encoder(byte_array), byte_array)


def test_every_shipped_pipeline_but_the_multimodal_ones_has_one_input():
    assert {"digits", "text-mlm-tiny", "imagenet-fourier", "mlm-bytes", "flow-sintel", "hip-16"} <= set(ONE_INPUT)
    assert "digits-label" in ALL and "digits-label" not in ONE_INPUT


@pytest.mark.parametrize("name", [n for n in ONE_INPUT if n != "photos"])
def test_state_dict_keys_and_shapes_unchanged(name):
    """Every one-input pipeline and preset (on the meta device): the same keys, in order, of the same shapes."""
    spec = REGISTRY.resolve(name)
    dataset = build_dataset(spec)
    with torch.device("meta"):
        new = build_from_spec(spec, BuildContext(dataset=dict(dataset.info())))
        old = old_build(spec, BuildContext(dataset=dict(dataset.info())))
    assert [(k, v.shape) for k, v in new.state_dict().items()] == [(k, v.shape) for k, v in old.state_dict().items()]
    assert new.context.inputs is None and new.packing.passthrough


def _same_outputs(name):
    spec = REGISTRY.resolve(name)
    dataset = build_dataset(spec)
    torch.manual_seed(0)
    old = old_build(spec, BuildContext(dataset=dict(dataset.info()))).eval()
    torch.manual_seed(0)
    new = build_from_spec(spec, dataset=dataset).eval()
    for (k, a), b in zip(old.state_dict().items(), new.state_dict().values()):
        assert torch.equal(a, b), f"{name}: weight {k} differs for the same seed"
    new.load_state_dict(old.state_dict(), strict=True)  # an old checkpoint's tensors load as they are
    split = "test" if "test" in dataset.splits else dataset.splits[-1]
    batch = collate([new.prepare(dataset.examples(split)[i]) for i in range(3)])
    with torch.no_grad():
        torch.manual_seed(1)
        want = old_forward(old, batch)
        torch.manual_seed(1)
        got = new(batch)
    if isinstance(want, torch.Tensor):
        assert torch.equal(got, want), name
    else:
        assert want.keys() == got.keys() and all(torch.equal(got[k], want[k]) for k in want), name


@pytest.mark.parametrize("name", QUICK)
def test_outputs_unchanged(name):
    _same_outputs(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", SMALL)
def test_outputs_unchanged_small_pipelines(name):
    _same_outputs(name)
