"""Bounded numbers shared by the configs: what a registry file may ask for before the build even starts.

A registry file is hostile input: `num_latents = 1000000000` validated as "an int >= 1" and then tried to allocate
terabytes. Every int of a `ComponentConfig` is bounded by `MAX_INT` unless its field says otherwise (see
config/base.py), and the sizes that multiply into parameter and activation memory use `Size`. The built model's
parameter count is checked again on the meta device before anything is allocated (`perceiver validate`, `train`).
"""

from typing import Annotated

from pydantic import Field

MAX_INT = 2**31 - 1  # the default upper bound of any int in a config (steps, counts, pixel limits)
MAX_SIZE = 2**16  # channels, latents, queries, heads, bands, image sides, sequence lengths: 65,536
MAX_CLASSES = 2**20  # classes of a classifier: 1,048,576
MAX_BATCH = 2**20  # examples per batch: 1,048,576
MAX_SEED = 2**32 - 1  # what every random generator we seed accepts (numpy's legacy RandomState included)

Size = Annotated[int, Field(ge=1, le=MAX_SIZE)]
Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]
