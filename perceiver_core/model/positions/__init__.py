"""Position encodings: ByteArray -> position features [B or 1, M, P], concatenated to the data."""
