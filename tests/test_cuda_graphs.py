"""CUDA graphs for inference: replays equal the plain forward, per shape, and results survive the next call."""

from __future__ import annotations

import pytest
import torch

from perceiver_core.commands.bench.models import build_ours, ours_batch
from perceiver_core.commands.bench.presets import PRESETS
from perceiver_core.model.layers.cuda_graphs import GraphedInference

HAS_GPU = torch.cuda.is_available()


def _model(device="cpu", chunk=None):
    torch.manual_seed(0)
    overrides = {"encoder": {"cross_attend_chunk_keys": chunk}} if chunk is not None else None
    return build_ours(PRESETS["tiny"], 16, overrides=overrides).to(device).eval()


def test_off_cuda_the_wrapper_calls_the_model():
    model = _model()
    batch = ours_batch(torch.rand(2, 16, 16, 3, generator=torch.Generator().manual_seed(1)))
    with torch.no_grad():
        want = model(batch)
    assert torch.equal(GraphedInference(model)(batch), want)


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_GPU, reason="needs a CUDA GPU; none is visible here")
@pytest.mark.parametrize("chunk", [None, 64])  # the whole input and the streamed (chunked) path
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.bfloat16, 1e-2)])
def test_graph_replays_equal_the_plain_forward(chunk, dtype, tol):
    model = _model("cuda", chunk)

    def context():
        return torch.autocast("cuda", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16)

    graphed = GraphedInference(model, context=context)
    g = torch.Generator().manual_seed(2)
    for batch_size in (2, 3, 2):  # a second shape is captured on its own; the first is replayed again
        batch = ours_batch(torch.rand(batch_size, 16, 16, 3, generator=g).cuda())
        with torch.no_grad(), context():
            want = model(batch).float()
        got = graphed(batch)
        first = got.clone()
        graphed(ours_batch(torch.rand(batch_size, 16, 16, 3, generator=g).cuda()))  # another input
        assert torch.equal(got, first)  # the earlier result is a copy, not the graph's buffer
        assert ((got.float() - want).norm() / want.norm()).item() < tol
    assert len(graphed._graphs) == 2
