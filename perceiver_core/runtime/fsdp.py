"""FSDP2 (`train.parallel = "fsdp"`): parameters, gradients and optimizer state sharded across processes, for
models that do not fit one device.

    torchrun --standalone --nproc-per-node 2 -m perceiver_core train digits --out runs/d --set train.parallel=fsdp

What is sharded: `fully_shard` is applied to every attention block (each cross-attend and self-attend of the
encoder and decoder, HiP's blocks' attends: the regions of `model.layers.compile.regions`), then to the root
pipeline (the preprocessor, positions, latents, queries and heads not inside a block). Each process keeps 1/world
of every parameter, its gradient and its Adam/LAMB moments; a block's full weights exist only while it runs
(all-gathered before, freed after; a block shared by several layers is gathered again at each use).

Checkpoints stay one file per part, in the single-process format: every process takes part in gathering the full
model (`get_model_state_dict(full_state_dict=True, cpu_offload=True)`: to the host one tensor at a time) and the full
optimizer state, and rank 0 writes the usual `model.safetensors` and `trainer_state.safetensors` as one unit.
So `evaluate`, `predict`, `inspect` and `from_checkpoint` read an FSDP run unchanged, the run resumes exactly
(`set_model_state_dict` / `set_optimizer_state_dict` give each process its shard of the saved tensors back).
The host must hold one full copy of the model and its optimizer state while saving (the device never does).
"""

from __future__ import annotations

import warnings
from typing import Any, Mapping

import torch
from torch import nn

from ..errors import UserError


def _api():
    try:
        from torch.distributed.checkpoint import state_dict as dcp_state
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard
    except ImportError as exc:  # torch without distributed support, or older than FSDP2
        raise UserError(f"train.parallel = 'fsdp' needs torch with torch.distributed and FSDP2 (fully_shard); this "
                        f"torch {torch.__version__} has none ({exc}); use train.parallel = 'ddp'") from None
    return fully_shard, init_device_mesh, dcp_state


def shard_model(model: nn.Module, device: torch.device, world_size: int) -> int:
    """Shard `model` in place over all processes: every attention block, then the root; returns the number of
    blocks sharded on their own. The model may still be on the host: `fully_shard` moves each block's parameters
    and buffers to `device` as it shards them, so no device ever holds the whole model. Call it before making the
    optimizer (the parameters become DTensors: an optimizer made before would hold the old ones)."""
    from ..model.layers.compile import regions

    fully_shard, init_device_mesh, _ = _api()
    mesh = init_device_mesh(device.type, (world_size,))
    blocks = regions(model)
    for block in blocks:  # each block's parameters are gathered only while it runs
        fully_shard(block, mesh=mesh)
    fully_shard(model, mesh=mesh)  # what is left: preprocessor, positions, latents, queries, heads
    # a pipeline may return a view (e.g. the class query's row of [B, 1, K]); FSDP2 then warns at every step that an
    # in-place op on it would skip its hook: the loop and the tasks never modify outputs in place
    warnings.filterwarnings("ignore", message=r"FSDP2-wrapped module \(\w+\) returned a view tensor")
    return len(blocks)


def _options(**kwargs):
    _, _, dcp_state = _api()
    return dcp_state.StateDictOptions(**kwargs)


def _tie(model: nn.Module, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Tied parameters (one Parameter under several names) as one tensor under each name, as `state_dict()` of an
    unsharded model gives them (the checkpoint then stores them once, with aliases)."""
    first: dict[int, str] = {}
    for name, p in model.named_parameters(remove_duplicate=False):
        if id(p) in first and first[id(p)] in state:
            state[name] = state[first[id(p)]]
        first.setdefault(id(p), name)
    return state


def full_model_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The whole model's weights as host tensors on rank 0 (an empty dict elsewhere). Collective: every process
    calls it at the same point."""
    _, _, dcp_state = _api()
    state = dcp_state.get_model_state_dict(model, options=_options(full_state_dict=True, cpu_offload=True))
    return _tie(model, dict(state)) if state else {}


def load_full_model_state(model: nn.Module, tensors: Mapping[str, torch.Tensor]) -> None:
    """Give every process its shard of full (host) weights; every process passes the same full tensors."""
    _, _, dcp_state = _api()
    dcp_state.set_model_state_dict(model, dict(tensors), options=_options(full_state_dict=True))


def _param_names(model: nn.Module, optimizer: torch.optim.Optimizer) -> list[str]:
    """The name of each parameter in the optimizer's order (the index its `state_dict()` gives it)."""
    names = {id(p): name for name, p in model.named_parameters()}
    return [names[id(p)] for group in optimizer.param_groups for p in group["params"]]


def full_optimizer_state(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """The optimizer's state as `optimizer.state_dict()` of the unsharded model would give it (state by parameter
    index, full host tensors), on rank 0; an empty dict elsewhere. Collective."""
    _, _, dcp_state = _api()
    full = dcp_state.get_optimizer_state_dict(model, optimizer,
                                              options=_options(full_state_dict=True, cpu_offload=True))
    local = optimizer.state_dict()  # the param groups (hyper-parameters, indices); the state is sharded
    if not full:
        return {}
    index = {name: i for i, name in enumerate(_param_names(model, optimizer))}
    return {"state": {index[name]: dict(values) for name, values in full["state"].items()},
            "param_groups": local["param_groups"]}


def load_full_optimizer_state(model: nn.Module, optimizer: torch.optim.Optimizer,
                              state: Mapping[int, Mapping[str, Any]], param_groups: list[dict[str, Any]]) -> None:
    """Load an optimizer state in `optimizer.state_dict()` form (by parameter index, full tensors) into the
    sharded optimizer; every process passes the same. A state that does not fit raises ValueError/KeyError."""
    _, _, dcp_state = _api()
    names = _param_names(model, optimizer)
    if len(param_groups) != len(optimizer.param_groups):
        raise ValueError(f"{len(param_groups)} parameter groups saved, {len(optimizer.param_groups)} here")
    groups = []
    for saved in param_groups:
        ids = saved["params"]
        if not all(type(i) is int and 0 <= i < len(names) for i in ids):
            raise ValueError(f"parameter indices {ids} do not fit the {len(names)} parameters here")
        groups.append({**saved, "params": [names[i] for i in ids]})
    full = {"state": {names[int(i)]: dict(values) for i, values in state.items()}, "param_groups": groups}
    dcp_state.set_optimizer_state_dict(model, optimizer, full, options=_options(full_state_dict=True))


def check_supported(cfg, autocast: torch.dtype | None, spec=None) -> None:
    """What train.parallel = 'fsdp' does not support, refused in one line before anything is sharded."""
    refused = []
    encoder = getattr(spec["encoder"].config, "cross_attend_train_chunk_keys", None) if spec is not None else None
    if encoder:
        refused.append("encoder.cross_attend_train_chunk_keys (the split-key cross-attend reads a block's layers, "
                       "not the sharded block)")
    if cfg.ema_decay is not None:
        refused.append("train.ema_decay (the average would have to be sharded too)")
    if cfg.compile:
        refused.append("train.compile (the compiled blocks are the sharded ones)")
    if autocast == torch.float16:
        refused.append("fp16 (its gradient scaler does not agree across shards; use bf16 or fp32)")
    if refused:
        raise UserError(f"train.parallel = 'fsdp' does not support {', '.join(refused)}; leave it out, or use "
                        "train.parallel = 'ddp'")
