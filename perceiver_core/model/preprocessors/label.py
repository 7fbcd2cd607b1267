"""`label`: a class label as one input element, its one-hot vector [B, 1, K] (HF's PerceiverOneHotPreprocessor).

Given a vector of class scores instead of an index (`label_scores` [B, K]), it is used as it is; an example
without a label gets zeros (for a model that hides the label anyway and predicts it). Masked with
probability 1 (the pipeline's `mask_probability`), the element is always the input's mask token: the model must
predict the label from the other inputs, a classifier inside an autoencoder (Perceiver IO's Kinetics model).
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch
import torch.nn.functional as F

from ...byte_array import ByteArray
from ...config.multimodal import LabelConfig
from ...errors import InputSizeError
from ...interfaces import BuildContext, Preprocessor


class LabelPreprocessor(Preprocessor):
    tensor_input = "label"  # model({"label": class indices [B]})

    def __init__(self, config: LabelConfig, context: BuildContext | None = None):
        super().__init__()
        known = context.dataset.get("num_classes") if context is not None else None
        num_classes = config.num_classes or known
        if num_classes is None:
            raise ValueError("label needs num_classes (the dataset does not say how many classes it has)")
        if known is not None and config.num_classes is not None and known != config.num_classes:
            raise ValueError(f"label: num_classes is {config.num_classes} but the dataset has {known} classes")
        self.config = config
        self.num_classes = int(num_classes)
        self.index_shape = (1,)
        self.output_channels = self.num_classes

    def prepare(self, example: Mapping[str, Any]) -> dict[str, Any]:
        key = self.config.key
        if key not in example:  # nothing to show: all zeros (as HF's example feeds a hidden label)
            return {"label_scores": torch.zeros(self.num_classes)}
        value = np.asarray(example[key])
        if value.ndim == 0:
            k = int(value)
            if not 0 <= k < self.num_classes:
                raise InputSizeError(f"label: class {k} is outside 0..{self.num_classes - 1}")
            return {"label": k}
        if value.shape != (self.num_classes,):
            raise InputSizeError(f"label: class scores must have shape [{self.num_classes}], got {list(value.shape)}")
        return {"label_scores": torch.as_tensor(value, dtype=torch.float32)}

    def forward(self, batch: Mapping[str, torch.Tensor]) -> ByteArray:
        if "label_scores" in batch:
            scores = batch["label_scores"].float()  # [B, K]
        else:
            scores = F.one_hot(batch["label"].long(), self.num_classes).float()  # [B, K]
        return ByteArray(scores[:, None, :], self.index_shape, modality="label")  # [B, 1, K]
