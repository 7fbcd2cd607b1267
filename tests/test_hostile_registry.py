"""Malformed registry files (tests/registry_corpus.py) through the CLI: exit 2, one line naming the file:line:key
(or the --set) and what is wrong, no traceback, bounded memory; `validate` builds every pipeline on the meta device
so that what validates trains; and validating N pipelines is linear in N (counted, not timed).

The CI-sized run drives every case through the in-process CLI entry (`perceiver_core.commands.cli.main`) with
captured output; the slow run spawns `perceiver` per case and checks each one's peak RSS (`run_measured`).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import resource
import sys
from pathlib import Path

import pytest

from perceiver_core.commands.cli import _validate_pipelines, main
from perceiver_core.registry import locate as locate_module
from perceiver_core.registry.file import load_registry

HERE = Path(__file__).parent


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


corpus = _load("registry_corpus")
hostile = _load("hostile_corpus")
PEAK_RSS_LIMIT = 1_200 * 2**20  # torch + a tiny model; a trusted 10^9-latent config would be terabytes


def _write(tmp_path: Path, case) -> Path:
    path = tmp_path / f"{case.name}.toml"
    if isinstance(case.text, bytes):
        path.write_bytes(case.text)
    else:
        path.write_text(case.text, encoding="utf-8")
    return path


def _run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def _check(code: int, stderr: str, case_key: str | None, expected: str, path: Path | None, prefix: str = ""):
    assert code == 2, (code, stderr[-2000:])
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, lines[:5]
    line = lines[0]
    assert len(line) < 2_000, line[:200]  # a 1 MB value is shown shortened
    assert line.startswith(prefix), line[:300]
    assert expected in line, line[:300]
    if path is not None:
        assert str(path) in line, line[:300]
    if case_key is not None:
        assert f": {case_key}" in line, line[:300]


def _train_argv(path: Path, out: Path, *extra: str) -> list[str]:
    return ["train", "bad", "--registry", str(path), "--out", str(out), "--max-steps", "1", "--no-progress", *extra]


@pytest.mark.parametrize("case", corpus.CASES, ids=[c.name for c in corpus.CASES])
def test_malformed_registry_file_is_one_line(case, tmp_path):
    path = _write(tmp_path, case)
    code, _, err = _run(["validate", str(path)])
    _check(code, err, case.key, case.expected, path)
    if case.train:  # the same one line from train, before any allocation, and nothing written
        out = tmp_path / "run"
        code, _, err = _run(_train_argv(path, out))
        _check(code, err, case.key, case.expected, path, prefix="perceiver: error: ")
        assert not (out / "model.safetensors").exists()


@pytest.mark.parametrize(("name", "override", "expected"), corpus.SET_CASES, ids=[c[0] for c in corpus.SET_CASES])
def test_bad_set_value_names_the_set(name, override, expected, tmp_path):
    path = tmp_path / "ok.toml"
    path.write_text(corpus.BASE)
    code, _, err = _run(["train", "base", "--registry", str(path), "--out", str(tmp_path / "run"), "--max-steps", "1",
                         "--no-progress", "--set", override])
    _check(code, err, None, expected, None, prefix="perceiver: error: ")
    assert str(path) not in err  # the --set is at fault, not a line of the file


def test_memory_stays_bounded_in_process():
    # after every case above ran in this process (same worker under xdist, or at least this module's imports)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    assert peak < 4 * PEAK_RSS_LIMIT, f"peak RSS {peak / 2**20:.0f} MiB"


def test_corpus_size_and_names():
    names = [c.name for c in corpus.CASES]
    assert len(names) >= 60 and len(set(names)) == len(names)
    assert sum(c.train for c in corpus.CASES) >= 30


def test_valid_base_validates_and_builds(tmp_path):
    path = tmp_path / "ok.toml"
    path.write_text(corpus.BASE)
    code, out, err = _run(["validate", str(path)])
    assert code == 0 and out.startswith("ok: 1 pipeline(s): base"), err


def test_validate_is_linear_in_the_pipelines(tmp_path, monkeypatch):
    """The expensive steps per pipeline are counted: the file is parsed once, its line index built once (not a
    scan of the file per error), one dataset per distinct data table, one meta build per valid pipeline."""
    import tomllib

    from perceiver_core.model import check as check_module

    parses = []
    real_loads = tomllib.loads
    monkeypatch.setattr(tomllib, "loads", lambda text, **kw: parses.append(len(text)) or real_loads(text, **kw))
    datasets = []
    real_build_dataset = check_module.build_dataset
    monkeypatch.setattr(check_module, "build_dataset",
                        lambda *a, **k: datasets.append(1) or real_build_dataset(*a, **k))
    built = []
    real_init = check_module.PipelineChecker.__init__

    def init(self, *a, **k):
        real_init(self, *a, **k)
        built.append(self)

    monkeypatch.setattr(check_module.PipelineChecker, "__init__", init)
    for n in (20, 80):
        text = corpus.BASE + "".join(
            f'\n[pipelines.p{i}]\nextends = "base"\nencoder = {{ use = "perceiver", num_latents = {8 + i} }}\n'
            + ('task = { use = "classification", num_classes = 1 }\n' if i % 2 else "") for i in range(n))
        path = tmp_path / f"many{n}.toml"
        path.write_text(text)
        parses.clear(), datasets.clear(), built.clear()
        locate_module._index.cache_clear()
        registry = load_registry([path], include_default=False)
        own = [name for name in registry.names() if registry.pipelines[name].source.path == str(path)]
        assert len(own) == n + 1
        errors = _validate_pipelines(registry, own, [], build=True)
        assert len(errors) == n // 2  # every odd pipeline has one error, each located...
        assert all(e.startswith(f"{path}:") for e in errors)
        index = locate_module._index.cache_info()
        assert index.misses <= 2  # ...through one index of the file (and of the presets'), not a scan per error
        assert parses.count(len(text)) == 1  # the file is parsed once, not per pipeline
        assert len(datasets) == 1  # one dataset for the one data table
        assert built[0].builds == n - n // 2 + 1  # one meta build per valid pipeline (base included)


#: every 8th case runs as its own process in the CI-sized run; all of them with `pytest -m exhaustive` (the in-process
#: test above already runs every case; this one adds a fresh interpreter and its peak RSS per case, ~5 s each)
SUBPROCESS_CASES = [pytest.param(c, id=c.name, marks=() if i % 8 == 0 else (pytest.mark.exhaustive,))
                    for i, c in enumerate(corpus.CASES)]


@pytest.mark.slow
@pytest.mark.parametrize("case", SUBPROCESS_CASES)
def test_malformed_registry_file_subprocess(case, tmp_path):
    """Each case through a fresh `perceiver` process, its peak RSS measured."""
    path = _write(tmp_path, case)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    commands = [([sys.executable, "-m", "perceiver_core", "validate", str(path)], "")]
    if case.train:
        out = tmp_path / "run"
        commands.append(([sys.executable, "-m", "perceiver_core", *_train_argv(path, out)], "perceiver: error: "))
    for cmd, prefix in commands:
        proc, peak = hostile.run_measured(cmd, env=env)
        _check(proc.returncode, proc.stderr, case.key, case.expected, path, prefix=prefix)
        assert 0 < peak < PEAK_RSS_LIMIT, f"peak RSS {peak / 2**20:.0f} MiB"


def test_every_component_config_is_strict_bounded_and_finite():
    """A plugin's config (any ComponentConfig subclass) gets the same checks as the core's, without declaring them."""
    from pydantic import ValidationError

    from perceiver_core.config import MAX_INT, ComponentConfig

    class PluginConfig(ComponentConfig):
        n: int = 1
        x: float = 1.0
        on: bool = False
        shape: tuple[int, ...] = (1,)

    assert PluginConfig(n=3, x=2, on=True, shape=[2, 3]).x == 2.0  # a TOML int fills a float; an array a tuple
    for bad in ({"n": "3"}, {"n": 3.0}, {"n": True}, {"n": MAX_INT + 1}, {"x": "0.1"}, {"x": True},
                {"x": float("inf")}, {"x": float("nan")}, {"on": 1}, {"on": "yes"}, {"shape": ["2"]}):
        with pytest.raises(ValidationError):
            PluginConfig(**bad)


def test_json_output_never_holds_nan():
    import json

    from perceiver_core.commands.cli import _json_safe

    data = _json_safe({"loss": float("nan"), "rows": [float("inf"), 1.5], "name": "x"})
    assert json.loads(json.dumps(data, allow_nan=False)) == {"loss": None, "rows": [None, 1.5], "name": "x"}


def test_validate_no_build_imports_no_torch(tmp_path):
    import subprocess

    path = tmp_path / "ok.toml"
    path.write_text(corpus.BASE)
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "perceiver_core", "validate", str(path),
                           "--no-build"], capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    imported = {line.split("|")[-1].strip().split(".")[0] for line in proc.stderr.splitlines() if "|" in line}
    assert "torch" not in imported


def test_build_errors_are_found_only_by_the_build(tmp_path):
    """The tables of a pipeline whose heads do not divide the data's channels are valid: only the meta-device
    build finds the fault, and train gives the same line before allocating anything."""
    case = next(c for c in corpus.CASES if c.name == "mean-of-the-wrong-length")
    path = _write(tmp_path, case)
    assert _run(["validate", str(path), "--no-build"])[0] == 0
    code, _, err = _run(["validate", str(path)])
    assert code == 2 and f"{path}:13: pipelines.bad.preprocessor.mean: cannot build preprocessor" in err
