"""Checkpoints: safetensors only, never pickle, written atomically.

`model.safetensors` holds the weights and, as metadata, everything needed to rebuild the model without the
registry file: format, core API version, the resolved pipeline spec, the build context, plugin versions, step
and metrics. `trainer_state.safetensors` beside it holds the optimizer moments, the RNG state and the data
loader's position, for `train --resume`.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Mapping

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..errors import CheckpointError
from ..version import CORE_API_VERSION, __version__

FORMAT = "perceiver-checkpoint"
TRAINER_FORMAT = "perceiver-trainer-state"
MODEL_FILE, CONFIG_FILE = "model.safetensors", "config.json"


def model_path(path: str | os.PathLike) -> Path:
    """A checkpoint file, or a run folder holding one (`perceiver train --out DIR` writes DIR/model.safetensors)."""
    path = Path(path)
    if path.is_dir():
        if not (path / MODEL_FILE).is_file():
            raise CheckpointError(f"{path} is a folder without a {MODEL_FILE}; is it the --out of a finished "
                                  "`perceiver train`?")
        return path / MODEL_FILE
    return path


def atomic_save(tensors: Mapping[str, torch.Tensor], path: str | os.PathLike, metadata: Mapping[str, str]) -> None:
    """Write to a temporary file in the same folder, then rename: a crash never leaves a torn file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, tmp, metadata=dict(metadata))
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600: give the file the mode any new file would get
        _fsync(tmp)  # the bytes reach the disk before the name does
        os.replace(tmp, path)
        _fsync(path.parent)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync(path: str | os.PathLike) -> None:
    """fsync a file, or a folder (so that a rename in it is durable); folders cannot be opened everywhere."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


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


def save_checkpoint(path: str | os.PathLike, model, *, step: int = 0, metrics: Mapping[str, Any] | None = None,
                    plugins: Mapping[str, str] | None = None, config_json: bool = False) -> None:
    """Save a `Pipeline`'s weights with the metadata that rebuilds it; `config_json`: also write that metadata as
    a plain config.json beside the file (run folders; off by default so that it never overwrites another's)."""
    tensors, aliases = _dedupe(model.state_dict())
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
    atomic_save(tensors, path, metadata)
    if config_json:
        write_config_json(Path(path).with_name(CONFIG_FILE), metadata, tensors)


def write_config_json(path: Path, metadata: Mapping[str, str], tensors: Mapping[str, torch.Tensor]) -> None:
    """A plain JSON copy of the checkpoint's metadata beside it (pipeline, context, plugins, step, metrics,
    parameter count), for any JSON tool; the safetensors metadata stays the source of truth."""
    data = _decode(metadata)
    data.pop("aliases", None)
    data["num_parameters"] = sum(t.numel() for t in tensors.values())
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


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
    return tensors, metadata


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
            "components": {k: v.get("use") for k, v in pipeline.items() if isinstance(v, dict) and "use" in v},
            "plugins": meta.get("plugins", {}), "core_version": meta.get("core_version"),
            "core_api": meta.get("core_api"), "step": meta.get("step"), "metrics": meta.get("metrics", {}),
            "num_parameters": count, "bytes": file.stat().st_size, "spec": pipeline}


def _decode(meta: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = dict(meta)
    for key in ("pipeline", "context", "plugins", "metrics", "aliases"):
        if key in meta:
            out[key] = json.loads(meta[key])
    out["step"] = int(meta.get("step", 0))
    return out


def load_weights(model, tensors: Mapping[str, torch.Tensor], context: str) -> None:
    """Load a state dict exactly, or raise one CheckpointError line naming what differs (keys and shapes)."""
    own = model.state_dict()
    missing = [k for k in own if k not in tensors]
    unexpected = [k for k in tensors if k not in own]
    reshaped = [f"{k}: {list(tensors[k].shape)} in the file, {list(own[k].shape)} here" for k in own
                if k in tensors and tensors[k].shape != own[k].shape]
    if missing or unexpected or reshaped:
        parts = [f"{len(x)} {what} (e.g. {x[0]})" for x, what in
                 ((missing, "missing"), (unexpected, "unexpected"), (reshaped, "of another shape")) if x]
        raise CheckpointError(f"{context}: tensors " + "; ".join(parts))
    model.load_state_dict(tensors)


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
    name = spec_json.pop("name")
    spec_json.pop("requires", None)
    spec = resolve_table(name, spec_json, f"{path}[pipeline]", plugin_manager)
    model = build_from_spec(spec, BuildContext.from_json(meta["context"]), plugin_manager=plugin_manager)
    for alias, target in meta.get("aliases", {}).items():
        tensors[alias] = tensors[target]
    load_weights(model, tensors, f"{path} does not fit the model its metadata describes")
    model.checkpoint_metadata = meta
    return model.to(device).eval()
