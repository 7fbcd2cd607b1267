"""`none`: a dataset without examples; it only reports the facts of its config (image shape, classes)."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from ..config.data import NoDataConfig
from ..errors import UserError
from ..interfaces import BuildContext, Dataset


class NoDataset(Dataset):
    splits = ()

    def __init__(self, config: NoDataConfig, context: BuildContext | None = None):
        self.config = config

    def info(self) -> dict[str, Any]:
        return {k: v for k, v in (("image_shape", self.config.image_shape),
                                  ("num_classes", self.config.num_classes)) if v is not None}

    def examples(self, split: str) -> Sequence[Mapping[str, Any]]:
        raise UserError("this pipeline has no dataset (data = { use = \"none\" }): it can be built, imported and "
                        "used by `perceiver predict` on files, not trained or evaluated; set data.use to a dataset")
