import math

import pytest
import torch

from perceiver_core import ByteArray
from perceiver_core.config.positions import FourierPositionConfig
from perceiver_core.model.positions.fourier import (
    FourierPositionEncoding,
    fourier_channels,
    fourier_features,
    linear_positions,
)


def test_one_dimensional_case_by_hand():
    # positions linspace(-1, 1, 3) = [-1, 0, 1]; frequencies linspace(1, 3/2, 2) = [1, 1.5]
    feats = fourier_features(linear_positions((3,)), num_bands=2, max_resolution=(3,))
    expected = []
    for x in (-1.0, 0.0, 1.0):
        expected.append([x, math.sin(math.pi * x), math.sin(1.5 * math.pi * x),
                         math.cos(math.pi * x), math.cos(1.5 * math.pi * x)])
    torch.testing.assert_close(feats, torch.tensor(expected), atol=1e-6, rtol=0)


def test_two_dimensional_ordering_by_hand():
    # grid 2 x 3: rows y in [-1, 1], columns x in [-1, 0, 1]; K = 2, max resolution (2, 3)
    feats = fourier_features(linear_positions((2, 3)), num_bands=2, max_resolution=(2, 3))
    assert feats.shape == (6, 2 * (2 * 2 + 1))
    fy, fx = [1.0, 1.0], [1.0, 1.5]  # linspace(1, 2/2, 2), linspace(1, 3/2, 2)
    y, x = 1.0, 0.0  # element 4 = row 1, column 1
    sin = [math.sin(math.pi * f * y) for f in fy] + [math.sin(math.pi * f * x) for f in fx]
    cos = [math.cos(math.pi * f * y) for f in fy] + [math.cos(math.pi * f * x) for f in fx]
    torch.testing.assert_close(feats[4], torch.tensor([y, x, *sin, *cos]), atol=1e-6, rtol=0)


@pytest.mark.parametrize("concat_pos, sine_only", [(True, False), (False, False), (True, True), (False, True)])
def test_channel_count_matches_features(concat_pos, sine_only):
    feats = fourier_features(linear_positions((4, 5, 6)), 7, (4, 5, 6), concat_pos=concat_pos, sine_only=sine_only)
    assert feats.shape == (120, fourier_channels(3, 7, concat_pos, sine_only))
    assert fourier_channels(2, 64, True, False) == 258  # 224x224 ImageNet: 3 RGB + 258 = 261 input channels


def test_explicit_positions_equal_grid_positions():
    enc = FourierPositionEncoding(FourierPositionConfig(num_bands=4))
    grid = enc(ByteArray(torch.zeros(1, 12, 1), (3, 4)))
    perm = torch.randperm(12)
    explicit = enc(ByteArray(torch.zeros(1, 12, 1), (3, 4), positions=linear_positions((3, 4))[perm][None]))
    torch.testing.assert_close(explicit[0], grid[0][perm])
