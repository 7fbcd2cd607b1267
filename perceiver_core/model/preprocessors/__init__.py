"""Modality-free preprocessors of the core: grid patches (waveforms, clips, any array) and one-hot labels."""
