"""The `perceiver` command. Exit codes: 0 ok, 2 bad input (one line on stderr, never a traceback), 1 a bug.

Listing (`plugins`, `components`, `pipelines`, `schema`, `validate --no-build`) imports no torch; `validate` builds
every pipeline on the meta device (model/check.py), so it imports torch but allocates nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import math
import os
import sys
from pathlib import Path
from typing import Any, Sequence

from ..errors import UserError
from .report import silence_stdout, user_error


def _emit(args, data: Any, text: str) -> None:
    print(json.dumps(_json_safe(data), indent=2, allow_nan=False) if getattr(args, "json", False) else text,
          file=getattr(args, "stdout", None))


def _json_safe(data: Any) -> Any:
    """NaN and infinities (a diverged loss) as null: `--json` output is always standard JSON."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {k: _json_safe(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [_json_safe(v) for v in data]
    return data


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

    def source(r) -> str:  # a user's pipeline that replaces a plugin's (or an earlier file's) says so
        return r["source"] + "".join(f"; overrides {o}" for o in r.get("overrides", []))

    _emit(args, rows, "\n".join(f"{r['name']:<24} {'(preset) ' if r['preset'] else ''}{r['description']}"
                                f"  [{source(r)}]" for r in rows) or "no pipelines")
    return 0


def cmd_validate(args) -> int:
    """Validate the named files together (as `train --registry A --registry B` reads them: one may extend a pipeline
    of another, or of an installed plugin), reporting their own pipelines; without files, every installed
    pipeline and ./registry.toml."""
    from pathlib import Path

    from ..registry.file import load_registry

    files = list(args.files or []) + list(args.registry or [])
    notes: list[str] = []
    try:
        registry = load_registry(files, include_default=not files)
    except UserError as exc:
        registry, errors, names = None, [str(exc)], []
    if registry is not None:
        own = {str(Path(f)) for f in files}
        names = [n for n in registry.names() if not files or registry.pipelines[n].source.path in own]
        notes.extend(registry.override_notes(names))
        errors = _validate_pipelines(registry, names, notes, build=not args.no_build, overrides=_set_overrides(args))
    if args.json:
        print(json.dumps({"valid": not errors, "pipelines": names, "errors": errors, "notes": notes}, indent=2),
              file=getattr(args, "stdout", None))
    else:
        for e in errors:
            print(e, file=sys.stderr)
        for note in notes:
            print(f"perceiver: note: {note}", file=sys.stderr)
        if not errors:
            print(f"ok: {len(names)} pipeline(s): {', '.join(names)}")
    return 2 if errors else 0


def _validate_pipelines(registry, names: list[str], notes: list[str], *, build: bool,
                        overrides: Sequence[str] = ()) -> list[str]:
    """Every error of the named pipelines, one line each: their tables (with the `--set` overrides applied to each,
    as `train` applies them) against the config models, then (with `build`) their models built on the meta device,
    so that what validates trains (model/check.py)."""
    from ..errors import RegistryError

    checker = None
    if build:
        from ..model.check import PipelineChecker

        checker = PipelineChecker(registry)
    errors: dict[str, None] = {}  # ordered, deduplicated
    for name in names:
        try:
            spec = registry.resolve(name, overrides)
        except RegistryError as exc:
            for one in getattr(exc, "errors", [exc]):  # every error of the pipeline, not only the first
                errors.setdefault(str(one), None)
            continue
        if checker is not None:
            try:
                note = checker.check(spec, overrides)
            except UserError as exc:
                errors.setdefault(str(exc), None)
                continue
            if note:
                notes.append(note)
    return list(errors)


def cmd_schema(args) -> int:
    from ..registry.schema import registry_schema

    problems: list[str] = []
    text = json.dumps(registry_schema(problems=problems), indent=2)
    for line in problems:
        print(f"perceiver: warning: {line}", file=sys.stderr)
    if args.out:  # whole or not at all: a full disk keeps the schema file an editor already uses
        from ..runtime.files import atomic_write

        atomic_write(args.out, text + "\n", f"{args.out} is unchanged: free space and run again", fsync=False)
    else:
        print(text)
    return 0


