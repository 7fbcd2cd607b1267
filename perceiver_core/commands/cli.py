"""The `perceiver` command. Exit codes: 0 ok, 2 bad input (one line on stderr, never a traceback), 1 a bug.

Listing (`plugins`, `components`, `pipelines`, `validate`, `schema`) imports no torch.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from typing import Any, Sequence

from ..errors import UserError


def _emit(args, data: Any, text: str) -> None:
    print(json.dumps(data, indent=2) if getattr(args, "json", False) else text, file=getattr(args, "stdout", None))


def _report_plugin_problems() -> None:
    """Broken plugins are reported (one line each) by the commands that run models, not only by `plugins`."""
    from ..plugins.manager import get_plugin_manager

    pm = get_plugin_manager()
    for line in pm.problems():
        print(f"perceiver: warning: {line}", file=sys.stderr)
    for line in pm.warnings():
        print(f"perceiver: note: {line}", file=sys.stderr)


def _registry(args):
    from ..registry.file import load_registry

    return load_registry(args.registry or ())


# -- listing -------------------------------------------------------------------------------------------------
def cmd_plugins(args) -> int:
    from ..plugins.manager import get_plugin_manager

    pm = get_plugin_manager()
    reports = [r.as_dict() for r in pm.reports]
    lines = []
    for r in pm.reports:
        what = ", ".join(r.components + [f"backend:{b}" for b in r.backends]) or "nothing"
        lines.append(f"{r.distribution} {r.version} [{r.name}] {r.status}: {what}")
        lines.extend(f"    ! {e}" for e in r.errors)
    _emit(args, {"plugins": reports, "problems": pm.problems()}, "\n".join(lines))
    return 0


def cmd_components(args) -> int:
    from ..plugins.manager import get_plugin_manager

    registry = get_plugin_manager().registry
    rows = [s.as_dict() for s in sorted(registry.components.values(), key=lambda s: (s.kind, s.name))
            if args.kind in (None, s.kind)]
    text = "\n".join(f"{r['kind']:<13} {r['name']:<24} {r['distribution']:<18} {r['description']}" for r in rows)
    _emit(args, rows, text)
    return 0


def cmd_backends(args) -> int:
    from ..runtime.backends import list_backends

    rows = list_backends()
    text = "\n".join(f"{r['name']:<6} {'available' if r['available'] else 'unavailable':<12} "
                     f"{r['distribution']} {r['version']}: {r['reason']}" for r in rows) or "no backend installed"
    _emit(args, rows, text)
    return 0


def cmd_pipelines(args) -> int:
    rows = _registry(args).describe(presets=args.presets)
    _emit(args, rows, "\n".join(f"{r['name']:<24} {'(preset) ' if r['preset'] else ''}{r['description']}"
                                for r in rows) or "no pipelines")
    return 0


def cmd_validate(args) -> int:
    from ..registry.file import load_registry

    errors: list[str] = []
    names: list[str] = []
    for path in args.files:
        try:
            registry = load_registry([path], include_default=False)
        except UserError as exc:
            errors.append(str(exc))
            continue
        names += registry.names()
        errors += registry.validate_all()
    if args.json:
        print(json.dumps({"valid": not errors, "pipelines": names, "errors": errors}, indent=2),
              file=getattr(args, "stdout", None))
    else:
        for e in errors:
            print(e, file=sys.stderr)
        if not errors:
            print(f"ok: {len(names)} pipeline(s): {', '.join(names)}")
    return 2 if errors else 0


def cmd_schema(args) -> int:
    from ..registry.schema import registry_schema

    problems: list[str] = []
    text = json.dumps(registry_schema(problems=problems), indent=2)
    for line in problems:
        print(f"perceiver: warning: {line}", file=sys.stderr)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    else:
        print(text)
    return 0


# -- running ---------------------------------------------------------------------------------------------------
def _spec(args):
    overrides = list(args.set or [])
    if getattr(args, "max_steps", None):
        overrides.append(f"train.max_steps={args.max_steps}")
    return _registry(args).resolve(args.pipeline, overrides)


def cmd_train(args) -> int:
    from ..runtime.training import train

    _report_plugin_problems()
    spec = _spec(args)
    result = train(spec, args.out, resume=args.resume, stop_after=args.stop_after, overwrite=args.overwrite,
                   progress=not args.no_progress)
    if os.environ.get("RANK", "0") != "0":  # under torchrun only rank 0 reports
        return 0
    summary = ", ".join(f"{k}={v}" for k, v in result.items())
    _emit(args, result, f"trained {spec.name} -> {os.path.join(args.out, 'model.safetensors')}: {summary}")
    return 0


def _checked_model(args, note: bool = True):
    from ..runtime.checkpoint import from_checkpoint

    model = from_checkpoint(args.checkpoint)
    trained = model.checkpoint_metadata["pipeline"]["name"]
    if trained != args.pipeline and note:
        print(f"note: {args.checkpoint} was trained as pipeline {trained!r}; using its model with the data of "
              f"{args.pipeline!r}", file=sys.stderr)
    return model


def cmd_evaluate(args) -> int:
    from ..model.pipeline import build_dataset
    from ..runtime.backends import select_backend
    from ..runtime.training import evaluate_model

    spec = _spec(args)
    model = _checked_model(args, note=False)  # the note comes after a success (a failure is one line)
    backend = select_backend(spec.backend)
    model.to(backend.device())
    dataset = build_dataset(spec)
    split = args.split or spec.train.eval_split
    if split not in dataset.splits:
        raise UserError(f"dataset {spec['data'].use!r} has no split {split!r}; splits: {', '.join(dataset.splits)}")
    data = spec["data"].config
    try:
        metrics = evaluate_model(model, dataset.examples(split), batch_size=data.eval_batch_size or data.batch_size,
                                 backend=backend, precision=spec.train.precision)
    except (KeyError, ValueError, TypeError, IndexError, RuntimeError) as exc:
        trained = model.checkpoint_metadata["pipeline"]
        if trained.get("name") == args.pipeline:
            raise  # the model's own data: a bug, not a user error
        detail = " ".join(f"{type(exc).__name__}: {exc}".split())[:200]
        raise UserError(f"{args.checkpoint} holds a model of pipeline {trained.get('name')!r} (data "
                        f"{trained.get('data', {}).get('use')!r}); it cannot evaluate the data of {args.pipeline!r} "
                        f"({spec['data'].use!r}): {detail}; evaluate it with its own pipeline "
                        f"(perceiver evaluate {trained.get('name')} --checkpoint {args.checkpoint})") from None
    if model.checkpoint_metadata["pipeline"]["name"] != args.pipeline:
        print(f"note: {args.checkpoint} was trained as pipeline {model.checkpoint_metadata['pipeline']['name']!r}; "
              f"used its model with the data of {args.pipeline!r}", file=sys.stderr)
    metrics = {k: round(v, 6) for k, v in metrics.items()}
    _emit(args, metrics, f"{spec.name} [{split}]: " + ", ".join(f"{k}={v}" for k, v in metrics.items()))
    return 0


def cmd_predict(args) -> int:
    import torch

    from ..data.loader import collate

    model = _checked_model(args)
    examples = []
    for item in args.inputs:
        try:
            examples.append(model.prepare(_read_input(model, args, item)))
        except UserError as exc:
            if item in str(exc):
                raise
            raise UserError(f"{item}: {exc}") from None  # which input it was
        except (ValueError, TypeError, KeyError, OSError) as exc:  # a file that is not the model's kind of input
            raise UserError(f"{item}: cannot be used as input of this model: {exc}") from None
    batch = collate(examples)
    with torch.no_grad():
        predictions = model.predict(batch)
    rows = [{"input": item, **(p if isinstance(p, dict) else {"prediction": p})}
            for item, p in zip(args.inputs, predictions)]
    _emit(args, rows, "\n".join(f"{r['input']}: " + ", ".join(f"{k}={v}" for k, v in r.items() if k != "input")
                                for r in rows))
    return 0


def _read_input(model, args, item: str):
    """A file path, or SPLIT:INDEX to take an example of the pipeline's dataset (e.g. test:0)."""
    split, sep, index = item.partition(":")
    if sep and index.isdigit() and not os.path.exists(item):
        from ..model.pipeline import build_dataset

        dataset = build_dataset(_spec(args))
        if split not in dataset.splits:
            raise UserError(f"{item!r}: the dataset has no split {split!r}; splits: {', '.join(dataset.splits)}")
        examples = dataset.examples(split)
        if int(index) >= len(examples):
            raise UserError(f"{item!r}: split {split!r} has {len(examples)} examples")
        return examples[int(index)]
    try:
        return model.preprocessor.read_input(item)
    except NotImplementedError as exc:
        raise UserError(str(exc)) from None


