"""What validates trains: build a resolved pipeline on the meta device (shapes only, nothing allocated), run one
training example through it there, and check what the build and the training loop would reject, before a run
starts.

`perceiver validate` runs it for every pipeline of the files and `perceiver train` before it allocates anything, so
both give the same one-line errors: heads that do not divide the channels the data gives, a mean of the wrong
length, fewer classes than the dataset has, a split the dataset lacks, a model of absurd size. Each error names the
file:line:key of the value at fault (or the `--set` that wrote it) when the spec came from registry files.

A dataset whose files are missing or unreadable here (a folder that exists only on the training machine) is not a
fault of the registry file: `check_pipeline` returns a note and leaves that pipeline's model unbuilt.
"""

from __future__ import annotations

import json
from typing import Any, Iterable

import torch

from ..errors import BuildError, DataError, RegistryError, UserError
from ..interfaces import BuildContext
from ..registry.spec import PipelineSpec
from .pipeline import build_dataset, build_from_spec

# Parameters (and buffers) a pipeline may have: 20 billion, 80 GB in fp32. A larger model is a typo or an attack
# (num_latents = 65536 with latent_channels = 65536 and unshared blocks), refused before anything is allocated.
MAX_PARAMETERS = 20_000_000_000
SPLIT_KEYS = ("train_split", "eval_split", "val_split")


class PipelineChecker:
    """Checks pipelines one after the other; datasets are built once per distinct `data` table (validating
    thousands of pipelines over a few datasets stays linear in the number of pipelines, not in their data)."""

    def __init__(self, registry=None, plugin_manager=None):
        from ..plugins.manager import get_plugin_manager

        self.registry = registry
        self.pm = plugin_manager or get_plugin_manager()
        self._datasets: dict[str, tuple[tuple[str, ...], dict[str, Any]] | DataError] = {}
        self.builds = 0  # models built (for tests: one per pipeline)

    def check(self, spec: PipelineSpec, overrides: Iterable[str] = ()) -> str | None:
        """Raise a (located) UserError if the pipeline would not build or train; return a note when its data is not
        here to check against, else None."""
        overrides = list(overrides)
        try:
            return self._check(spec)
        except BuildError as exc:
            detail = str(exc).removeprefix(f"pipeline {spec.name!r}: ")  # "cannot build <table> <use>: <why>"
            raise self._located(spec, exc.section.split(".") if exc.section else [], detail, str(exc), overrides) \
                from None
        except _Fault as exc:
            raise self._located(spec, exc.subpath, exc.message, f"pipeline {spec.name!r}: {exc.message}", overrides) \
                from None
        except UserError as exc:
            section = getattr(exc, "section", None)
            if section is None or isinstance(exc, RegistryError):
                raise
            raise self._located(spec, section.split("."), str(exc), str(exc), overrides) from None

    # -- internals -----------------------------------------------------------------------------------------
    def _dataset(self, spec: PipelineSpec) -> tuple[tuple[str, ...], dict[str, Any], Any] | DataError:
        """The dataset's splits, info and a lazy first training example, once per distinct data table."""
        key = json.dumps(spec["data"].to_json(), sort_keys=True)
        if key not in self._datasets:
            try:
                dataset = build_dataset(spec, self.pm)
                self._datasets[key] = (tuple(dataset.splits), dict(dataset.info()), dataset)
            except DataError as exc:  # files missing or unreadable here: the data's problem, not the file's
                self._datasets[key] = exc
        return self._datasets[key]

    def _check(self, spec: PipelineSpec) -> str | None:
        dataset = self._dataset(spec)
        if isinstance(dataset, DataError):
            return f"pipeline {spec.name!r}: its data cannot be read here, so its model was not built: {dataset}"
        splits, info, data = dataset
        for key in SPLIT_KEYS if splits else ():  # no splits at all: a build-only dataset (`none`, for presets)
            split = getattr(spec.train, key)
            if split is not None and split not in splits:
                raise _Fault(["train", key], f"dataset {spec['data'].use!r} has no split {split!r}; splits: "
                                             f"{', '.join(splits)}")
        try:
            with torch.device("meta"):  # shapes only: a model of any size costs nothing here
                model = build_from_spec(spec, BuildContext(dataset=dict(info)), plugin_manager=self.pm)
        except UserError:
            raise
        except Exception as exc:  # noqa: BLE001 - a factory that crashed on a validated config: still one line
            raise _Fault([], f"cannot be built ({type(exc).__name__}: {' '.join(str(exc).split())[:300]}); this "
                             "is a bug in the component, please report it") from None
        self.builds += 1
        _check_size(model)
        if spec.train.train_split in splits:
            _check_forward(model, data, spec.train.train_split)
        return None

    def _located(self, spec: PipelineSpec, subpath: list[str], detail: str, message: str,
                 overrides: list[str]) -> UserError:
        if self.registry is None or spec.name not in {**self.registry.pipelines, **self.registry.presets}:
            return UserError(message)
        fields: Any = ()
        if len(subpath) == 1 and subpath[0] in spec.components:
            fields = type(spec[subpath[0]].config).model_fields
        elif subpath[:1] == ["train"]:
            fields = type(spec.train).model_fields
        return self.registry.error_at(spec.name, subpath, detail, overrides, fields)


class _Fault(Exception):
    def __init__(self, subpath: list[str], message: str):
        super().__init__(message)
        self.subpath, self.message = subpath, message


def _check_size(model: torch.nn.Module) -> None:
    """Refuse a model whose parameters and buffers exceed MAX_PARAMETERS, naming the section holding the most."""
    per_section: dict[str, int] = {}
    for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
        section = name.split(".", 1)[0]
        per_section[section] = per_section.get(section, 0) + tensor.numel()
    total = sum(per_section.values())
    if total > MAX_PARAMETERS:
        section = max(per_section, key=per_section.get)
        raise _Fault([section], f"the model would have {total:,} parameters ({total * 4 / 1e9:,.0f} GB in fp32), "
                                f"more than the limit of {MAX_PARAMETERS:,}; its {section} alone has "
                                f"{per_section[section]:,}: reduce its sizes")


def _check_forward(model, dataset, split: str) -> None:
    """One training example through the model on the meta device (shapes only): what the data gives must be what
    the model was built for (e.g. a HiP modality of another size). Only the components' own errors count: an op
    that the meta device cannot run says nothing about the file."""
    from ..data.loader import _Prepare, collate

    try:
        examples = dataset.examples(split)
        if len(examples) == 0:
            return
        # as the training loader prepares it: the preprocessor's tensors plus the task's targets
        batch = collate([_Prepare(examples, model.prepare, model.task.target_keys)((0, 0))])
    except UserError:
        return  # the data's own problem, reported when training reads it
    except Exception:  # noqa: BLE001 - not checkable here
        return
    batch = {k: v.to("meta") if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
    try:
        with torch.no_grad():
            model.eval()
            model.loss(batch)
    except UserError as exc:
        raise _Fault([], f"its model does not take its data: {exc}") from None
    except Exception:  # noqa: BLE001 - e.g. an op without a meta kernel
        return


def check_pipeline(spec: PipelineSpec, *, registry=None, overrides: Iterable[str] = (),
                   plugin_manager=None) -> str | None:
    """Check one pipeline (see PipelineChecker.check)."""
    return PipelineChecker(registry, plugin_manager).check(spec, overrides)
