"""Multi-process training under `torchrun`: process group, rank, and the few collectives the trainer needs.

    torchrun --standalone --nproc-per-node 2 -m perceiver_core train digits --out runs/d

Each process trains a DistributedDataParallel replica on its shard of every epoch (the data's batch_size is
the global batch, split across processes); rank 0 evaluates, logs and writes checkpoints. The process-group
backend is the hardware backend's (`gloo` on the CPU, `nccl` on CUDA). nccl moves device tensors only, so
collectives on host tensors (the CPU RNG state gathered into a checkpoint) go through a second, gloo group of
the same processes (`host_group`): never a CPU tensor through the device group.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..errors import UserError


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


_HOST_GROUP = None


def init_distributed(backend_name: str) -> DistInfo:
    """Join the process group that `torchrun` describes in the environment; a no-op for one process."""
    global _HOST_GROUP
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    if not dist.is_available():  # a torch built without distributed support (some macOS and mobile builds)
        raise UserError(f"WORLD_SIZE={world} (torchrun) but this torch {torch.__version__} has no torch.distributed; "
                        "train in one process, or install a torch with distributed support")
    if not dist.is_initialized():
        dist.init_process_group(backend=backend_name)
        _HOST_GROUP = None
    host_group()  # created now, by every rank at the same point (group creation is collective)
    return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def host_group():
    """A process group that can move CPU tensors: the default group when it is gloo, else a gloo group of the same
    processes (created once, collectively: every rank calls this at the same point of the program)."""
    global _HOST_GROUP
    if dist.get_backend() == "gloo":
        return dist.group.WORLD
    if _HOST_GROUP is None:
        _HOST_GROUP = dist.new_group(backend="gloo")
    return _HOST_GROUP


def split_batch(batch_size: int, info: DistInfo) -> int:
    if batch_size % info.world_size:
        raise UserError(f"data.batch_size ({batch_size}) must be divisible by the number of processes "
                        f"({info.world_size}): it is the global batch, split evenly")
    return batch_size // info.world_size


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def gather_rng(info: DistInfo) -> list[torch.Tensor]:
    """Every process's torch RNG state (rank order), so a resumed run restores each one."""
    state = torch.get_rng_state()
    if not info.enabled:
        return [state]
    states = [torch.empty_like(state) for _ in range(info.world_size)]
    dist.all_gather(states, state, group=host_group())  # a CPU (uint8) tensor: nccl cannot carry it
    return states


def shutdown(info: DistInfo, wait: bool = False) -> None:
    """Leave the process group. wait: every process got here normally, so first wait for all of them (no process
    closes its connections while another still has a collective in flight); not after an error, where the others
    may never arrive."""
    global _HOST_GROUP
    if info.enabled and dist.is_initialized():
        if wait:
            dist.barrier()
        dist.destroy_process_group()  # every group, the host group included
        _HOST_GROUP = None