def cmd_bench(args) -> int:
    from .bench.cli import run_from_args

    return run_from_args(args)


# -- plugin authors (handlers live in their own modules, imported only when run) --------------------------------
def cmd_plugins_check(args) -> int:
    from ..plugins.check import run_check

    return run_check(args)


def cmd_plugin_new(args) -> int:
    from ..plugins.scaffold import cmd_plugin_new as run

    return run(args)


def cmd_import_hf(args) -> int:
    from .import_hf import cmd_import_hf as run

    return run(args)


def cmd_doctor(args) -> int:
    from .doctor import cmd_doctor as run

    return run(args)


# -- parser ------------------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    from ..version import __version__

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--registry", action="append", metavar="FILE",
                        help="registry file adding or overriding pipelines (repeatable; ./registry.toml is read first)")
    common.add_argument("--json", action="store_true", help="print JSON for machines")
    parser = argparse.ArgumentParser(prog="perceiver", description="Perceiver, Perceiver IO and HiP pipelines")
    parser.add_argument("--version", action="version", version=f"perceiver-core {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name, fn, help_):
        p = sub.add_parser(name, parents=[common], help=help_, description=help_)
        p.set_defaults(fn=fn)
        return p

    p = add("plugins", cmd_plugins, "list installed plugins, their components and any problems")
    check_help = "check installed plugin distributions: entry points, core API version, hooks, config models"
    p = p.add_subparsers(dest="plugins_command", metavar="SUBCOMMAND").add_parser(
        "check", help=check_help, description=check_help)
    p.add_argument("distributions", nargs="+", metavar="DIST", help="distribution name, e.g. perceiver-image")
    p.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON for machines")
    p.set_defaults(fn=cmd_plugins_check)
    new_help = "scaffold a plugin distribution (pyproject, package, conformance tests, README, registry snippet)"
    p = sub.add_parser("plugin", help="plugin author tools (plugin new NAME)").add_subparsers(
        dest="plugin_command", required=True, metavar="SUBCOMMAND").add_parser(
        "new", help=new_help, description=new_help)
    p.add_argument("name", metavar="NAME", help="short lowercase name, e.g. wave -> perceiver-wave")
    p.add_argument("--path", default=".", metavar="DIR", help="create DIR/perceiver-NAME (default: here)")
    p.add_argument("--kind", choices=["modality", "backend"], default="modality",
                   help="modality: preprocessor + positions + toy dataset; backend: a hardware backend")
    p.add_argument("--json", action="store_true", help="print JSON for machines")
    p.set_defaults(fn=cmd_plugin_new)
    p = add("components", cmd_components, "list registered components")
    p.add_argument("--kind", choices=["preprocessor", "position", "encoder", "decoder", "task", "dataset"])
    add("backends", cmd_backends, "list installed hardware backends and whether each is usable here")
    p = add("pipelines", cmd_pipelines, "list pipelines of the registry files")
    p.add_argument("--presets", action="store_true", help="also list the presets shipped with the core")
    p = add("validate", cmd_validate, "validate registry files without running anything")
    p.add_argument("files", nargs="+", metavar="FILE")
    p = add("schema", cmd_schema, "print the JSON schema of registry files for the installed plugins")
    p.add_argument("--out", metavar="FILE", help="write the schema to FILE")

    def run_args(p):
        p.add_argument("pipeline", metavar="PIPELINE")
        p.add_argument("--set", action="append", metavar="KEY=VALUE",
                       help="override a pipeline value, e.g. --set train.epochs=5 (repeatable)")

    p = add("train", cmd_train, "train a pipeline")
    run_args(p)
    p.add_argument("--out", required=True, metavar="DIR", help="folder for model.safetensors and metrics.jsonl")
    p.add_argument("--max-steps", type=int, metavar="N", help="train for N optimizer steps (sets train.max_steps)")
    p.add_argument("--resume", metavar="DIR", help="continue from the checkpoint and trainer state in DIR")
    p.add_argument("--stop-after", type=int, metavar="N", help="stop (with a checkpoint) after step N, as if "
                                                               "interrupted; --resume continues exactly")
    p.add_argument("--overwrite", action="store_true", help="replace a model already in --out")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p = add("evaluate", cmd_evaluate, "evaluate a checkpoint on a pipeline's data")
    run_args(p)
    p.add_argument("--checkpoint", required=True, metavar="FILE")
    p.add_argument("--split", help="split to evaluate (default: the pipeline's train.eval_split)")
    p = add("predict", cmd_predict, "run a checkpoint on input files (or SPLIT:INDEX examples of the dataset)")
    run_args(p)
    p.add_argument("--checkpoint", required=True, metavar="FILE")
    p.add_argument("inputs", nargs="+", metavar="INPUT")
    p = add("import-hf", cmd_import_hf, "convert a Hugging Face Perceiver checkpoint folder into our checkpoint")
    p.add_argument("folder", metavar="DIR", help="folder with config.json and model.safetensors (or pytorch_model.bin)")
    p.add_argument("--out", required=True, metavar="FILE", help="the .safetensors checkpoint to write")
    p.add_argument("--image-size", type=int, metavar="N", help="image side the model is built for "
                                                               "(default: config.json image_size)")
    add("doctor", cmd_doctor, "check this installation for bug reports: versions, plugins and their problems, "
                              "backends, thread settings, import time per plugin")
    p = add("bench", cmd_bench, "time our model against HF transformers' Perceiver on the same config")
    from .bench.cli import add_arguments

    add_arguments(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.stdout = sys.stdout  # the JSON document goes here and nowhere else
    try:
        if getattr(args, "json", False):  # anything else printed (plugin code included) goes to stderr
            with contextlib.redirect_stdout(sys.stderr):
                return args.fn(args)
        return args.fn(args)
    except UserError as exc:
        print(f"perceiver: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a path the user named cannot be read or written (missing folder, permissions, disk full)
        where = f": {exc.filename}" if getattr(exc, "filename", None) else ""
        print(f"perceiver: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("perceiver: interrupted", file=sys.stderr)
        return 130
