"""Plugins as hostile code, each built as a real distribution (pip-installed into a throwaway site folder): every
case is reported (one line naming the distribution) or refused, never a traceback, never a corrupted `--json`
document; the runtime, `perceiver plugins check` and `perceiver doctor` agree on what is broken."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


TINY = Path(__file__).parent / "tiny.toml"
_NONE = ('factory="perceiver_core.model.positions.none:NoPositionEncoding", '
         'config="perceiver_core.config.positions:NoPositionConfig"')

HOSTILE = {
    # prints at import, through sys.stdout and straight to file descriptor 1
    "prints": 'import os\nprint("hello from a chatty plugin")\nos.write(1, b"raw bytes on fd 1\\n")\n'
              "from perceiver_core import hookimpl\n\n@hookimpl\ndef perceiver_register_components(registry):\n"
              f'    print("registering!")\n    registry.add("position", "chatty.none", {_NONE})\n',
    # a backend of the highest priority whose availability check raises
    "flaky-backend": "from perceiver_core import hookimpl\n\nclass Flaky:\n    name = 'flaky'\n"
                     "    def available(self):\n        raise RuntimeError('driver exploded')\n\n"
                     "@hookimpl\ndef perceiver_register_backends(registry):\n"
                     "    registry.add_backend('flaky', factory=Flaky, priority=10_000)\n",
    # a config class that is not a pydantic model
    "bad-config": "from perceiver_core import hookimpl\n\nclass NotAModel:\n    pass\n\n@hookimpl\n"
                  "def perceiver_register_components(registry):\n"
                  "    registry.add('position', 'badcfg.none', factory='perceiver_core.model.positions.none:"
                  "NoPositionEncoding', config=NotAModel)\n",
    # raises when its hook is called
    "hook-raises": "from perceiver_core import hookimpl\n\n@hookimpl\ndef perceiver_register_components(registry):\n"
                   "    raise ValueError('registration blew up')\n",
    # changes torch's default dtype at import
    "dtype": "import torch\ntorch.set_default_dtype(torch.float64)\nfrom perceiver_core import hookimpl\n\n"
             f"@hookimpl\ndef perceiver_register_components(registry):\n"
             f'    registry.add("position", "dtype.none", {_NONE})\n',
    # seeds torch's global RNG at import
    "seeds": "import torch\ntorch.manual_seed(1234)\n",
    # a slow import
    "slow": "import time\ntime.sleep(1.3)\n",
    # a hook function without @hookimpl: the runtime does not call it and reports it, as `plugins check` does
    "undecorated": "def perceiver_register_components(registry):\n"
                   f'    registry.add("position", "undecorated.none", {_NONE})\n',
    # names a factory that does not exist
    "bad-factory": "from perceiver_core import hookimpl\n\n@hookimpl\ndef perceiver_register_components(registry):\n"
                   "    registry.add('position', 'badfactory.none', factory='ptest_nowhere.module:Nothing', "
                   "config='perceiver_core.config.positions:NoPositionConfig')\n",
    # ends the process at import
    "exits": "import sys\nsys.exit(3)\n",
}


@pytest.fixture(scope="module")
def hostile_site(plugin_site_factory):
    return plugin_site_factory("hostile", {name: ("v1", code) for name, code in HOSTILE.items()})


def _env(site: Path) -> dict:
    return {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}


def _no_traceback(result):
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout, result.stderr[-2000:]


def _json(result):
    _no_traceback(result)
    return json.loads(result.stdout)  # the whole of stdout is one JSON document


def test_plugin_problems_are_reported_and_json_stays_clean(cli, hostile_site):
    result = cli("plugins", "--json", env=_env(hostile_site))
    assert result.returncode == 0
    by_dist = {p["distribution"]: p for p in _json(result)["plugins"]}

    def report(name):
        return by_dist[f"perceiver-test-{name}"]

    chatty = report("prints")
    assert chatty["status"] == "ok" and "position:chatty.none" in chatty["components"]
    assert any("importing it printed to stdout" in w and "hello from a chatty plugin" in w for w in chatty["warnings"])
    assert any("its hook perceiver_register_components printed to stdout" in w for w in chatty["warnings"])
    assert report("hook-raises")["status"] == "error"
    assert "perceiver_register_components raised ValueError: registration blew up" in report("hook-raises")["errors"]
    dtype = report("dtype")
    assert dtype["status"] == "error"
    assert any("changed torch's global state (default dtype float64 instead of float32)" in e for e in dtype["errors"])
    assert any("seeded the global RNG with 1234" in e for e in report("seeds")["errors"])
    slow = report("slow")
    assert slow["status"] == "ok" and slow["import_seconds"] >= 1.3
    assert any("took 1." in w and "every `perceiver` command pays it" in w for w in slow["warnings"])
    undecorated = report("undecorated")
    assert undecorated["status"] == "error" and undecorated["components"] == []
    assert "is not decorated with @perceiver_core.hookimpl, so it is never called" in undecorated["errors"][0]
    exits = report("exits")
    assert exits["status"] == "error" and "SystemExit: 3" in exits["errors"][0]
    # the others keep working
    assert by_dist["perceiver-image"]["status"] == "ok"
    names = {c["name"] for c in _json(cli("components", "--json", env=_env(hostile_site)))}
    assert {"chatty.none", "dtype.none", "fourier"} <= names and "undecorated.none" not in names


@pytest.mark.slow
def test_plugins_check_agrees_with_the_runtime(cli, hostile_site):
    """One rule: what the runtime reports as an error, `plugins check` fails on; warnings do not fail it."""
    dists = [f"perceiver-test-{name}" for name in HOSTILE]
    result = cli("plugins", "check", *dists, "--json", env=_env(hostile_site))
    assert result.returncode == 2
    by_dist = {r["distribution"]: r for r in _json(result)["results"]}
    doctor = {p["distribution"]: p for p in _json(cli("doctor", "--json", env=_env(hostile_site)))["plugins"]}
    listing = {p["distribution"]: p for p in _json(cli("plugins", "--json", env=_env(hostile_site)))["plugins"]}
    for dist in dists:
        assert by_dist[dist]["ok"] == (doctor[dist]["status"] == "ok"), (dist, by_dist[dist], doctor[dist])
        if listing[dist]["status"] != "ok":  # the light listing (no backend or config probing) never disagrees
            assert not by_dist[dist]["ok"], dist
    assert any("is not decorated" in p for p in by_dist["perceiver-test-undecorated"]["problems"])
    assert any("not a pydantic model" in p for p in by_dist["perceiver-test-bad-config"]["problems"])
    assert any("available() raised RuntimeError: driver exploded" in p
               for p in by_dist["perceiver-test-flaky-backend"]["problems"])
    assert any("printed to stdout" in w for w in by_dist["perceiver-test-prints"]["warnings"])


def test_a_config_that_is_not_a_model_does_not_break_the_schema(cli, hostile_site):
    result = cli("schema", env=_env(hostile_site))
    assert result.returncode == 0
    schema = _json(result)
    assert schema["title"] == "perceiver registry file"
    text = json.dumps(schema)
    assert "chatty.none" in text and "badcfg.none" not in text
    lines = [line for line in result.stderr.splitlines() if "left out of the schema" in line]
    assert len(lines) == 1 and "position 'badcfg.none' of perceiver-test-bad-config 1.2.3" in lines[0]


def test_a_backend_whose_check_raises_is_skipped_and_reported(cli, hostile_site):
    rows = _json(cli("backends", "--json", env=_env(hostile_site)))
    flaky = next(r for r in rows if r["name"] == "flaky")
    assert not flaky["available"] and "RuntimeError: driver exploded" in flaky["reason"]
    assert "perceiver-test-flaky-backend 1.2.3" in flaky["reason"]
    code = ("from perceiver_core.runtime.backends import select_backend; b = select_backend('auto'); "
            "print(b.name)")
    proc = subprocess.run([sys.executable, "-c", code], env={**os.environ, **_env(hostile_site)},
                          capture_output=True, text=True, timeout=120)
    _no_traceback(proc)
    assert proc.stdout.strip() == "cpu"
    assert "backend 'flaky' skipped: availability check failed: RuntimeError: driver exploded" in proc.stderr


@pytest.mark.slow
def test_doctor_reports_every_broken_plugin(cli, hostile_site):
    result = cli("doctor", "--json", env=_env(hostile_site))
    assert result.returncode == 2  # broken plugins installed
    report = _json(result)
    problems = " ".join(report["problems"])
    for name in ("hook-raises", "dtype", "seeds", "undecorated", "exits"):
        assert f"perceiver-test-{name} 1.2.3" in problems, name
    assert any("perceiver-test-slow" in w and "took" in w for w in report["warnings"])
    slow = next(p for p in report["plugins"] if p["distribution"] == "perceiver-test-slow")
    assert slow["import_seconds"] >= 1.3
    assert report["versions"]["torch"].startswith("2.")
    text = cli("doctor", env=_env(hostile_site))
    _no_traceback(text)
    assert "perceiver-test-slow 1.2.3 [slow] ok, import 1." in text.stdout


def test_a_factory_that_does_not_resolve_is_one_line_naming_the_distribution(cli, hostile_site, tmp_path):
    registry = tmp_path / "r.toml"
    registry.write_text((TINY.read_text().split("[pipelines.tiny-perceiver]")[0])
                        .replace('position = { use = "fourier", num_bands = 4 }', 'position = { use = "badfactory.none" }'))
    result = cli("train", "tiny", "--registry", str(registry), "--out", str(tmp_path / "o"), "--max-steps", "1",
                 "--no-progress", env=_env(hostile_site))
    assert result.returncode == 2
    _no_traceback(result)
    error = [line for line in result.stderr.splitlines() if line.startswith("perceiver: error:")]
    assert len(error) == 1 and "position 'badfactory.none' of perceiver-test-bad-factory 1.2.3 cannot be built" \
        in error[0] and "ModuleNotFoundError" in error[0]


@pytest.mark.slow
def test_train_json_with_hostile_plugins(cli, hostile_site, tmp_path):
    """Training still works (auto backend skips the flaky one), its JSON is clean, each broken plugin is one
    warning line on stderr, and the dtype plugin did not turn the model into float64."""
    result = cli("train", "tiny", "--registry", str(TINY), "--out", str(tmp_path), "--max-steps", "2",
                 "--no-progress", "--json", env=_env(hostile_site))
    assert result.returncode == 0, result.stderr[-3000:]
    assert _json(result)["step"] == 2
    warnings = [line for line in result.stderr.splitlines() if line.startswith("perceiver: warning: plugin")]
    for name in ("hook-raises", "dtype", "seeds", "undecorated", "exits"):
        assert sum(f"perceiver-test-{name} 1.2.3" in line for line in warnings) >= 1, name
    assert "backend 'flaky' skipped" in result.stderr
    from safetensors import safe_open

    with safe_open(str(tmp_path / "model.safetensors"), "pt") as f:
        assert all(f.get_slice(k).get_dtype() == "F32" for k in f.keys())


def test_conformance_import_check_finds_global_state_changes(hostile_site, monkeypatch):
    from perceiver_core.plugins.check import import_problems

    monkeypatch.setenv("PYTHONPATH", _env(hostile_site)["PYTHONPATH"])
    problems, _ = import_problems("ptest_dtype.plugin")
    assert len(problems) == 1 and "default dtype float64 instead of float32" in problems[0]
    problems, warnings = import_problems("ptest_prints.plugin")
    assert problems == () and "hello from a chatty plugin" in warnings[0]


def test_one_rule_for_undecorated_hooks_in_process():
    """The runtime does not call an undecorated hook (pluggy would not either) and reports it exactly as the
    check and the conformance suites do."""
    import types

    from perceiver_core.plugins.check import hook_problems
    from perceiver_core.plugins.manager import PluginManager

    called = []
    plugin = types.ModuleType("undecorated_plugin")
    plugin.perceiver_register_components = lambda registry: called.append(registry)
    pm = PluginManager(autoload=False, strict=False)
    report = pm.register(plugin, name="u", distribution="dist-u", version="0.1")
    assert called == [] and report.status == "error"
    assert report.errors == hook_problems(plugin)
