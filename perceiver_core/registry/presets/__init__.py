"""Named presets: the papers' headline configurations as registry pipelines (`presets.toml`, shipped here).

    python -m perceiver_core.registry.presets   # prints the file's path, for --registry
    import perceiver_core
    model = perceiver_core.build_preset("imagenet-fourier")  # on the meta device: counts parameters in a second

Importing this package imports no torch (building a preset's model is model/build.py's job).
"""

from __future__ import annotations

from pathlib import Path

PRESETS_FILE = Path(__file__).with_name("presets.toml")
