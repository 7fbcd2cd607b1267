"""No position features."""

from __future__ import annotations

from ...byte_array import ByteArray
from ...config.positions import NoPositionConfig
from ...interfaces import BuildContext, PositionEncoding


class NoPositionEncoding(PositionEncoding):
    def __init__(self, config: NoPositionConfig | None = None, context: BuildContext | None = None):
        super().__init__()

    def num_channels(self, index_dims: int) -> int:
        return 0

    def forward(self, byte_array: ByteArray) -> None:
        return None
