"""Checkpoints: safetensors only, never pickle, written atomically.

`model.safetensors` holds the weights and, as metadata, everything needed to rebuild the model without the
registry file: format, core API version, the resolved pipeline spec, the build context, plugin versions, step
and metrics. `trainer_state.safetensors` beside it holds the optimizer moments, the RNG state and the data
loader's position, for `train --resume`.

A training checkpoint is one unit (`write_unit`): both files carry the same step and unit id in their metadata and
are written under temporary names; then `checkpoint.json` (format, step, unit, each part's size and temporary name)
is published by one atomic rename (the commit point); then the parts are renamed into place. Until the commit the
previous unit is untouched; after it the new unit is complete on disk (each part under its own name or its
temporary one), so a kill at any point leaves one whole unit, and `resolve_unit` finds it or refuses, in one line,
a folder whose parts come from different saves.
"""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from pathlib import Path
from typing import Any, Mapping

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..errors import CheckpointError, UserError
from ..version import CORE_API_VERSION, __version__
from .faults import fault_point
from .files import atomic_write, fsync_path as _fsync

FORMAT = "perceiver-checkpoint"
TRAINER_FORMAT = "perceiver-trainer-state"
UNIT_FORMAT = "perceiver-checkpoint-unit"
MODEL_FILE, CONFIG_FILE, UNIT_FILE = "model.safetensors", "config.json", "checkpoint.json"
MAX_MANIFEST_BYTES = 1 << 20


def model_path(path: str | os.PathLike) -> Path:
    """A checkpoint file, or a run folder holding one (`perceiver train --out DIR` writes DIR/model.safetensors)."""
    path = Path(path)
    if path.is_dir():
        published = _unit_model(path)
        if published is not None:
            return published
        if not (path / MODEL_FILE).is_file():
            raise CheckpointError(f"{path} is a folder without a {MODEL_FILE}; is it the --out of a finished "
                                  "`perceiver train`?")
        return path / MODEL_FILE
    return path


def _unit_model(folder: Path) -> Path | None:
    """The model file of the folder's last committed unit (its own name, or its temporary one when a save was cut
    between the commit and the rename), or None (no checkpoint.json, or one that does not resolve: the caller then
    reads DIR/model.safetensors and reports what is wrong with it)."""
    try:
        manifest = read_manifest(folder)
        entry = manifest["parts"].get(MODEL_FILE) if manifest is not None else None
        if entry is None:
            return None
        for candidate in (folder / MODEL_FILE, folder / entry["staged"]):
            if candidate.is_file() and candidate.stat().st_size == entry["bytes"] and \
                    header_metadata(candidate).get("unit") == manifest["unit"]:
                return candidate
    except (CheckpointError, OSError):
        pass
    return None


