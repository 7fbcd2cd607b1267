"""Hook implementations: names and references only, so listing stays free of torch."""

from perceiver_core import hookimpl


@hookimpl
def perceiver_register_components(registry) -> None:
    registry.add("preprocessor", "image.pixels", factory="perceiver_image.pixels:PixelPreprocessor",
                 config="perceiver_image.configs:PixelsConfig",
                 description="one input element per pixel; optional fixed permutation keeping true positions")
    registry.add("preprocessor", "image.patches", factory="perceiver_image.patches:PatchPreprocessor",
                 config="perceiver_image.configs:PatchesConfig",
                 description="space-to-depth patches, optionally linearly projected")
    registry.add("preprocessor", "image.conv", factory="perceiver_image.conv:ConvPreprocessor",
                 config="perceiver_image.configs:ConvConfig",
                 description="7x7/2 conv, batch norm, ReLU, 3x3/2 max pool (DeepMind's conv stem, as HF)")
    registry.add("preprocessor", "image.conv1x1", factory="perceiver_image.conv:Conv1x1Preprocessor",
                 config="perceiver_image.configs:Conv1x1Config",
                 description="1x1 convolution (per-pixel linear map), optionally strided")
    registry.add("dataset", "image.digits", factory="perceiver_image.digits:DigitsDataset",
                 config="perceiver_image.configs:DigitsConfig",
                 description="scikit-learn's bundled 8x8 handwritten digits, fixed train/test split (offline)")


@hookimpl
def perceiver_register_pipelines(registry) -> None:
    registry.add_registry_file("perceiver_image", "pipelines.toml")  # package data: found in wheels and checkouts
    registry.add_registry_file("perceiver_image", "presets.toml", presets=True)  # the papers' configurations
