import torch

from perceiver_core.data.loader import EpochSampler, make_loader


def _items(n):
    return [{"x": torch.tensor([float(i)]), "label": i % 3} for i in range(n)]


def _prepare(example):
    return {"x": example["x"] * 2}


def _augment(example, generator):
    return {**example, "x": example["x"] + torch.rand(1, generator=generator)}


def _epoch(loader):
    return [b["x"][:, 0].tolist() for b in loader]


def test_epochs_reshuffle_and_keep_targets():
    loader = make_loader(_items(10), _prepare, batch_size=4, shuffle=True, seed=1, target_keys=("label",))
    first, second = _epoch(loader), _epoch(loader)
    assert [len(b) for b in first] == [4, 4, 2]
    assert sorted(sum(first, [])) == [2.0 * i for i in range(10)] and first != second
    batch = next(iter(loader))
    assert batch["label"].dtype == torch.long and batch["label"].tolist() == [int(x / 2) % 3 for x in batch["x"][:, 0]]


def test_state_resumes_mid_epoch():
    loader = make_loader(_items(10), _prepare, batch_size=3, shuffle=True, seed=0)
    it = iter(loader)
    next(it)
    state = loader.state_dict()
    rest = [b["x"][:, 0].tolist() for b in it]
    again = make_loader(_items(10), _prepare, batch_size=3, shuffle=True, seed=0)
    again.load_state_dict(state)
    assert _epoch(again) == rest


def test_augmentation_is_seeded_per_example_not_per_worker():
    a = make_loader(_items(12), _prepare, batch_size=4, shuffle=True, seed=3, augment=_augment)
    b = make_loader(_items(12), _prepare, batch_size=4, shuffle=True, seed=3, augment=_augment, num_workers=3)
    assert _epoch(a) == _epoch(b)
    assert _epoch(a) != _epoch(make_loader(_items(12), _prepare, batch_size=4, shuffle=True, seed=4, augment=_augment))


def test_shards_partition_the_global_order():
    orders = []
    for rank in range(3):
        s = EpochSampler(10, shuffle=True, seed=5, rank=rank, world_size=3)
        s.reset()
        orders.append([next(s)[1] for _ in range(s.n)])
    assert all(len(o) == 3 for o in orders)
    single = EpochSampler(10, shuffle=True, seed=5)
    single.reset()
    global_order = [next(single)[1] for _ in range(10)]
    interleaved = [orders[r][i] for i in range(3) for r in range(3)]
    assert interleaved == global_order[:9]
