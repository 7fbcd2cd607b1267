"""`text.files`: the user's own text through the core's file-backed dataset (`perceiver_core.datasets`).

Layouts: a folder of .txt/.md files (class subfolders for classification, or loose files with label_column = ""
for masked byte modelling), a manifest naming text files, or a JSON lines / CSV / Parquet table with a text column
and an optional label column. Each example is {"text": str} (+ "label"); a file is read up to `max_bytes` (the
model sees at most max_length bytes anyway) and must be UTF-8.
"""

from __future__ import annotations

from typing import Any, Mapping

from perceiver_core import BuildContext
from perceiver_core.datasets import FileDataset

from .configs import TextFilesConfig


class TextFilesDataset(FileDataset):
    component = "text.files"
    extensions = (".txt", ".md", ".text")

    def __init__(self, config: TextFilesConfig, context: BuildContext | None = None):
        super().__init__(config, context)
        self.config: TextFilesConfig = config

    def decode(self, row: Mapping[str, Any]) -> dict[str, Any]:
        c = self.config
        if c.table:
            text = row.get(c.text_column)
            if not isinstance(text, str):
                raise ValueError(f"column {c.text_column!r} holds {type(text).__name__}, expected text")
            return {"text": text[:c.max_bytes]}
        with open(row["path"], "rb") as f:
            data = f.read(c.max_bytes)  # bounded: the model reads at most max_length bytes of it
        try:
            return {"text": data.decode("utf-8", errors=c.encoding_errors)}
        except UnicodeDecodeError as exc:
            if exc.start >= len(data) - 3:  # a character cut by the max_bytes bound
                return {"text": data[:exc.start].decode("utf-8")}
            raise ValueError(f"not UTF-8 text (byte {exc.start}); set data.encoding_errors = \"replace\" to "
                             "read it anyway") from None

    def cache_settings(self) -> dict[str, Any]:
        return {"text_column": self.config.text_column, "max_bytes": self.config.max_bytes,
                "errors": self.config.encoding_errors}

    def stats_start(self) -> list[int]:
        return [0, 0]  # examples, characters

    def stats_add(self, state: list[int], example: Mapping[str, Any]) -> list[int]:
        return [state[0] + 1, state[1] + len(example["text"])]

    def stats_finish(self, state: list[int]) -> dict[str, Any]:
        return {"mean_chars": round(state[1] / max(state[0], 1), 1)}

    def summarise(self, example: Mapping[str, Any]) -> str:
        text = example["text"]
        return f"{len(text):,} chars: {text[:40]!r}"

    def extra_info(self) -> dict[str, Any]:
        return {"modality": "text"}
