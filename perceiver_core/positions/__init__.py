"""Built-in position encodings: fourier, learned, none."""