# -- running ---------------------------------------------------------------------------------------------------
def _positive(args, *names: str) -> None:
    for name in names:
        value = getattr(args, name, None)
        if value is not None and value < 1:
            flag = "--" + name.replace("_", "-")
            raise UserError(f"{flag} must be a positive number of steps, got {value}")


def _init_overrides(args) -> list[str]:
    """--init-from / --load / --reinit / --freeze as overrides of the pipeline's `init_from` table (so that the
    run's pipeline.json records them)."""
    out = []
    if args.init_from is not None:
        out.append(f"init_from.checkpoint={json.dumps(args.init_from)}")
    for flag in ("load", "reinit", "freeze"):
        values = getattr(args, flag)
        if values:
            if args.init_from is None:
                raise UserError(f"--{flag} goes with --init-from CHECKPOINT (the weights to start from)")
            out.append(f"init_from.{flag}={json.dumps(values)}")
    return out


def _set_overrides(args) -> list[str]:
    """The `--set KEY=VALUE` flags (build_parser's `overrides`), in order: `train` and `validate` apply them alike."""
    return list(getattr(args, "set", None) or [])


def _spec(args, *, check: bool = False):
    """The pipeline resolved from the registry files with the flags' overrides; with `check`, also built on the meta
    device (model/check.py), so that what the build rejects is one line naming the file:line:key or the --set."""
    overrides = _set_overrides(args) + _init_overrides(args)
    if args.max_steps is not None:
        overrides.append(f"train.max_steps={args.max_steps}")
    registry = _registry(args)
    spec = registry.resolve(args.pipeline, overrides)
    if check:
        from ..model.check import check_pipeline

        check_pipeline(spec, registry=registry, overrides=overrides)
    return spec


def cmd_train(args) -> int:
    from ..runtime.resume import resume_spec
    from ..runtime.training import train

    _report_plugin_problems()
    _positive(args, "max_steps", "stop_after")
    if args.resume is not None:
        # the run's own resolved pipeline (pipeline.json), never today's registry: a resume is the same experiment
        spec = resume_spec(args.resume, pipeline=args.pipeline, overrides=[*(args.set or ()), *_init_overrides(args)],
                           max_steps=args.max_steps, allow_changes=args.allow_changes)
        from ..model.check import check_pipeline

        check_pipeline(spec)
        out = args.out or args.resume
    else:
        if args.pipeline is None:
            raise UserError("train needs a PIPELINE (see `perceiver pipelines`), or --resume DIR to continue a run")
        if args.out is None:
            raise UserError("train needs --out DIR: the folder for model.safetensors and metrics.jsonl")
        spec, out = _spec(args, check=True), args.out
    result = train(spec, out, resume=args.resume, stop_after=args.stop_after, overwrite=args.overwrite,
                   progress=not args.no_progress)
    if os.environ.get("RANK", "0") != "0":  # under torchrun only rank 0 reports
        return 0
    summary = ", ".join(f"{k}={v}" for k, v in result.items() if k != "init")
    _emit(args, result, f"trained {spec.name} -> {os.path.join(out, 'model.safetensors')}: {summary}")
    return 0


# keys of a checkpoint's pipeline that evaluate/predict may change: the data and the loop, never the model
_DATA_KEYS = ("data", "train", "backend")


def _pipeline_before_inputs(args) -> None:
    """`predict [PIPELINE] INPUT...`: the optional pipeline name is the first positional when it is neither a file
    nor a SPLIT:INDEX example."""
    first = args.inputs[0]
    if len(args.inputs) > 1 and ":" not in first and not os.path.exists(first):
        args.pipeline = args.inputs.pop(0)


def _checked_model(args):
    """The checkpoint's model and its own pipeline (PIPELINE, if given, must be the one it was trained as)."""
    from ..registry.file import resolve_table
    from ..runtime.checkpoint import from_checkpoint

    model = from_checkpoint(args.checkpoint)
    trained = model.spec.name
    if args.pipeline is not None and args.pipeline != trained:
        raise UserError(f"{args.checkpoint} was trained as pipeline {trained!r}, not {args.pipeline!r}; leave "
                        f"PIPELINE out (the checkpoint names its pipeline) or change the data with --set data.use=...")
    if args.set:
        for override in args.set:
            if override.split("=", 1)[0].strip().split(".")[0] not in _DATA_KEYS:
                raise UserError(f"--set {override!r}: {args.command} may change only data.*, train.* and backend; "
                                "the model is the checkpoint's")
        model.spec = resolve_table(trained, model.spec.to_json(), f"{args.checkpoint}[pipeline]",
                                   overrides=args.set)
    return model


