"""`image.flow`: dense regression of a flow field (optical flow, or stereo disparity as horizontal flow).

    outputs [B, H*W, 2] (model units) x flow_scale = flow in pixels; targets batch["flow"] [B, H, W, 2] in pixels,
    batch["valid"] [B, H, W] (1 = known)

Loss: the mean end-point error (Euclidean length of the error vector) over valid pixels, in model units (targets
divided by flow_scale, as DeepMind trained), or the mean absolute error of u and v. Metrics, averaged over all
valid pixels of a split: `epe` (pixels), `outliers` (fraction with error > outlier_pixels and > outlier_fraction
of the true length: KITTI's Fl, or D1 for disparity), `loss`. Prediction runs frames larger than the training
size in overlapping tiles (tiling.py) and writes each flow as .flo, .npy and a colour-wheel .png.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from perceiver_core import BuildContext, Task

from ..configs import FlowTaskConfig
from .colour import flow_to_colour
from .io import write_flo, write_png
from .tiling import tiled_apply


def _grid(batch: Mapping[str, Any]) -> tuple[int, int]:
    x = batch["frames"] if "frames" in batch else batch["patches"]  # [B, 2, C, H, W] or [B, 2, P, H, W]
    return int(x.shape[-2]), int(x.shape[-1])


class FlowTask(Task):
    target_keys = ("flow", "valid")

    @property
    def loss_name(self) -> str:  # (the metrics' `loss`, in model units)
        return "end-point error (EPE)" if self.config.loss == "epe" else "mean absolute error of u, v"

    def __init__(self, config: FlowTaskConfig, context: BuildContext):
        super().__init__()
        self.config = config
        self.num_outputs = 2
        context.num_outputs = 2

    def _targets(self, outputs: torch.Tensor, batch: Mapping[str, torch.Tensor]):
        b, m, _ = outputs.shape
        flow = batch["flow"].reshape(b, m, 2).float()  # [B, M, 2] pixels
        valid = batch["valid"].reshape(b, m).float()  # [B, M]
        return flow, valid

    def loss(self, outputs: torch.Tensor, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        flow, valid = self._targets(outputs, batch)
        error = outputs.float() - flow / self.config.flow_scale  # [B, M, 2] model units
        per_pixel = error.norm(dim=-1) if self.config.loss == "epe" else error.abs().mean(-1)  # [B, M]
        return (per_pixel * valid).sum() / valid.sum().clamp_min(1.0)

    def metrics(self, outputs: torch.Tensor, batch: Mapping[str, torch.Tensor]) -> dict[str, tuple[float, int]]:
        c = self.config
        flow, valid = self._targets(outputs, batch)
        predicted = outputs.float() * c.flow_scale  # [B, M, 2] pixels
        epe = (predicted - flow).norm(dim=-1)  # [B, M]
        outlier = (epe > c.outlier_pixels) & (epe > c.outlier_fraction * flow.norm(dim=-1))
        n = int(valid.sum().item())
        error = predicted / c.flow_scale - flow / c.flow_scale
        per_pixel = error.norm(dim=-1) if c.loss == "epe" else error.abs().mean(-1)
        return {"loss": (float((per_pixel * valid).sum()), n), "epe": (float((epe * valid).sum()), n),
                "outliers": (float((outlier.float() * valid).sum()), n)}

    def postprocess(self, outputs: torch.Tensor, batch: Mapping[str, torch.Tensor] | None = None) -> list[Any]:
        if batch is None:
            raise ValueError("image.flow needs the batch to know each flow field's height and width")
        h, w = _grid(batch)
        flows = (outputs.float() * self.config.flow_scale).reshape(-1, h, w, 2).cpu().numpy()  # [B, H, W, 2]
        return [self._prediction(f) for f in flows]

    def _prediction(self, flow: np.ndarray) -> dict[str, Any]:
        out: dict[str, Any] = {"flow": flow}
        if self.config.kind == "disparity":
            out["disparity"] = -flow[..., 0]
        return out

    def predict(self, model, batch: Mapping[str, torch.Tensor]) -> list[Any]:
        """Frames larger than the training size (the preprocessor's index_shape) go through overlapping tiles."""
        key = "frames" if "frames" in batch else "patches"
        tile = tuple(model.preprocessor.index_shape)
        outputs = tiled_apply(lambda x: model({key: x}), batch[key], tile, min_overlap=self.config.tile_overlap,
                              tile_batch=self.config.tile_batch, weights=self.config.tile_weights)  # [B, H*W, 2]
        return self.postprocess(outputs, batch)

    def save_prediction(self, prediction: Any, out_dir: Path, stem: str) -> dict[str, Any]:
        """Write STEM.flo, STEM.npy and STEM.png (colour wheel; disparity: also STEM.disparity.npy/.png)."""
        out_dir.mkdir(parents=True, exist_ok=True)
        flow = prediction["flow"]
        files = [out_dir / f"{stem}.flo", out_dir / f"{stem}.npy", out_dir / f"{stem}.png"]
        write_flo(files[0], flow)
        np.save(files[1], flow.astype(np.float32), allow_pickle=False)
        write_png(files[2], flow_to_colour(flow))
        length = np.hypot(flow[..., 0], flow[..., 1])
        summary: dict[str, Any] = {"size": f"{flow.shape[1]}x{flow.shape[0]}",
                                   "mean_flow_px": round(float(length.mean()), 3),
                                   "max_flow_px": round(float(length.max()), 3)}
        if "disparity" in prediction:
            d = prediction["disparity"]
            files.append(out_dir / f"{stem}.disparity.npy")
            np.save(files[-1], d.astype(np.float32), allow_pickle=False)
            files.append(out_dir / f"{stem}.disparity.png")
            write_png(files[-1], _grey(d))
            summary["mean_disparity_px"] = round(float(d.mean()), 3)
        summary["files"] = [str(f) for f in files]
        return summary


def _grey(values: np.ndarray) -> np.ndarray:
    lo, hi = float(np.nanmin(values)), float(np.nanmax(values))
    scaled = (values - lo) / (hi - lo) if hi > lo else np.zeros_like(values)
    return np.round(np.nan_to_num(scaled) * 255).astype(np.uint8)
