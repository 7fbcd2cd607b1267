"""Decoders: Encoded + queries -> outputs [B, O, K]."""