def cmd_evaluate(args) -> int:
    from ..model.pipeline import build_dataset
    from ..runtime.backends import select_backend
    from ..runtime.evaluate import evaluate_model

    model = _checked_model(args)
    spec = model.spec
    backend = select_backend(spec.backend)
    model.to(backend.device())
    dataset = build_dataset(spec)
    split = args.split or spec.train.eval_split
    if split not in dataset.splits:
        raise UserError(f"dataset {spec['data'].use!r} has no split {split!r}; splits: {', '.join(dataset.splits)}")
    data = spec["data"].config
    # the checkpoint's own data (_checked_model refuses another pipeline in one line): an error here is a bug
    metrics = evaluate_model(model, dataset.examples(split), batch_size=data.eval_batch_size or data.batch_size,
                             backend=backend, precision=spec.train.precision)
    metrics = {k: round(v, 6) for k, v in metrics.items()}
    _emit(args, metrics, f"{spec.name} [{split}]: " + ", ".join(f"{k}={v}" for k, v in metrics.items()))
    return 0


def cmd_predict(args) -> int:
    _pipeline_before_inputs(args)
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
    from .predict_files import format_rows, prediction_rows

    rows = prediction_rows(model, examples, args.inputs, args.top_k, Path(args.out))
    _emit(args, rows, format_rows(rows))
    return 0


def cmd_inspect(args) -> int:
    from .inspect import cmd_inspect as run

    return run(args)


def _read_input(model, args, item: str):
    """A file path, or SPLIT:INDEX to take an example of the pipeline's dataset (e.g. test:0)."""
    split, sep, index = item.partition(":")
    if sep and index.isdigit() and not os.path.exists(item):
        from ..model.pipeline import build_dataset

        dataset = build_dataset(model.spec)
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


def cmd_explain(args) -> int:
    from .explain import run_explain

    _pipeline_before_inputs(args)
    return run_explain(args, load_model=_checked_model, read_input=_read_input, emit=_emit)


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


def cmd_data(args) -> int:
    from ..model.pipeline import build_dataset
    from .data import describe_dataset, format_description

    spec = _registry(args).resolve(args.pipeline, list(args.set or []))
    description = describe_dataset(build_dataset(spec), args.examples)
    _emit(args, description, format_description(description))
    return 0


def cmd_import_hf(args) -> int:
    from .import_hf import cmd_import_hf as run

    return run(args)


def cmd_doctor(args) -> int:
    from .doctor import cmd_doctor as run

    return run(args)


# -- parser ------------------------------------------------------------------------------------------------------
EXAMPLES = {
    "pipelines": ["perceiver pipelines", "perceiver pipelines --presets --json"],
    "validate": ["perceiver validate", "perceiver validate my.toml more.toml",
                 "perceiver validate my.toml --set encoder.num_latents=64"],
    "schema": ["perceiver schema --out registry.schema.json", "perceiver schema | head"],
    "train": ["perceiver train digits --out runs/digits",
              "perceiver train digits --out r --max-steps 200 --set train.lr=1e-3",
              "perceiver train digits --out r2 --init-from runs/digits --reinit decoder",
              "perceiver train --resume runs/digits"],
    "evaluate": ["perceiver evaluate --checkpoint runs/digits",
                 "perceiver evaluate --checkpoint runs/digits --split train"],
    "predict": ["perceiver predict --checkpoint runs/digits test:0 test:1",
                "perceiver predict --checkpoint runs/digits a.png --top-k 3",
                "perceiver predict --checkpoint runs/stereo left.png,right.png --out flow/"],
    "explain": ["perceiver explain --checkpoint runs/digits test:0 --out maps/",
                "perceiver explain --checkpoint runs/shapes chair.off --out maps/ --json"],
    "data": ["perceiver data digits", "perceiver data photos --set data.root=my-photos --json"],
    "inspect": ["perceiver inspect runs/digits", "perceiver inspect model.safetensors --json"],
    "import-hf": ["perceiver import-hf ./vision-perceiver-fourier --out fourier.safetensors"],
    "components": ["perceiver components --kind preprocessor"],
}


