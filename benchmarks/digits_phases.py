"""Where `perceiver train digits` spends its time, phase by phase: one real training run (the Trainer as the CLI
runs it), with the CPU time of the process (all threads) and the wall time attributed to each phase: data
loading, forward + loss, the per-step metrics, backward, optimizer (clip + step + schedule), evaluation,
checkpoints, and the rest of the loop.

    OMP_NUM_THREADS=2 python benchmarks/digits_phases.py --out phases.json
    python benchmarks/digits_phases.py --set train.epochs=5 --torch-profile 20
    python benchmarks/digits_phases.py --ab 60 --out ab.json      # the step before/after, interleaved
    python benchmarks/digits_phases.py --rounds 60 --compare "before=@digits-pixels" --compare "after="

CPU seconds are less sensitive to other processes than wall seconds (they still grow when caches and cores are
shared); accuracy is exact. `--torch-profile N` also profiles N training steps with torch.profiler and prints the
operator table (the grouping of `perceiver bench --profile`). `--ab N` instead times N pairs of training steps of
the pipeline in one process, alternating the step as it was before issue 16 (AdamW's per-tensor loop on the CPU)
and as it is now (fused AdamW), on two copies of the same model and batch: the comparison to read on a loaded
machine. `--compare NAME=SETS` (repeatable) with `--rounds N` times whole training steps (data, augmentation,
schedule, forward, backward, optimizer) of several configurations, round-robin in one process, and the run each
would make (median step x its steps). Prints a table last, writes JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from collections import defaultdict


class Clock:
    """Exclusive time per phase: a phase entered inside another is subtracted from the outer one."""

    def __init__(self):
        self.cpu: dict[str, float] = defaultdict(float)
        self.wall: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.stack: list[list[float]] = []  # per open phase: [child cpu, child wall]

    @contextlib.contextmanager
    def phase(self, name: str):
        c, w = time.process_time(), time.perf_counter()
        self.stack.append([0.0, 0.0])
        try:
            yield
        finally:
            child_cpu, child_wall = self.stack.pop()
            dc, dw = time.process_time() - c, time.perf_counter() - w
            self.cpu[name] += dc - child_cpu
            self.wall[name] += dw - child_wall
            self.calls[name] += 1
            if self.stack:
                self.stack[-1][0] += dc
                self.stack[-1][1] += dw

    def wrap(self, owner, attr: str, name: str):
        original = getattr(owner, attr)

        def wrapped(*args, **kwargs):
            with self.phase(name):
                return original(*args, **kwargs)
        setattr(owner, attr, wrapped)


def _profile_functions():
    """The bench's profiler grouping; from this checkout's file when the imported perceiver_core predates it (a
    "before" measurement with an older tree first on PYTHONPATH)."""
    try:
        from perceiver_core.commands.bench.profile import format_profile, profile_steps
    except ImportError:
        import importlib.util
        from pathlib import Path

        path = Path(__file__).resolve().parents[1] / "perceiver_core" / "commands" / "bench" / "profile.py"
        spec = importlib.util.spec_from_file_location("_bench_profile", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        format_profile, profile_steps = module.format_profile, module.profile_steps
    return format_profile, profile_steps


def ab_steps(pipeline: str, sets: list[str], pairs: int) -> dict:
    """CPU and wall time per training step (forward, loss, backward, clip, optimizer), before vs after, interleaved."""
    import copy
    import statistics

    import torch

    from perceiver_core.data.loader import make_loader
    from perceiver_core.model.pipeline import build_dataset, build_from_spec
    from perceiver_core.registry.file import load_registry
    from perceiver_core.runtime.optim import param_groups

    spec = load_registry().resolve(pipeline, sets)
    dataset = build_dataset(spec)
    torch.manual_seed(0)
    model = build_from_spec(spec, dataset=dataset).train()
    cfg, data = spec.train, spec["data"].config
    loader = make_loader(dataset.examples(cfg.train_split), model.prepare, batch_size=data.batch_size, shuffle=True,
                         seed=0, target_keys=model.task.target_keys)
    batch = next(iter(loader))
    models = {"before": model, "after": copy.deepcopy(model)}
    optimizers = {"before": torch.optim.AdamW(param_groups(models["before"], cfg.weight_decay), lr=cfg.lr,
                                              foreach=False),
                  "after": torch.optim.AdamW(param_groups(models["after"], cfg.weight_decay), lr=cfg.lr,
                                             fused=True)}
    def step(label):
        m, opt = models[label], optimizers[label]
        opt.zero_grad(set_to_none=True)
        loss = m.task.loss(m(batch), batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), cfg.grad_clip or float("inf"))
        opt.step()

    for label in models:  # warm-up
        step(label)
    cpu: dict[str, list[float]] = {"before": [], "after": []}
    wall: dict[str, list[float]] = {"before": [], "after": []}
    for _ in range(pairs):
        for label in ("before", "after"):
            c, w = time.process_time(), time.perf_counter()
            step(label)
            cpu[label].append(time.process_time() - c)
            wall[label].append(time.perf_counter() - w)
    med = {k: {"cpu_ms": statistics.median(cpu[k]) * 1e3, "wall_ms": statistics.median(wall[k]) * 1e3}
           for k in cpu}
    return {"pairs": pairs, "threads": torch.get_num_threads(), "median": med, "cpu_s": cpu, "wall_s": wall}


def compare_steps(pipeline: str, configs: dict[str, list[str]], rounds: int) -> dict:
    """Time per training step of several configurations of the pipeline, in one process, round-robin: each round
    runs one step of every config (next batch from its own loader, with its augmentation; the learning-rate
    schedule, forward, loss, backward, clip, optimizer), so that load from other processes falls on all of them
    alike. Each config is a real Trainer, built as the CLI builds it."""
    import statistics

    import torch

    from perceiver_core.data.loader import to_device
    from perceiver_core.registry.file import load_registry
    from perceiver_core.runtime.training import Trainer

    trainers, iters, outs = {}, {}, []
    for name, sets in configs.items():
        out = tempfile.TemporaryDirectory()
        outs.append(out)
        name_of = sets[0][1:] if sets and sets[0].startswith("@") else pipeline  # "@PIPELINE K=V ...": another one
        sets = sets[1:] if sets and sets[0].startswith("@") else sets
        trainers[name] = Trainer(load_registry().resolve(name_of, sets), out.name, progress=False)
        iters[name] = iter(())

    def step(name):
        t = trainers[name]
        try:
            batch = next(iters[name])
        except StopIteration:
            iters[name] = iter(t.loader)
            batch = next(iters[name])
        batch = to_device(batch, t.device)
        t._begin_step()
        t._forward_backward(batch, 1)
        t._optimizer_step()
        t.step += 1

    for name in configs:  # warm-up
        step(name)
    cpu: dict[str, list[float]] = {name: [] for name in configs}
    wall: dict[str, list[float]] = {name: [] for name in configs}
    for _ in range(rounds):
        for name in configs:
            c, w = time.process_time(), time.perf_counter()
            step(name)
            cpu[name].append(time.process_time() - c)
            wall[name].append(time.perf_counter() - w)
    for out in outs:
        out.cleanup()
    med = {name: {"cpu_ms": statistics.median(cpu[name]) * 1e3, "wall_ms": statistics.median(wall[name]) * 1e3,
                  "steps_per_run": trainers[name].total_steps,
                  "parameters": sum(p.numel() for p in trainers[name].model.parameters())}
           for name in configs}
    for name in configs:
        med[name]["run_cpu_s"] = med[name]["cpu_ms"] * med[name]["steps_per_run"] / 1e3
        med[name]["run_wall_s"] = med[name]["wall_ms"] * med[name]["steps_per_run"] / 1e3
    return {"rounds": rounds, "threads": torch.get_num_threads(), "configs": configs, "median": med,
            "cpu_s": cpu, "wall_s": wall}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pipeline", default="digits")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--torch-profile", type=int, default=0, metavar="N")
    p.add_argument("--ab", type=int, default=0, metavar="N", help="instead: N interleaved before/after step pairs")
    p.add_argument("--compare", action="append", default=[], metavar="NAME=SETS",
                   help="with --rounds: a configuration: space-separated KEY=VALUE overrides of --pipeline, or "
                        "@PIPELINE first for another pipeline (repeatable)")
    p.add_argument("--rounds", type=int, default=40, help="with --compare: round-robin steps of every config")
    p.add_argument("--out")
    args = p.parse_args()

    import torch

    if args.compare:
        configs = {}
        for text in args.compare:
            name, _, sets = text.partition("=")
            configs[name.strip()] = sets.split()
        result = compare_steps(args.pipeline, configs, args.rounds)
        if args.out:
            with open(args.out, "w", encoding="utf-8") as f:
                json.dump(result, f, indent=2)
                f.write("\n")
        med = result["median"]
        first = next(iter(med))
        print(f"{args.pipeline} training steps, {args.rounds} rounds, {result['threads']} threads (medians; a run's "
              "time = median step x its steps, without start-up and evaluation)")
        print(f"{'config':<14}{'params':>9}{'CPU ms':>9}{'wall ms':>9}{'steps':>7}{'run CPU s':>10}{'run wall s':>11}"
              f"{'wall / ' + first:>16}")
        for name, m in med.items():
            print(f"{name:<14}{m['parameters']:>9}{m['cpu_ms']:>9.2f}{m['wall_ms']:>9.2f}{m['steps_per_run']:>7}"
                  f"{m['run_cpu_s']:>10.1f}{m['run_wall_s']:>11.1f}{m['run_wall_s'] / med[first]['run_wall_s']:>16.3f}")
        return 0

    if args.ab:
        result = ab_steps(args.pipeline, args.set, args.ab)
        if args.out:
            with open(args.out, "w", encoding="utf-8") as f:
                json.dump(result, f, indent=2)
                f.write("\n")
        med = result["median"]
        print(f"{args.pipeline} training step, {args.ab} interleaved pairs, {result['threads']} threads (medians)")
        print(f"{'':<8}{'CPU ms':>9}{'wall ms':>9}")
        for label in ("before", "after"):
            print(f"{label:<8}{med[label]['cpu_ms']:>9.2f}{med[label]['wall_ms']:>9.2f}")
        print(f"{'after/before':<8}{med['after']['cpu_ms'] / med['before']['cpu_ms']:>9.3f}"
              f"{med['after']['wall_ms'] / med['before']['wall_ms']:>9.3f}")
        return 0

    from perceiver_core.registry.file import load_registry
    from perceiver_core.runtime.training import Trainer

    spec = load_registry().resolve(args.pipeline, args.set)
    clock = Clock()
    # phases: nested calls are attributed to the innermost phase only by subtracting below
    clock.wrap(Trainer, "_optimizer_step", "optimizer")
    clock.wrap(Trainer, "_begin_step", "optimizer")
    clock.wrap(Trainer, "_evaluate", "evaluation")
    clock.wrap(Trainer, "save", "checkpoint")

    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(spec, out, progress=False)
        model = trainer.model
        task = model.task
        for obj, attr, name in ((task, "loss", "forward + loss"), (task, "metrics", "metrics")):
            clock.wrap(obj, attr, name)
        original_forward = type(model).__call__

        def forward(self, *a, **k):
            with clock.phase("forward + loss" if torch.is_grad_enabled() else "evaluation"):
                return original_forward(self, *a, **k)
        type(model).__call__ = forward
        original_backward = torch.Tensor.backward

        def backward(self, *a, **k):
            with clock.phase("backward"):
                return original_backward(self, *a, **k)
        torch.Tensor.backward = backward
        loader_iter = type(trainer.loader).__iter__

        def timed_iter(self):
            it = loader_iter(self)
            while True:
                with clock.phase("data"):
                    try:
                        batch = next(it)
                    except StopIteration:
                        return
                yield batch
        type(trainer.loader).__iter__ = timed_iter
        c0, w0 = time.process_time(), time.perf_counter()
        result = trainer.run(overwrite=True)
        total_cpu, total_wall = time.process_time() - c0, time.perf_counter() - w0
        torch.Tensor.backward = original_backward
        type(model).__call__ = original_forward
        type(trainer.loader).__iter__ = loader_iter
        prof = None
        if args.torch_profile:
            from perceiver_core.data.loader import to_device

            format_profile, profile_steps = _profile_functions()

            batch = to_device(next(iter(trainer.loader)), trainer.device)

            def step():
                trainer._begin_step()
                trainer._forward_backward(batch, 1)
                trainer._optimizer_step()
            step()
            prof = profile_steps(step, args.torch_profile, trainer.device, top=20)
    phases = {name: {"cpu_s": round(clock.cpu[name], 3), "wall_s": round(clock.wall[name], 3),
                     "calls": clock.calls[name]} for name in clock.cpu}
    accounted_cpu = sum(v["cpu_s"] for v in phases.values())
    accounted_wall = sum(v["wall_s"] for v in phases.values())
    phases["rest of the loop"] = {"cpu_s": round(total_cpu - accounted_cpu, 3),
                                  "wall_s": round(total_wall - accounted_wall, 3), "calls": 1}
    report = {"pipeline": args.pipeline, "sets": args.set, "threads": torch.get_num_threads(),
              "accuracy": result.get("accuracy"), "steps": result["step"], "train_seconds": result["train_seconds"],
              "total_cpu_s": round(total_cpu, 3), "total_wall_s": round(total_wall, 3), "phases": phases,
              "torch_profile": prof}
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2)
            f.write("\n")
    if prof is not None:
        print(format_profile(prof, f"{args.pipeline} training step (torch.profiler, {args.torch_profile} steps)"))
    print(f"{args.pipeline} {' '.join(args.set)}: accuracy {report['accuracy']}, {report['steps']} steps, "
          f"{torch.get_num_threads()} threads")
    print(f"{'phase':<18}{'CPU s':>8}{'wall s':>8}{'calls':>7}{'CPU ms/step':>12}")
    for name, v in sorted(phases.items(), key=lambda kv: -kv[1]["cpu_s"]):
        per_step = v["cpu_s"] / report["steps"] * 1e3
        print(f"{name:<18}{v['cpu_s']:>8.2f}{v['wall_s']:>8.2f}{v['calls']:>7}{per_step:>12.2f}")
    print(f"{'total':<18}{total_cpu:>8.2f}{total_wall:>8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
