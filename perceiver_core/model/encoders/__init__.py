"""Encoders: ByteArray [B, M, C] -> Encoded (latents [B, N, D] and what decoders may need)."""
