"""Named presets: the papers' headline configurations as registry pipelines (`presets.toml`, shipped here).

    python -m perceiver_core.presets          # prints the file's path, for --registry
    from perceiver_core.presets import build_preset
    model = build_preset("imagenet-fourier")  # on the meta device: no memory, counts parameters in a second

Importing this package imports no torch.
"""

from __future__ import annotations

from pathlib import Path

PRESETS_FILE = Path(__file__).with_name("presets.toml")


def preset_names() -> list[str]:
    from ..registry_file import load_registry

    return load_registry([PRESETS_FILE], include_default=False).names()


def build_preset(name: str, *, device: str = "meta", overrides=(), plugin_manager=None):
    """The model of a preset, built on `device` (default meta: shapes only, nothing allocated)."""
    import torch

    from ..pipeline import build_from_spec
    from ..registry_file import load_registry

    spec = load_registry([PRESETS_FILE], include_default=False).resolve(name, overrides, plugin_manager=plugin_manager)
    with torch.device(device):
        return build_from_spec(spec, plugin_manager=plugin_manager)
