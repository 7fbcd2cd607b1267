"""`video.reconstruction`: video autoencoding, one output per pixel (Perceiver IO's multimodal autoencoder, video part).

    outputs [B, T*H*W, C] (a decoder whose queries are the 3-D Fourier features of every output pixel: the core's
    `basic` decoder with query = "fourier" and output_index_shape = (T, H, W), or `video.pixels`), or in training
    {"pixels": [B, P, C], "indices": [P]} for a random subset of the pixels (`video.pixels` with train_points);
    target batch["video"] [B, T, H, W, C] (uint8, or float in [0, 1]) mapped to (pixel - mean) / std

Loss: mean squared error per value. Metrics: `loss`, `psnr` (dB, pixels in [0, 1], per clip then averaged) and
`mse` (pixels in [0, 1]). `perceiver predict` writes the reconstruction as a GIF beside a GIF of the input frames,
and one PNG of both (input frames above, reconstructed frames below).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import torch

from perceiver_core import BuildContext, Task

from .configs import ReconstructionConfig
from .patches import dataset_video_shape


class ReconstructionTask(Task):
    target_keys = ("video",)
    loss_name = "MSE of the normalised pixels"  # metrics.png's loss axis: the metrics' `loss`, in (p - mean) / std

    def __init__(self, config: ReconstructionConfig, context: BuildContext):
        super().__init__()
        self.config = config
        self.video_shape = dataset_video_shape(context, "video.reconstruction")  # (T, H, W, C)
        self.num_outputs = self.video_shape[3]
        context.num_outputs = self.num_outputs

    def _pixels(self, outputs: torch.Tensor) -> torch.Tensor:
        """outputs [B, T*H*W, C] (target units) -> [B, T, H, W, C] pixels in [0, 1], unclipped."""
        T, H, W, C = self.video_shape
        b, o, k = outputs.shape
        if o != T * H * W or k != C:
            raise ValueError(f"video.reconstruction expects one output of {C} values per pixel of a {T}x{H}x{W} clip "
                             f"([B, {T * H * W}, {C}]), got {list(outputs.shape)}: set the decoder's "
                             f"output_index_shape to [{T}, {H}, {W}]")
        return outputs.float().reshape(b, T, H, W, C) * self.config.std + self.config.mean

    def _target(self, batch: Mapping[str, torch.Tensor], like: torch.Tensor) -> torch.Tensor:
        video = batch["video"]
        video = video.float() / 255.0 if video.dtype == torch.uint8 else video.float()  # [B, T, H, W, C] in [0, 1]
        if tuple(video.shape[1:]) != tuple(self.video_shape):
            raise ValueError(f"video.reconstruction was built for clips of {tuple(self.video_shape)} (T, H, W, C), "
                             f"got {tuple(video.shape[1:])}")
        return video.to(like.device)

    def _pairs(self, outputs, batch) -> tuple[torch.Tensor, torch.Tensor]:
        """(outputs, targets), both [B, O, C] in target units: every pixel, or the subset a decoder drew."""
        if isinstance(outputs, Mapping):
            values, indices = outputs["pixels"], outputs["indices"]  # [B, P, C], [P]
        else:
            values, indices = outputs, None
            self._pixels(values)  # checks the shape
        target = (self._target(batch, values) - self.config.mean) / self.config.std  # [B, T, H, W, C]
        target = target.reshape(target.shape[0], -1, target.shape[-1])  # [B, T*H*W, C]
        if indices is not None:
            target = target[:, indices]  # [B, P, C]
        return values.float(), target

    def loss(self, outputs, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        values, target = self._pairs(outputs, batch)
        return (values - target).square().mean()

    def metrics(self, outputs, batch: Mapping[str, torch.Tensor]) -> dict[str, tuple[float, int]]:
        values, target = self._pairs(outputs if isinstance(outputs, Mapping) else outputs.detach(), batch)
        mse = ((values.detach() - target).square().flatten(1).mean(1)) * self.config.std ** 2  # [B], pixels in [0, 1]
        n = int(mse.numel())
        loss = mse / self.config.std ** 2  # the training loss's units (every clip has as many values)
        return {"loss": (float(loss.sum()), n), "mse": (float(mse.sum()), n),
                "psnr": (float(psnr(mse).sum()), n)}

    def postprocess(self, outputs: torch.Tensor, batch: Mapping[str, torch.Tensor] | None = None) -> list[Any]:
        """Per clip: {"reconstruction": uint8 [T, H, W, C], and with the input in the batch "input" and "psnr"}."""
        pixels = self._pixels(outputs.detach()).clamp(0, 1)  # [B, T, H, W, C]
        recon = (pixels * 255).round().to(torch.uint8).cpu().numpy()
        out: list[dict[str, Any]] = [{"reconstruction": r} for r in recon]
        if batch is not None and "video" in batch:
            target = self._target(batch, pixels)
            scores = psnr((pixels - target).square().flatten(1).mean(1))
            for row, clip, score in zip(out, (target * 255).round().to(torch.uint8).cpu().numpy(), scores):
                row["input"], row["psnr"] = clip, round(float(score), 3)
        return out

    def predict(self, model, batch: Mapping[str, torch.Tensor]) -> list[Any]:
        """Files given to `perceiver predict` are prepared without the raw clip: it is recovered from the patches."""
        if "video" not in batch and hasattr(model.preprocessor, "input_frames"):
            batch = {**batch, "video": model.preprocessor.input_frames(batch)}
        return self.postprocess(model(batch), batch)

    def save_prediction(self, prediction: Any, out_dir: Path, stem: str) -> dict[str, Any]:
        """STEM.reconstruction.gif, STEM.input.gif and STEM.png (input frames above, reconstruction below)."""
        from .pictures import save_gif, save_strip

        out_dir.mkdir(parents=True, exist_ok=True)
        c, files = self.config, []
        recon = prediction["reconstruction"]
        files.append(save_gif(out_dir / f"{stem}.reconstruction.gif", recon, c.gif_fps, c.gif_scale))
        rows = [recon]
        if "input" in prediction:
            files.append(save_gif(out_dir / f"{stem}.input.gif", prediction["input"], c.gif_fps, c.gif_scale))
            rows = [prediction["input"], recon]
        files.append(save_strip(out_dir / f"{stem}.png", rows, c.gif_scale))
        T, H, W, _ = recon.shape
        summary: dict[str, Any] = {"frames": T, "size": f"{W}x{H}"}
        if "psnr" in prediction:
            summary["psnr"] = prediction["psnr"]
        summary["files"] = [str(f) for f in files]
        return summary


def psnr(mse: torch.Tensor) -> torch.Tensor:
    """PSNR in dB of pixels in [0, 1] from their mean squared error."""
    return -10 * torch.log10(mse.clamp_min(1e-10))
