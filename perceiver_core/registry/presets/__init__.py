"""Named presets: configurations as registry pipelines. The core ships `presets.toml` here (modality-free ones);
plugins ship theirs as package data (`registry.add_registry_file(package, "presets.toml", presets=True)`): the
papers' ImageNet presets come with perceiver-image, the MLM one with perceiver-text.

    python -m perceiver_core.registry.presets   # prints the file's path, for --registry
    import perceiver_core
    model = perceiver_core.build_preset("imagenet-fourier")  # on the meta device: counts parameters in a second

Importing this package imports no torch (building a preset's model is model/build.py's job).
"""

from __future__ import annotations

from pathlib import Path

PRESETS_FILE = Path(__file__).with_name("presets.toml")
