"""Query builders: ByteArray + Encoded -> decoder queries [B, O, E]."""
