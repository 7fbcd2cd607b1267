"""Query builders: what decoder queries [B, O, E] are made of (learned vectors, Fourier features of positions)."""
