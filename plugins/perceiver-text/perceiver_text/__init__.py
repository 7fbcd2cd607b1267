"""Text modality for the Perceiver framework: UTF-8 bytes in, masked language modelling out."""

__version__ = "0.1.0"
