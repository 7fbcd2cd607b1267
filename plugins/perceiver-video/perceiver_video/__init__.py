"""Video modality for the Perceiver framework: PyAV decoding, space-time patches, video files and a real clip."""

__version__ = "0.1.0"
