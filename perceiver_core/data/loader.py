"""Data loading through `torchdata.nodes`, wrapped here and nowhere else (torchdata is frozen upstream).

    EpochSampler (seeded shuffle, resumable) -> [Parallel]Mapper(prepare) -> Batcher -> Mapper(collate)
        -> [PinMemory] -> Prefetcher -> Loader

`Loader.state_dict()` is saved with checkpoints, so a resumed run sees exactly the batches an uninterrupted run
would have seen.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import torch
from torchdata import nodes


class EpochSampler(nodes.BaseNode[tuple[int, int]]):
    """(epoch, index) for indices 0..n-1 of one epoch, in a permutation seeded by (seed, epoch); each reset
    starts the next epoch. The epoch travels with the index so augmentation can be seeded per (epoch, index)."""

    EPOCH, OFFSET = "epoch", "offset"

    def __init__(self, n: int, *, shuffle: bool, seed: int, rank: int = 0, world_size: int = 1):
        super().__init__()
        self.total, self.shuffle, self.seed = n, shuffle, seed
        self.rank, self.world_size = rank, world_size
        self.n = n // world_size  # every process sees the same number of examples; the remainder is skipped
        self.epoch, self.offset = -1, 0
        self._order: list[int] = []

    def reset(self, initial_state: dict[str, Any] | None = None):
        super().reset(initial_state)
        if initial_state is not None:
            self.epoch, self.offset = initial_state[self.EPOCH], initial_state[self.OFFSET]
        else:
            self.epoch, self.offset = self.epoch + 1, 0
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            order = torch.randperm(self.total, generator=g).tolist()
        else:
            order = list(range(self.total))
        # process r takes elements r, r + W, r + 2W, ...: the first k batches of all processes together are the
        # first k global batches of a single-process run
        self._order = order[self.rank::self.world_size][: self.n]

    def next(self) -> tuple[int, int]:
        if self.offset >= self.n:
            raise StopIteration
        index = self._order[self.offset]
        self.offset += 1
        return self.epoch, index

    def get_state(self) -> dict[str, Any]:
        return {self.EPOCH: self.epoch, self.OFFSET: self.offset}


def collate(items: Sequence[Any]) -> Any:
    """A list of examples -> one batch, with `torch.utils.data.default_collate` semantics: tensors and numpy arrays
    are stacked, numpy scalars become tensors of their dtype, Python ints (and bools) int64 tensors, mappings are
    collated key by key (nested too), strings and None stay lists. One difference: Python floats become float32
    (the framework's dtype), not float64."""
    import numpy as np

    first = items[0]
    if isinstance(first, torch.Tensor):
        return torch.stack(list(items))
    if isinstance(first, np.ndarray):
        if first.dtype.kind in "OUS":  # strings / objects: not numbers
            return list(items)
        return torch.stack([torch.as_tensor(x) for x in items])
    if isinstance(first, np.generic) and not isinstance(first, (np.str_, np.bytes_)):
        return torch.as_tensor(np.stack(items))
    if isinstance(first, bool | int):
        return torch.tensor(items, dtype=torch.long)
    if isinstance(first, float):
        return torch.tensor(items, dtype=torch.float32)
    if isinstance(first, Mapping):
        return {key: collate([item[key] for item in items]) for key in first}
    return list(items)


class _Prepare:
    """Picklable map function: raw example -> (augmented,) prepared tensors, with the task's targets carried along.

    Augmentation draws from a generator seeded by (seed, epoch, index): the same example gets the same
    augmentation in a resumed run, whatever the worker count.
    """

    def __init__(self, examples: Sequence[Mapping[str, Any]], prepare: Callable, target_keys: Sequence[str],
                 augment: Callable | None = None, seed: int = 0):
        self.examples, self.prepare, self.target_keys = examples, prepare, tuple(target_keys)
        self.augment, self.seed = augment, seed

    def __call__(self, item: tuple[int, int]) -> dict[str, Any]:
        epoch, index = item
        example = self.examples[index]
        if self.augment is not None:
            g = torch.Generator().manual_seed((self.seed * 1_000_003 + epoch) * 10_000_019 + index)
            example = self.augment(example, g)
        out = dict(self.prepare(example))
        for key in self.target_keys:
            if key not in out and key in example:
                out[key] = example[key]
        return out


class ChainAugment:
    """Picklable composition of `augment(example, generator)` functions, applied in order with one generator."""

    def __init__(self, *functions: Callable):
        self.functions = functions

    def __call__(self, example: Mapping[str, Any], generator: torch.Generator) -> Mapping[str, Any]:
        for fn in self.functions:
            example = fn(example, generator)
        return example


def make_loader(examples: Sequence[Mapping[str, Any]], prepare: Callable, *, batch_size: int,
                shuffle: bool = False, seed: int = 0, num_workers: int = 0, drop_last: bool = False,
                target_keys: Sequence[str] = (), pin_memory: bool = False, prefetch: int = 2,
                augment: Callable | None = None, rank: int = 0, world_size: int = 1) -> nodes.Loader:
    """A resumable loader over an indexable split; iterate it once per epoch. `augment(example, generator)`
    runs before `prepare` (training only)."""
    node: nodes.BaseNode = EpochSampler(len(examples), shuffle=shuffle, seed=seed, rank=rank, world_size=world_size)
    fn = _Prepare(examples, prepare, target_keys, augment, seed)
    if num_workers > 0:
        node = nodes.ParallelMapper(node, fn, num_workers=num_workers, method="thread", in_order=True)
    else:
        node = nodes.Mapper(node, fn)
    node = nodes.Batcher(node, batch_size=batch_size, drop_last=drop_last)
    node = nodes.Mapper(node, collate)
    if pin_memory:
        node = nodes.PinMemory(node)
    if prefetch > 0 and num_workers > 0:
        node = nodes.Prefetcher(node, prefetch_factor=prefetch)
    return nodes.Loader(node, restart_on_stop_iteration=True)


def to_device(batch: Mapping[str, Any], device: torch.device) -> dict[str, Any]:
    non_blocking = device.type == "cuda"
    return {k: v.to(device, non_blocking=non_blocking) if isinstance(v, torch.Tensor) else v
            for k, v in batch.items()}