def atomic_save(tensors: Mapping[str, torch.Tensor], path: str | os.PathLike, metadata: Mapping[str, str]) -> None:
    """Write to a temporary file in the same folder, then rename: a crash never leaves a torn file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        _write_file(tensors, Path(tmp), metadata)
        os.replace(tmp, path)
        _fsync(path.parent)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_file(tensors: Mapping[str, torch.Tensor], path: Path, metadata: Mapping[str, str]) -> None:
    """Write and fsync one safetensors file; a full disk (safetensors raises a SafetensorError, not an OSError)
    is one CheckpointError line."""
    try:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(path), metadata=dict(metadata))
        os.chmod(path, 0o666 & ~_umask())  # mkstemp makes 0600: give the file the mode any new file would get
        _fsync(path)  # the bytes reach the disk before the name does
    except (OSError, SafetensorError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise CheckpointError(f"could not write {path.parent}: {reason} (is the disk full?); the previous "
                              "checkpoint there is unchanged") from None


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _dedupe(state: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """safetensors refuses tensors that share memory (tied weights): keep one, record the others as aliases."""
    unique: dict[str, torch.Tensor] = {}
    aliases: dict[str, str] = {}
    seen: dict[tuple, str] = {}
    for name, t in state.items():
        key = (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), tuple(t.stride()), t.dtype) \
            if t.device.type != "meta" else (id(t),)
        if key in seen:
            aliases[name] = seen[key]
        else:
            seen[key] = name
            unique[name] = t
    return unique, aliases


def save_checkpoint(path: str | os.PathLike, model, *, state: Mapping[str, torch.Tensor] | None = None, step: int = 0,
                    metrics: Mapping[str, Any] | None = None, plugins: Mapping[str, str] | None = None,
                    config_json: bool = False) -> None:
    """Save a `Pipeline`'s weights with the metadata that rebuilds it; `config_json`: also write that metadata as
    a plain config.json beside the file (run folders; off by default so that it never overwrites another's);
    `state`: the weights to save instead of `model.state_dict()` (a sharded model's gathered full state)."""
    tensors, metadata = model_payload(model, state=state, step=step, metrics=metrics, plugins=plugins)
    atomic_save(tensors, path, metadata)
    if config_json:
        write_config_json(Path(path).with_name(CONFIG_FILE), metadata, tensors)


def model_payload(model, *, state: Mapping[str, torch.Tensor] | None = None, step: int = 0,
                  metrics: Mapping[str, Any] | None = None,
                  plugins: Mapping[str, str] | None = None) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The tensors (tied weights once) and metadata of a model file; `state` replaces `model.state_dict()` (the
    full weights gathered from a sharded model)."""
    tensors, aliases = _dedupe(model.state_dict() if state is None else state)
    metadata = {
        "format": FORMAT,
        "core_api": CORE_API_VERSION,
        "core_version": __version__,
        "pipeline": json.dumps(model.spec.to_json()),
        "context": json.dumps(model.context.to_json()),
        "plugins": json.dumps(dict(plugins or {})),
        "step": str(step),
        "metrics": json.dumps(dict(metrics or {})),
        "aliases": json.dumps(aliases),
    }
    return tensors, metadata


# -- a checkpoint as one unit ----------------------------------------------------------------------------------------
def write_unit(folder: str | os.PathLike, parts: Mapping[str, tuple[Mapping[str, torch.Tensor], Mapping[str, str]]],
               step: int) -> str:
    """Write `parts` (file name -> (tensors, metadata)) as one checkpoint unit of `step` in `folder`; returns the
    unit id. The previous unit stays whole until `checkpoint.json` names the new one (see the module docstring)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    unit = f"{step}-{uuid.uuid4().hex[:12]}"
    staged: dict[str, Path] = {}
    fault_point("before-save")
    try:
        for name, (tensors, metadata) in parts.items():
            tmp = folder / f".{name}.{unit}.tmp"
            staged[name] = tmp
            _write_file(tensors, tmp, {**metadata, "step": str(step), "unit": unit})
            fault_point(f"after-{name.removesuffix('.safetensors')}-write")
        manifest = {"format": UNIT_FORMAT, "step": step, "unit": unit,
                    "parts": {name: {"bytes": tmp.stat().st_size, "staged": tmp.name} for name, tmp in staged.items()}}
        _fsync(folder)
        _atomic_json(folder / UNIT_FILE, manifest)  # the commit point
    except BaseException:
        for tmp in staged.values():
            tmp.unlink(missing_ok=True)
        raise
    fault_point("after-manifest")
    for name, tmp in staged.items():  # from here on the unit is complete on disk whatever happens
        os.replace(tmp, folder / name)
        fault_point(f"after-{name.removesuffix('.safetensors')}-rename")
    _fsync(folder)
    for name in parts:  # parts of units that an interrupted save left behind
        for old in folder.glob(f".{name}.*.tmp"):
            old.unlink(missing_ok=True)
    return unit


def _atomic_json(path: Path, data: Mapping[str, Any]) -> None:
    """The unit's manifest, whole or not at all and durable (file and folder fsynced): the commit point."""
    try:
        atomic_write(path, json.dumps(data, indent=2) + "\n", "the previous checkpoint there is unchanged")
    except UserError as exc:  # (a full disk, as every other part of the save reports it)
        raise CheckpointError(str(exc)) from None


def header_metadata(path: Path) -> dict[str, str]:
    """The metadata of a safetensors file (its header only), or a CheckpointError line."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path} is not a readable safetensors file (truncated or corrupted?): {exc}") from None


def read_manifest(folder: Path) -> dict[str, Any] | None:
    """The folder's checkpoint.json, checked key by key, or None where there is none (a run of an older version)."""
    path = folder / UNIT_FILE
    if not path.exists():
        return None
    bad = f"{path} is damaged"
    fix = "; restore it, or start the run again with --overwrite"
    try:
        if path.stat().st_size > MAX_MANIFEST_BYTES:
            raise CheckpointError(f"{bad}: {path.stat().st_size} bytes, more than {MAX_MANIFEST_BYTES}{fix}")
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise CheckpointError(f"{bad}: not JSON ({type(exc).__name__}: {' '.join(str(exc).split())}){fix}") from None
    if not isinstance(data, dict) or set(data) != {"format", "step", "unit", "parts"}:
        keys = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise CheckpointError(f"{bad}: expected the keys format, parts, step, unit; found {keys}{fix}")
    if data["format"] != UNIT_FORMAT:
        raise CheckpointError(f"{bad}: format {data['format']!r}, expected {UNIT_FORMAT!r}{fix}")
    if type(data["step"]) is not int or data["step"] < 0 or not isinstance(data["unit"], str):
        raise CheckpointError(f"{bad}: step must be a non-negative integer and unit a string{fix}")
    parts = data["parts"]
    if not isinstance(parts, dict) or not parts:
        raise CheckpointError(f"{bad}: parts must be an object naming the files of the checkpoint{fix}")
    for name, entry in parts.items():
        ok = (isinstance(entry, dict) and set(entry) == {"bytes", "staged"} and type(entry["bytes"]) is int
              and isinstance(entry["staged"], str) and Path(entry["staged"]).name == entry["staged"]
              and entry["staged"].startswith(".") and Path(name).name == name and not name.startswith("."))
        if not ok:
            raise CheckpointError(f"{bad}: parts.{name} must be a plain file name with {{bytes, staged}}{fix}")
    return data


def resolve_unit(folder: str | os.PathLike, names: tuple[str, ...], *, finish: bool = False) -> dict[str, Path]:
    """The file of each part of the folder's last complete checkpoint unit, checked to belong to one save; a
    folder whose parts come from different saves is one CheckpointError line naming their steps. `finish` (the
    caller holds the folder's lock): a unit committed but not yet renamed into place is renamed now."""
    folder = Path(folder)
    found = _resolve(folder, names)
    if finish and any(path.name != name for name, path in found.items()):
        for name, path in found.items():
            if path.name != name:
                os.replace(path, folder / name)
                found[name] = folder / name
        _fsync(folder)
    if finish:
        for name in names:
            for old in folder.glob(f".{name}.*.tmp"):
                old.unlink(missing_ok=True)
    return found


def _resolve(folder: Path, names: tuple[str, ...]) -> dict[str, Path]:
    manifest = read_manifest(folder)
    found: dict[str, Path] = {}
    described: dict[str, str] = {}
    for name in names:
        candidates = [folder / name]
        if manifest is not None and name in manifest["parts"]:
            candidates.append(folder / manifest["parts"][name]["staged"])
        for path in candidates:
            if not path.is_file():
                continue
            meta = header_metadata(path)
            if manifest is None or (meta.get("unit") == manifest["unit"] and
                                    path.stat().st_size == manifest["parts"][name]["bytes"]):
                found[name] = path
                described[name] = f"step {meta.get('step', '?')}"
                break
            if manifest is not None and meta.get("unit") == manifest["unit"]:
                described.setdefault(name, f"this unit but {path.stat().st_size} bytes, not the "
                                           f"{manifest['parts'][name]['bytes']} recorded (truncated or edited?)")
            described.setdefault(name, f"step {meta.get('step', '?')} (unit {meta.get('unit', 'none')})")
        else:
            if name not in described:
                raise CheckpointError(f"{folder} has no {name} (the checkpoint is incomplete); restore it, or start "
                                      "the run again with --overwrite")
    if manifest is not None:
        wrong = [name for name in names if name not in found]
        if wrong:
            raise CheckpointError(
                f"{folder} holds a checkpoint that is not one unit: checkpoint.json names step {manifest['step']} "
                f"but {', '.join(f'{n} is from {described[n]}' for n in wrong)}; resuming would mix two saves; "
                "restore the files of one save, or start again with --overwrite")
        return found
    steps = {name: header_metadata(path).get("step") for name, path in found.items()}
    units = {header_metadata(path).get("unit") for path in found.values()}
    if len(set(steps.values())) > 1 or len(units) > 1:
        raise CheckpointError(
            f"{folder} holds a checkpoint that is not one unit: "
            + " but ".join(f"{n} is from step {s}" for n, s in steps.items())
            + "; resuming would mix two saves; restore the files of one save, or start again with --overwrite")
    return found


def write_config_json(path: Path, metadata: Mapping[str, str], tensors: Mapping[str, torch.Tensor]) -> None:
    """A plain JSON copy of the checkpoint's metadata beside it (pipeline, context, plugins, step, metrics,
    parameter count), for any JSON tool; the safetensors metadata stays the source of truth."""
    data = _decode(metadata)
    data.pop("aliases", None)
    data["num_parameters"] = sum(t.numel() for t in tensors.values())
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:  # a full disk: the checkpoint itself is written; its JSON copy is not
        tmp.unlink(missing_ok=True)
        raise CheckpointError(f"could not write {path}: {exc.strerror or exc} (is the disk full?)") from None


def read_safetensors(path: str | os.PathLike, expected_format: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of one of our files, or a CheckpointError that says what is wrong with it."""
    path = Path(path) if expected_format != FORMAT else model_path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path} is not a readable safetensors file (truncated or corrupted?): {exc}") from None
    found = metadata.get("format")
    if found != expected_format:
        raise CheckpointError(f"{path} is a safetensors file but not a {expected_format} "
                              f"(format: {found or 'none'}); was it written by `perceiver train`?")
    check_metadata(path, metadata, tensors)
    return tensors, metadata


# the metadata of our files, key -> (JSON-encoded?, the type its value must have); all required but _OPTIONAL
_SCHEMAS: dict[str, dict[str, tuple[bool, type]]] = {
    FORMAT: {"format": (False, str), "core_api": (False, str), "core_version": (False, str),
             "pipeline": (True, dict), "context": (True, dict), "plugins": (True, dict), "step": (False, int),
             "metrics": (True, dict), "aliases": (True, dict), "unit": (False, str)},
    TRAINER_FORMAT: {"format": (False, str), "step": (False, int), "epoch": (False, int), "grad_scaler": (True, object),
                     "param_groups": (True, list), "optim_scalars": (True, dict), "loader": (True, dict),
                     "selection": (True, dict), "unit": (False, str)},
}
_OPTIONAL = {"unit", "grad_scaler", "selection"}  # the last two: trainer states of earlier versions


def check_metadata(path: Path, metadata: Mapping[str, str], tensors: Mapping[str, torch.Tensor]) -> None:
    """Check a file's metadata against its schema (keys, JSON, types, aliases naming real tensors): damaged
    metadata is one CheckpointError line, never a KeyError or JSONDecodeError later."""
    schema = _SCHEMAS[metadata["format"]]
    bad = f"{path} has damaged metadata"
    fix = "; was the file edited? use an undamaged copy"
    missing = sorted(set(schema) - _OPTIONAL - set(metadata))
    extra = sorted(set(metadata) - set(schema))
    if missing or extra:
        parts = ([f"missing keys {', '.join(missing)}"] if missing else []) + \
                ([f"unknown keys {', '.join(extra)}"] if extra else [])
        raise CheckpointError(f"{bad}: {'; '.join(parts)}{fix}")
    for key, (encoded, kind) in schema.items():
        if key not in metadata:
            continue
        raw = metadata[key]
        try:
            value = json.loads(raw) if encoded else (int(raw) if kind is int else raw)
        except (ValueError, RecursionError) as exc:
            what = "JSON" if encoded else "an integer"
            raise CheckpointError(f"{bad}: {key} is not {what} ({' '.join(str(exc).split())[:120]}){fix}") from None
        if not isinstance(value, kind) or (kind is int and value < 0):
            raise CheckpointError(f"{bad}: {key} must be {_KIND_NAMES.get(kind, kind.__name__)}, got "
                                  f"{type(value).__name__}{fix}")
        if key in ("plugins", "aliases") and not all(isinstance(k, str) and isinstance(v, str)
                                                     for k, v in value.items()):
            raise CheckpointError(f"{bad}: {key} must map names to names{fix}")
        if key == "pipeline" and not isinstance(value.get("name"), str):
            raise CheckpointError(f"{bad}: pipeline has no name{fix}")
        if key == "aliases":
            lost = [f"{a} -> {t}" for a, t in value.items() if t not in tensors]
            if lost:
                raise CheckpointError(f"{bad}: aliases name tensors the file does not hold ({lost[0]}){fix}")


_KIND_NAMES = {dict: "an object", list: "an array", int: "a non-negative integer", str: "a string"}


def checkpoint_metadata(path: str | os.PathLike) -> dict[str, Any]:
    _, meta = read_safetensors(path, FORMAT)
    return _decode(meta)


def inspect_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Metadata of a checkpoint without building its model: pipeline, plugins, step, metrics, parameter count
    (from the tensor headers; tied weights counted once), file size."""
    from safetensors import safe_open

    file = model_path(path)
    _, raw = read_safetensors(file, FORMAT)  # checks the file and its format
    meta = _decode(raw)
    with safe_open(str(file), framework="pt") as f:
        count = 0
        for key in f.keys():
            shape = f.get_slice(key).get_shape()
            n = 1
            for d in shape:
                n *= d
            count += n
    pipeline = meta.get("pipeline", {})
    return {"file": str(file), "pipeline": pipeline.get("name"), "description": pipeline.get("description", ""),
            "components": {**{k: v.get("use") for k, v in pipeline.items() if isinstance(v, dict) and "use" in v},
                           **_input_components(pipeline)},
            "plugins": meta.get("plugins", {}), "core_version": meta.get("core_version"),
            "core_api": meta.get("core_api"), "step": meta.get("step"), "metrics": meta.get("metrics", {}),
            "num_parameters": count, "bytes": file.stat().st_size, "spec": pipeline}


def _input_components(pipeline: Mapping[str, Any]) -> dict[str, str]:
    """A multi-input pipeline's inputs as components: {"inputs.image": "image.pixels + fourier", ...}."""
    inputs = pipeline.get("inputs")
    if not isinstance(inputs, dict):
        return {}
    out = {}
    for name, entry in inputs.items():
        if isinstance(entry, dict):
            uses = [entry.get(s, {}).get("use") for s in ("preprocessor", "position") if isinstance(entry.get(s), dict)]
            out[f"inputs.{name}"] = " + ".join(str(u) for u in uses if u)
    return out


def _decode(meta: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = dict(meta)
    for key in ("pipeline", "context", "plugins", "metrics", "aliases"):
        if key in meta:
            out[key] = json.loads(meta[key])
    out["step"] = int(meta.get("step", 0))
    return out


def load_weights(model, tensors: Mapping[str, torch.Tensor], context: str, *, loader=None) -> None:
    """Load a state dict exactly, or raise one CheckpointError line naming what differs (keys and shapes);
    `loader` loads the checked tensors instead of `model.load_state_dict` (a sharded model: each process its
    shard; its state_dict's tensors have the full shapes)."""
    own = model.state_dict()
    missing = [k for k in own if k not in tensors]
    unexpected = [k for k in tensors if k not in own]
    reshaped = [f"{k}: {list(tensors[k].shape)} in the file, {list(own[k].shape)} here" for k in own
                if k in tensors and tensors[k].shape != own[k].shape]
    retyped = [f"{k}: {_dtype(tensors[k])} in the file, {_dtype(own[k])} here" for k in own
               if k in tensors and tensors[k].dtype != own[k].dtype]  # e.g. a header edited F32 -> I32
    if missing or unexpected or reshaped or retyped:
        parts = [f"{len(x)} {what} (e.g. {x[0]})" for x, what in
                 ((missing, "missing"), (unexpected, "unexpected"), (reshaped, "of another shape"),
                  (retyped, "of another dtype")) if x]
        raise CheckpointError(f"{context}: tensors " + "; ".join(parts))
    (loader or model.load_state_dict)(tensors)


def _dtype(t: torch.Tensor) -> str:
    return str(t.dtype).removeprefix("torch.")


def from_checkpoint(path: str | os.PathLike, *, device: str | torch.device = "cpu", plugin_manager=None):
    """A ready model (eval mode) from a checkpoint file or a run folder; needs the plugins that built it, not the
    registry file (the resolved pipeline is in the checkpoint's metadata)."""
    from ..interfaces import BuildContext
    from ..model.pipeline import build_from_spec
    from ..registry.file import resolve_table

    path = model_path(path)
    tensors, raw_meta = read_safetensors(path, FORMAT)
    meta = _decode(raw_meta)
    if meta.get("core_api") != CORE_API_VERSION:
        raise CheckpointError(f"{path} was written for core API {meta.get('core_api')}; this perceiver-core "
                              f"({__version__}) reads API {CORE_API_VERSION}")
    spec_json = dict(meta["pipeline"])
    name = spec_json.pop("name", None)
    if not isinstance(name, str):
        raise CheckpointError(f"{path} has damaged metadata: pipeline has no name; use an undamaged copy")
    spec_json.pop("requires", None)
    try:
        spec = resolve_table(name, spec_json, f"{path}[pipeline]", plugin_manager)
        model = build_from_spec(spec, BuildContext.from_json(meta["context"]), plugin_manager=plugin_manager)
    except CheckpointError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:  # a damaged context, or a spec edited by hand
        reason = " ".join(str(exc).split())[:300]
        raise CheckpointError(f"{path}: its metadata does not describe a model this version can build "
                              f"({type(exc).__name__}: {reason}); use an undamaged copy") from None
    for alias, target in meta.get("aliases", {}).items():
        tensors[alias] = tensors[target]
    load_weights(model, tensors, f"{path} does not fit the model its metadata describes")
    model.checkpoint_metadata = meta
    return model.to(device).eval()
