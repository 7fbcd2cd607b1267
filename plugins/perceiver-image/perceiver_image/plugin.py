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
    registry.add("dataset", "image.folder", factory="perceiver_image.folder:ImageFolderDataset",
                 config="perceiver_image.configs:ImageFolderConfig",
                 description="your own images: class subfolders (train/ val/ test/ or a seeded split), a manifest "
                             "or a Parquet table; crops, flips, RandAugment, MixUp, CutMix")
    registry.add("dataset", "image.photos", factory="perceiver_image.photos:PhotosDataset",
                 config="perceiver_image.configs:PhotosConfig",
                 description="square crops of scikit-learn's two bundled colour photographs (offline; needs Pillow)")
    # dense outputs: optical flow and stereo (perceiver_image.flow)
    registry.add("preprocessor", "image.flow", factory="perceiver_image.flow.preprocessor:FlowPreprocessor",
                 config="perceiver_image.configs:FlowConfig",
                 description="two frames -> 3x3 patches of both per pixel (54 values) -> linear (DeepMind's flow input)")
    registry.add("decoder", "image.flow_decoder", factory="perceiver_image.flow.decoder:FlowDecoder",
                 config="perceiver_image.configs:FlowDecoderConfig",
                 description="queries = the inputs, one per pixel; zero-initialised head to (u, v), / 100 (DeepMind)")
    registry.add("task", "image.flow", factory="perceiver_image.flow.task:FlowTask",
                 config="perceiver_image.configs:FlowTaskConfig",
                 description="dense flow/disparity regression: end-point error, outlier rate; tiled prediction "
                             "writing .flo/.npy/.png")
    registry.add("dataset", "image.pairs", factory="perceiver_image.flow.pairs:PairsDataset",
                 config="perceiver_image.configs:PairsConfig",
                 description="your frame pairs + ground-truth flow (.flo/.pfm/.npy) or disparity (.pfm/.png/.npy)")
    registry.add("dataset", "image.stereo_motorcycle", factory="perceiver_image.flow.stereo:StereoMotorcycle",
                 config="perceiver_image.configs:StereoMotorcycleConfig",
                 description="scikit-image's Middlebury motorcycle stereo pair as disparity crops (offline)")


@hookimpl
def perceiver_register_pipelines(registry) -> None:
    registry.add_registry_file("perceiver_image", "pipelines.toml")  # package data: found in wheels and checkouts
    registry.add_registry_file("perceiver_image", "presets.toml", presets=True)  # the papers' configurations
