"""Fine-tuning: initialise a model from another checkpoint's weights, module by module, and freeze modules.

    init_from = { checkpoint = "runs/base", reinit = ["decoder"], freeze = ["encoder"] }   # registry file
    perceiver train digits --out r --init-from runs/base --reinit decoder --freeze encoder # the same, CLI

The source is any checkpoint of ours: a `perceiver train` run or an `import-hf` result. A tensor is loaded when its
module (the first part of its name: preprocessor, position, encoder, decoder, task) is selected, the file has it
and the shapes agree; everything else keeps its fresh initialisation. `describe` says so in one line.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from ..config.train import MODULES, InitFromConfig
from .checkpoint import FORMAT, model_path, read_safetensors


@dataclass
class InitReport:
    source: str
    loaded: dict[str, int] = field(default_factory=dict)  # module -> tensors loaded
    reinit: dict[str, int] = field(default_factory=dict)  # module -> tensors kept fresh (asked for, or not selected)
    reshaped: list[str] = field(default_factory=list)  # tensors of another shape in the file (kept fresh)
    missing: list[str] = field(default_factory=list)  # tensors of this model the file lacks (kept fresh)
    unused: int = 0  # tensors of the file this model does not have
    frozen: list[str] = field(default_factory=list)

    def describe(self) -> str:
        def counts(d):
            return ", ".join(f"{m} ({n})" for m, n in d.items()) or "nothing"

        parts = [f"init from {self.source}: loaded {counts(self.loaded)}", f"re-initialised {counts(self.reinit)}"]
        if self.reshaped:
            parts.append(f"{len(self.reshaped)} of another shape kept fresh (e.g. {self.reshaped[0]})")
        if self.missing:
            parts.append(f"{len(self.missing)} not in the file kept fresh (e.g. {self.missing[0]})")
        parts.append(f"skipped {self.unused} tensor(s) of the file this model lacks")
        if self.frozen:
            parts.append(f"frozen: {', '.join(self.frozen)}")
        return "; ".join(parts)

    def to_json(self) -> dict:
        return {"source": self.source, "loaded": self.loaded, "reinit": self.reinit, "reshaped": self.reshaped,
                "missing": self.missing, "unused": self.unused, "frozen": self.frozen}


def _module(key: str) -> str:
    return key.split(".", 1)[0]


def init_weights(model: nn.Module, config: InitFromConfig) -> InitReport:
    """Load the selected modules' tensors from `config.checkpoint` into `model` (in place)."""
    path = model_path(config.checkpoint)
    tensors, meta = read_safetensors(path, FORMAT)
    import json

    for alias, target in json.loads(meta.get("aliases", "{}")).items():
        tensors[alias] = tensors[target]
    selected = set(config.load or MODULES) - set(config.reinit)
    report = InitReport(str(path))
    own = model.state_dict()
    new = {}
    for key, value in own.items():
        module = _module(key)
        if module not in selected:
            report.reinit[module] = report.reinit.get(module, 0) + 1
        elif key not in tensors:
            report.missing.append(key)
            report.reinit[module] = report.reinit.get(module, 0) + 1
        elif tensors[key].shape != value.shape:
            report.reshaped.append(f"{key}: {list(tensors[key].shape)} in the file, {list(value.shape)} here")
            report.reinit[module] = report.reinit.get(module, 0) + 1
        else:
            new[key] = tensors[key]
            report.loaded[module] = report.loaded.get(module, 0) + 1
    report.unused = sum(1 for key in tensors if key not in own)
    model.load_state_dict(new, strict=False)
    return report


def freeze(model: nn.Module, modules) -> list[str]:
    """Stop gradients for the parameters of `modules` (names of the pipeline's parts)."""
    frozen = sorted(set(modules))
    for name, p in model.named_parameters():
        if _module(name) in frozen:
            p.requires_grad_(False)
    return frozen
