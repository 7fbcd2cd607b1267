"""`perceiver bench`: time our model against HF transformers' Perceiver on the same config (see runner.py)."""
