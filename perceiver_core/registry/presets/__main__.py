"""`python -m perceiver_core.registry.presets`: print the path of the presets registry file (for --registry)."""

from . import PRESETS_FILE

print(PRESETS_FILE)
