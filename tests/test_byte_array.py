import pytest
import torch

from perceiver_core import ByteArray, ByteArrayError, Segment


def test_valid_array_and_properties():
    ba = ByteArray(torch.randn(2, 12, 3), (3, 4), mask=torch.ones(2, 12, dtype=torch.bool))
    assert (ba.batch_size, ba.num_elements, ba.channels) == (2, 12, 3)
    assert ba.index_shape == (3, 4)


@pytest.mark.parametrize("kwargs, message", [
    (dict(data=torch.randn(2, 12)), "rank 3"),
    (dict(data=torch.zeros(2, 12, 3, dtype=torch.long)), "floating point"),
    (dict(index_shape=(3, 5)), "holds 15 elements but data has M=12"),
    (dict(index_shape=()), "index_shape"),
    (dict(positions=torch.randn(3, 12, 2)), "positions must have shape [2 or 1, 12, d]"),
    (dict(positions=torch.randn(1, 11, 2)), "positions must have shape"),
    (dict(mask=torch.ones(2, 12)), "bool tensor"),
    (dict(mask=torch.ones(2, 11, dtype=torch.bool)), "mask must have shape [2, 12]"),
    (dict(mask=torch.tensor([[True] * 12, [False] * 12])), "hides every element"),
    (dict(segments=(Segment("a", 0, (5,)), Segment("b", 6, (6,)))), "without gaps"),
    (dict(segments=(Segment("a", 0, (5,)),)), "cover 5 elements but M=12"),
])
def test_invalid_arrays_name_the_field(kwargs, message):
    args = dict(data=torch.randn(2, 12, 3), index_shape=(3, 4))
    args.update(kwargs)
    with pytest.raises(ByteArrayError) as info:
        ByteArray(**args)
    assert message in str(info.value)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_values_are_rejected_with_the_field_name(bad):
    data = torch.randn(2, 12, 3)
    data[1, 4, 2] = bad
    with pytest.raises(ByteArrayError, match=r"ByteArray.data contains 1 NaN or infinite"):
        ByteArray(data, (12,))
    pos = torch.randn(1, 12, 2)
    pos[0, 0, 0] = bad
    with pytest.raises(ByteArrayError, match=r"ByteArray.positions contains 1 NaN"):
        ByteArray(torch.randn(2, 12, 3), (12,), positions=pos)


def test_multimodal_segments_tile_the_array():
    ba = ByteArray(torch.randn(1, 10, 4), (10,), segments=(Segment("video", 0, (2, 2, 1)), Segment("audio", 4, (6,))))
    assert [s.length for s in ba.segments] == [4, 6]