def build_parser() -> argparse.ArgumentParser:
    from ..version import __version__

    registry_opt = argparse.ArgumentParser(add_help=False)  # only for commands that read registry files
    registry_opt.add_argument("--registry", action="append", metavar="FILE",
                              help="registry file adding or overriding pipelines (repeatable; read after the "
                                   "installed plugins' pipelines and ./registry.toml)")
    json_opt = argparse.ArgumentParser(add_help=False)
    json_opt.add_argument("--json", action="store_true", help="print JSON for machines")
    parser = argparse.ArgumentParser(
        prog="perceiver", description="Perceiver, Perceiver IO and HiP pipelines",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  perceiver pipelines\n  perceiver train digits --out runs/digits\n"
               "  perceiver evaluate --checkpoint runs/digits\n  perceiver inspect runs/digits\n"
               "`perceiver COMMAND --help` shows each command's options and examples.")
    parser.add_argument("--version", action="version", version=f"perceiver-core {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(name, fn, help_, *, registry: bool = False):
        parents = [json_opt] + ([registry_opt] if registry else [])
        examples = EXAMPLES.get(name)
        epilog = ("examples:\n" + "\n".join(f"  {e}" for e in examples)) if examples else None
        p = sub.add_parser(name, parents=parents, help=help_, description=help_, epilog=epilog,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
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
    p = add("pipelines", cmd_pipelines, "list the pipelines of installed plugins and registry files, with their "
                                        "source", registry=True)
    p.add_argument("--presets", action="store_true", help="also list the presets (the papers' configurations)")
    def overrides(p, what):
        p.add_argument("--set", action="append", metavar="KEY=VALUE", help=what)

    p = add("validate", cmd_validate, "validate registry files together without running anything: every pipeline's "
                                      "tables, then its model built on the meta device (nothing allocated)",
            registry=True)
    p.add_argument("files", nargs="*", metavar="FILE",
                   help="registry files, read together (default: every installed pipeline and ./registry.toml)")
    p.add_argument("--no-build", action="store_true",
                   help="check the tables against the config models only (no torch imported; what the build "
                        "rejects is not found)")
    overrides(p, "override a value of every pipeline validated, as train --set does, e.g. --set train.lr=1e-3 "
                 "(repeatable)")
    p = add("schema", cmd_schema, "print the JSON schema of registry files for the installed plugins")
    p.add_argument("--out", metavar="FILE", help="write the schema to FILE")

    p = add("train", cmd_train, "train a pipeline (or continue a run with --resume DIR)", registry=True)
    p.add_argument("pipeline", metavar="PIPELINE", nargs="?", help="pipeline name (optional with --resume)")
    overrides(p, "override a pipeline value, e.g. --set train.epochs=5 (repeatable)")
    p.add_argument("--out", metavar="DIR", help="folder for model.safetensors and metrics.jsonl "
                                                "(with --resume: that folder by default)")
    p.add_argument("--max-steps", type=int, metavar="N", help="train for N optimizer steps (sets train.max_steps)")
    p.add_argument("--resume", metavar="DIR", help="continue the run in DIR with its own pipeline (DIR/pipeline.json)")
    p.add_argument("--allow-changes", action="store_true",
                   help="with --resume: apply --set / --max-steps even though they change the run's pipeline")
    p.add_argument("--stop-after", type=int, metavar="N", help="stop (with a checkpoint) after step N, as if "
                                                               "interrupted; --resume continues exactly")
    p.add_argument("--init-from", metavar="CHECKPOINT", help="start from the weights of a checkpoint (a run "
                   "folder, a .safetensors of ours or of import-hf); see also --load, --reinit, --freeze")
    p.add_argument("--load", action="append", metavar="MODULE", help="with --init-from: load only these modules "
                   "(preprocessor, position, encoder, decoder; repeatable; default: all that fit)")
    p.add_argument("--reinit", action="append", metavar="MODULE", help="with --init-from: keep these modules "
                   "freshly initialised (e.g. decoder for a new number of classes; repeatable)")
    p.add_argument("--freeze", action="append", metavar="MODULE", help="do not train these modules (repeatable)")
    p.add_argument("--overwrite", action="store_true", help="replace a model already in --out")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")

    def checkpoint_args(p, positional: bool = True):
        if positional:
            p.add_argument("pipeline", metavar="PIPELINE", nargs="?",
                           help="optional: the pipeline the checkpoint was trained as (a different name is an error)")
        else:
            p.set_defaults(pipeline=None)
        p.add_argument("--checkpoint", required=True, metavar="PATH", help="a run folder or its model.safetensors")
        overrides(p, "change the data or loop, e.g. --set data.batch_size=256 (data.*, train.*, backend only)")

    p = add("evaluate", cmd_evaluate, "evaluate a checkpoint on its pipeline's data")
    checkpoint_args(p)
    p.add_argument("--split", help="split to evaluate (default: the pipeline's train.eval_split)")
    p = add("predict", cmd_predict, "run a checkpoint on input files (or SPLIT:INDEX examples of its dataset)")
    checkpoint_args(p, positional=False)
    p.add_argument("inputs", nargs="+", metavar="[PIPELINE] INPUT",
                   help="input files or SPLIT:INDEX examples, optionally after the pipeline's name")
    p.add_argument("--top-k", type=int, default=1, metavar="K", help="print the K most probable classes")
    p.add_argument("--out", default=".", metavar="DIR", help="folder for dense predictions written as files "
                                                             "(e.g. flow as .flo, .npy and .png; default: here)")
    p = add("explain", cmd_explain, "draw what the latents attend to (cross-attention maps) for input files")
    checkpoint_args(p, positional=False)
    p.add_argument("inputs", nargs="+", metavar="[PIPELINE] INPUT",
                   help="input files or SPLIT:INDEX examples of the dataset, optionally after the pipeline's name")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the PNGs (and JSON maps with --json)")
    p.add_argument("--latents", metavar="I,J,..", help="latents to draw (default: the --top most attended)")
    p.add_argument("--top", type=int, default=4, metavar="K", help="draw the K latents the decoder attends to most")
    p = add("data", cmd_data, "show what a pipeline's dataset found: counts per split and class, examples, "
                              "statistics, unreadable files", registry=True)
    p.add_argument("pipeline", metavar="PIPELINE", help="pipeline name")
    overrides(p, "override a pipeline value, e.g. --set data.root=photos (repeatable)")
    p.add_argument("--examples", type=int, default=3, metavar="N", help="show N training examples")
    p = add("inspect", cmd_inspect, "print a checkpoint's metadata: pipeline, plugins, step, metrics, parameters")
    p.add_argument("checkpoint", metavar="PATH", help="a run folder or a .safetensors checkpoint")
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
    args, extra = parser.parse_known_args(argv)
    if extra:  # argparse stops collecting positionals at an option: `predict NAME --checkpoint R a.png b.png`
        if getattr(args, "command", None) in ("predict", "explain") and not any(e.startswith("-") for e in extra):
            args.inputs += extra
        else:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if getattr(args, "fn", None) is None:  # `perceiver` alone
        parser.print_help()
        return 0
    args.stdout = sys.stdout  # the JSON document goes here and nowhere else
    try:
        if getattr(args, "json", False):  # anything else printed (plugin code included) goes to stderr
            with contextlib.redirect_stdout(sys.stderr):
                code = args.fn(args)
        else:
            code = args.fn(args)
        sys.stdout.flush()  # a reader that left (`| head`) shows up here, not as "Broken pipe" at exit
        return code
    except UserError as exc:
        return user_error(f"perceiver: error: {exc}")
    except BrokenPipeError:  # `perceiver schema | head`: the reader left; that is not an error
        silence_stdout()
        return 0
    except OSError as exc:  # a path the user named cannot be read or written (missing folder, permissions, disk full)
        where = f": {exc.filename}" if getattr(exc, "filename", None) else ""
        full = " (the disk is full: free space and run again)" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else ""
        return user_error(f"perceiver: error: {exc.strerror or exc}{where}{full}")
    except KeyboardInterrupt:
        print("perceiver: interrupted", file=sys.stderr)
        return 130
