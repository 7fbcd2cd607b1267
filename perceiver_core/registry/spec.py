"""`PipelineSpec`: a pipeline resolved from a registry file and validated against the installed components.

A pipeline has one input (`preprocessor` + `position` sections) or several (`[pipelines.NAME.inputs.<input>]`
tables, each with its own `preprocessor`, `position` and masking options; `packing` sets the common width). Both
resolve to `PipelineSpec.inputs`, a mapping input name -> `InputChoice`: the model is built from that mapping
whatever form the file used (the one-input form is one input named after its modality).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..config.train import InitFromConfig, TrainConfig

# Section of a pipeline table -> component kind it names with `use`.
SECTIONS = {"task": "task", "data": "dataset", "preprocessor": "preprocessor", "position": "position",
            "encoder": "encoder", "decoder": "decoder"}
OPTIONAL_SECTIONS = {"position": {"use": "none"}}
#: The sections one input has; a multi-input pipeline has them in each `inputs.<name>` table instead.
INPUT_SECTIONS = ("preprocessor", "position")
PIPELINE_KEYS = ("description", "extends", "requires", *SECTIONS, "inputs", "packing", "train", "backend",
                 "init_from")
#: Input names: lower-case identifiers (they name batch keys `<input>.<key>` and state-dict entries).
INPUT_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"


class InputOptions(BaseModel):
    """The options of one input of a multi-input pipeline, beside its `preprocessor` and `position`."""

    model_config = ConfigDict(extra="forbid")
    mask_probability: float | None = Field(
        None, ge=0, le=1, description="probability that each element of this input is replaced by the input's "
                                      "trainable mask token in training (a label masked with 1.0 is never seen: the "
                                      "model must predict it); unset: the input has no mask token")
    eval_mask_probability: float | None = Field(
        None, ge=0, le=1, description="the same in evaluation and prediction (default: mask_probability); 1.0 hides "
                                      "the input to read it back, e.g. a label the model must predict")


class PackingConfig(BaseModel):
    """How several inputs become one byte array (DeepMind's multimodal preprocessor): each input's data and
    position features are padded to a common width of max(widths) + min_padding channels with a trainable
    vector of its own, then concatenated along M in sorted input-name order."""

    model_config = ConfigDict(extra="forbid")
    min_padding: int | None = Field(
        None, ge=0, le=4096, description="channels added to the widest input (default: 2 with several inputs, as "
                                         "DeepMind's and HF's; 0 with one input: nothing is added)")


@dataclass
class ComponentChoice:
    use: str
    config: BaseModel

    def to_json(self) -> dict[str, Any]:
        return {"use": self.use, **self.config.model_dump(mode="json")}


@dataclass
class InputChoice:
    """One input of a pipeline: its preprocessor, its position encoding and its masking options."""

    preprocessor: ComponentChoice
    position: ComponentChoice
    options: InputOptions = field(default_factory=InputOptions)

    def to_json(self) -> dict[str, Any]:
        return {"preprocessor": self.preprocessor.to_json(), "position": self.position.to_json(),
                **self.options.model_dump(mode="json", exclude_none=True)}


def input_name(preprocessor_use: str) -> str:
    """The name of the one input of a one-input pipeline: its modality, the preprocessor's plugin prefix
    ("image.pixels" -> "image"; a core preprocessor's own name)."""
    return preprocessor_use.split(".", 1)[0]


@dataclass
class PipelineSpec:
    name: str
    description: str
    components: dict[str, ComponentChoice]  # section -> choice (no preprocessor/position with several inputs)
    train: TrainConfig
    backend: str = "auto"
    requires: dict[str, str] = field(default_factory=dict)
    source: str = "?"
    init_from: InitFromConfig | None = None  # fine-tuning: weights to start from
    #: several inputs (`inputs.<name>` tables), sorted by name; None: the one-input form (see `inputs`)
    multi_inputs: dict[str, InputChoice] | None = None
    packing: PackingConfig = field(default_factory=PackingConfig)

    def __getitem__(self, section: str) -> ComponentChoice:
        return self.components[section]

    @property
    def inputs(self) -> dict[str, InputChoice]:
        """Input name -> its choices, in packing order (sorted names); one entry for the one-input form."""
        if self.multi_inputs is not None:
            return dict(sorted(self.multi_inputs.items()))
        pre = self.components["preprocessor"]
        return {input_name(pre.use): InputChoice(pre, self.components["position"])}

    def min_padding(self) -> int:
        if self.packing.min_padding is not None:
            return self.packing.min_padding
        return 0 if len(self.inputs) == 1 else 2

    def to_json(self) -> dict[str, Any]:
        """The resolved spec: every default filled in, no `extends`; what a checkpoint records."""
        out: dict[str, Any] = {"name": self.name, "description": self.description}
        out.update({section: choice.to_json() for section, choice in self.components.items()})
        if self.multi_inputs is not None:
            out["inputs"] = {name: choice.to_json() for name, choice in self.inputs.items()}
        if self.packing.min_padding is not None:
            out["packing"] = self.packing.model_dump(mode="json", exclude_none=True)
        out["train"] = self.train.model_dump(mode="json")
        out["backend"] = self.backend
        if self.requires:
            out["requires"] = dict(self.requires)
        if self.init_from is not None:
            out["init_from"] = self.init_from.model_dump(mode="json", exclude_defaults=True)
        return out
