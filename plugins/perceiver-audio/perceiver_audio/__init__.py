"""Audio modality for the Perceiver framework."""

__version__ = "0.1.0"
