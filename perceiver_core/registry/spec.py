"""`PipelineSpec`: a pipeline resolved from a registry file and validated against the installed components."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from ..config.train import InitFromConfig, TrainConfig

# Section of a pipeline table -> component kind it names with `use`.
SECTIONS = {"task": "task", "data": "dataset", "preprocessor": "preprocessor", "position": "position",
            "encoder": "encoder", "decoder": "decoder"}
OPTIONAL_SECTIONS = {"position": {"use": "none"}}
PIPELINE_KEYS = ("description", "extends", "requires", *SECTIONS, "train", "backend", "init_from")


@dataclass
class ComponentChoice:
    use: str
    config: BaseModel

    def to_json(self) -> dict[str, Any]:
        return {"use": self.use, **self.config.model_dump(mode="json")}


@dataclass
class PipelineSpec:
    name: str
    description: str
    components: dict[str, ComponentChoice]  # section -> choice
    train: TrainConfig
    backend: str = "auto"
    requires: dict[str, str] = field(default_factory=dict)
    source: str = "?"
    init_from: InitFromConfig | None = None  # fine-tuning: weights to start from

    def __getitem__(self, section: str) -> ComponentChoice:
        return self.components[section]

    def to_json(self) -> dict[str, Any]:
        """The resolved spec: every default filled in, no `extends`; what a checkpoint records."""
        out: dict[str, Any] = {"name": self.name, "description": self.description}
        out.update({section: choice.to_json() for section, choice in self.components.items()})
        out["train"] = self.train.model_dump(mode="json")
        out["backend"] = self.backend
        if self.requires:
            out["requires"] = dict(self.requires)
        if self.init_from is not None:
            out["init_from"] = self.init_from.model_dump(mode="json", exclude_defaults=True)
        return out
