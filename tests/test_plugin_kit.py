"""The plugin author's kit: conformance suites (against the built-ins and broken plugins), `perceiver plugins
check`, the pytest fixtures, and the guide's hook reference checked against hookspecs.py."""

from __future__ import annotations

import inspect
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from perceiver_core import hookspecs
from perceiver_core.testing import (
    BackendConformance,
    DatasetConformance,
    DecoderConformance,
    EncoderConformance,
    PositionConformance,
    PreprocessorConformance,
    TaskConformance,
)

ROOT = Path(__file__).resolve().parents[1]
BUILTIN = "perceiver_core.plugins.builtin"
Failed = pytest.fail.Exception


# -- the suites pass for the built-in components (which no first-party plugin test covers) -------------------
class TestFourierConformance(PositionConformance):
    plugin, component = BUILTIN, "fourier"
    config = {"num_bands": 4}
    explicit_positions_dims = 2


class TestLearnedPositionConformance(PositionConformance):
    plugin, component = BUILTIN, "learned"
    config = {"num_channels": 6}


class TestPerceiverEncoderConformance(EncoderConformance):
    plugin, component = BUILTIN, "perceiver"
    config = {"num_latents": 4, "latent_channels": 16, "num_blocks": 2, "self_attends_per_block": 1,
              "self_attend_heads": 2, "num_cross_attends": 2}


class TestClassificationDecoderConformance(DecoderConformance):
    plugin, component = BUILTIN, "classification"
    expected_queries = 1


class TestPooledDecoderConformance(DecoderConformance):
    plugin, component = BUILTIN, "pooled"
    expected_queries = 1


class TestClassificationTaskConformance(TaskConformance):
    plugin, component = BUILTIN, "classification"
    config = {"num_classes": 5, "top_k": 2}
    dataset_info = {"num_classes": 5}


# -- broken plugins: each gives a precise message from the suites and from `perceiver plugins check` ----------
LOOSE_CONFIG = '''
from pydantic import BaseModel

class LooseConfig(BaseModel):
    """Forgets extra="forbid": pydantic's default silently ignores unknown keys."""
    width: int = 3
'''

BROKEN = {
    # name: (core API declared, plugin.py, configs.py or None, component kind, component name)
    "import-error": ("v1", "import a_module_that_does_not_exist\n", None, "position", "kit.x"),
    "hook-typo": ("v1", """
        from perceiver_core import hookimpl

        @hookimpl
        def perceiver_register_componets(registry):
            pass
        """, None, "position", "kit.y"),
    "duplicate": ("v1", """
        from perceiver_core import hookimpl

        @hookimpl
        def perceiver_register_components(registry):
            registry.add("position", "fourier", factory="perceiver_core.model.positions.none:NoPositionEncoding",
                         config="perceiver_core.config.positions:NoPositionConfig")
        """, None, "position", "fourier"),
    "wrong-api": ("v99", """
        from perceiver_core import hookimpl

        @hookimpl
        def perceiver_register_components(registry):
            registry.add("position", "kit.old", factory="perceiver_core.model.positions.none:NoPositionEncoding",
                         config="perceiver_core.config.positions:NoPositionConfig")
        """, None, "position", "kit.old"),
    "loose-config": ("v1", """
        from perceiver_core import hookimpl

        @hookimpl
        def perceiver_register_components(registry):
            registry.add("position", "kit.loose", factory="perceiver_core.model.positions.none:NoPositionEncoding",
                         config="pkit_loose_config.configs:LooseConfig")
        """, LOOSE_CONFIG, "position", "kit.loose"),
}


def _package(name: str) -> str:
    return "pkit_" + name.replace("-", "_")


def _dist(name: str) -> str:
    return f"perceiver-kit-{name}"


@pytest.fixture(scope="module")
def broken_site(tmp_path_factory) -> Path:
    """A site folder holding the broken distributions as installed ones: the package and a .dist-info with the
    entry points, exactly what pip leaves (no build needed)."""
    site = tmp_path_factory.mktemp("broken-site")
    for name, (api, code, configs, _, _) in BROKEN.items():
        pkg = site / _package(name)
        pkg.mkdir()
        (pkg / "__init__.py").write_text("")
        (pkg / "plugin.py").write_text(textwrap.dedent(code))
        if configs:
            (pkg / "configs.py").write_text(configs)
        info = site / f"{_dist(name).replace('-', '_')}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {_dist(name)}\nVersion: 1.0\n")
        (info / "entry_points.txt").write_text(f"[perceiver.plugins]\n{name} = {_package(name)}.plugin\n\n"
                                               f"[perceiver.core_api]\n{name} = {api}\n")
    return site


EXPECTED_CHECK = {
    "import-error": ["entry point import-error = 'pkit_import_error.plugin' fails to import: ModuleNotFoundError: "
                     "No module named 'a_module_that_does_not_exist'"],
    "hook-typo": ["pkit_hook_typo.plugin.perceiver_register_componets is marked @hookimpl but is not a known hook "
                  "(did you mean 'perceiver_register_components'?)"],
    "duplicate": ["position 'fourier' is registered by both perceiver-core"],
    "wrong-api": ["entry point 'wrong-api' was written for core API v99, but perceiver-core",
                  "offers API v1"],
    "loose-config": ["position 'kit.loose': config pkit_loose_config.configs.LooseConfig allows unknown keys "
                     "(model_config extra='ignore')", "subclass perceiver_core.config.ComponentConfig"],
}


def test_plugins_check_reports_each_broken_plugin_precisely(broken_site):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(broken_site), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "perceiver_core", "plugins", "check", "--json", *map(_dist, BROKEN)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 2, proc.stderr
    results = {r["distribution"]: r for r in json.loads(proc.stdout)["results"]}
    for name, fragments in EXPECTED_CHECK.items():
        problems = " | ".join(results[_dist(name)]["problems"])
        for fragment in fragments:
            assert fragment in problems, f"{name}: {problems}"
    # text output: one line per problem, under the distribution's header
    text = subprocess.run(cmd[:-len(BROKEN) - 1] + [_dist("hook-typo")], capture_output=True, text=True, env=env,
                          timeout=300)
    assert text.returncode == 2
    assert text.stdout.splitlines()[0] == "perceiver-kit-hook-typo 1.0: 1 problem(s)"
    assert text.stdout.splitlines()[1].startswith("  error: pkit_hook_typo.plugin.perceiver_register_componets")


def test_plugins_check_of_a_distribution_that_is_not_installed(perceiver_cli):
    code, out, _ = perceiver_cli("plugins", "check", "perceiver-imag")
    assert code == 2
    assert "distribution 'perceiver-imag' is not installed (did you mean 'perceiver-image'?)" in out


def test_plugins_check_passes_for_first_party_plugins(perceiver_cli):
    code, out, _ = perceiver_cli("plugins", "check", "perceiver-image", "perceiver-cpu", "--json")
    assert code == 0, out
    data = json.loads(out)
    assert data["ok"] and [r["problems"] for r in data["results"]] == [[], []]
    assert "preprocessor:image.pixels" in data["results"][0]["components"]
    assert data["results"][1]["backends"] == ["cpu"]
    code, out, _ = perceiver_cli("plugins", "check", "perceiver-core")  # the built-in plugin, checked alike
    assert code == 0 and out.startswith("perceiver-core ") and "encoder:perceiver" in out, out


def _suite(base, name: str, **attrs):
    return type(f"Suite_{name}", (base,), {"plugin": f"{_package(name)}.plugin", "component": BROKEN[name][4],
                                           "distribution": _dist(name), **attrs})()


EXPECTED_SUITE = {
    # name: (check to run, fragments of the failure message)
    "import-error": ("test_plugin_registers_component",
                     ["plugin module 'pkit_import_error.plugin' fails to import: ModuleNotFoundError"]),
    "hook-typo": ("test_hooks_pass_check_pending",
                  ["perceiver_register_componets is marked @hookimpl but is not a known hook (did you mean "
                   "'perceiver_register_components'?)"]),
    "duplicate": ("test_plugin_registers_component",
                  ["position 'fourier' is registered by both perceiver-core", "perceiver-kit-duplicate"]),
    "wrong-api": ("test_distribution_entry_points", ["was written for core API v99", "offers API v1"]),
    "loose-config": ("test_config_forbids_unknown_keys", ["allows unknown keys (model_config extra='ignore')"]),
}


@pytest.mark.parametrize("name", sorted(EXPECTED_SUITE))
def test_conformance_suite_fails_precisely_for_broken_plugin(name, broken_site, monkeypatch):
    monkeypatch.syspath_prepend(str(broken_site))
    check, fragments = EXPECTED_SUITE[name]
    suite = _suite(PositionConformance, name)
    with pytest.raises(Failed) as info:
        getattr(suite, check)()
    message = str(info.value)
    assert "\n" not in message.strip(), message
    for fragment in fragments:
        assert fragment in message, message


def test_hook_signature_and_missing_marker_are_named():
    class BadSignature:
        @staticmethod
        @hookspecs.hookimpl
        def perceiver_register_components(registry, device):
            pass

    class Undecorated:
        @staticmethod
        def perceiver_register_backends(registry):
            registry.add_backend("kit", factory="perceiver_cpu.backend:CpuBackend")

    suite = type("S", (BackendConformance,), {"plugin": BadSignature, "component": "kit"})()
    with pytest.raises(Failed) as info:
        suite.test_hooks_pass_check_pending()
    message = str(info.value)
    assert "BadSignature: invalid hook:" in message and "{'device'}" in message and "\n" not in message
    suite = type("S", (BackendConformance,), {"plugin": Undecorated, "component": "kit"})()
    with pytest.raises(Failed, match="Undecorated.perceiver_register_backends is not decorated with "
                                     "@perceiver_core.hookimpl, so it is never called"):
        suite.test_hooks_pass_check_pending()


# -- suites catch broken components, not only broken plugins ------------------------------------------------------
def test_position_suite_names_a_wrong_output_shape(plugin_manager):
    from perceiver_core.interfaces import PositionEncoding

    class WrongChannels(PositionEncoding):
        def __init__(self, config=None, context=None):
            super().__init__()

        def num_channels(self, index_dims):
            return 6

        def forward(self, byte_array):
            import torch

            return torch.zeros(1, byte_array.num_elements, 5)

    class Plugin:
        @staticmethod
        @hookspecs.hookimpl
        def perceiver_register_components(registry):
            registry.add("position", "kit.wrong", factory=WrongChannels,
                         config="perceiver_core.config.positions:NoPositionConfig")

    suite = type("S", (PositionConformance,), {"plugin": Plugin, "component": "kit.wrong"})()
    with pytest.raises(Failed, match=r"position features is \[1, 16, 5\], expected \[B or 1, M, num_channels\] = "
                                     r"\[2 or 1, 16, 6\]"):
        suite.test_output_honours_contract()
    with pytest.raises(Failed, match=r"registers no position named 'kit.wrongg' \(did you mean 'kit.wrong'\?\)"):
        type("S2", (PositionConformance,), {"plugin": Plugin, "component": "kit.wrongg"})().test_builds_on_cpu()


def test_dataset_suite_requires_picklable_datasets():
    from perceiver_core.interfaces import Dataset

    class Unpicklable(Dataset):
        splits = ("train",)

        def __init__(self, config, context=None):
            self.transform = lambda x: x  # a lambda: data workers cannot receive it

        def info(self):
            return {}

        def examples(self, split):
            return [{"x": 1}]

    class Plugin:
        @staticmethod
        @hookspecs.hookimpl
        def perceiver_register_components(registry):
            registry.add("dataset", "kit.lambda", factory=Unpicklable, config="perceiver_core.config:DataConfig")

    suite = type("S", (DatasetConformance,), {"plugin": Plugin, "component": "kit.lambda"})()
    with pytest.raises(Failed, match="dataset 'kit.lambda' does not pickle .*it must run in data workers"):
        suite.test_pickles_for_data_workers()


def _toy_preprocessor(config, context):
    """{"x": [2 floats]} -> 2 elements of 3 channels (a Linear); dataset_info sets `std` and `unused_parameter`."""
    import torch
    from torch import nn

    from perceiver_core import ByteArray
    from perceiver_core.interfaces import Preprocessor

    global _ToyPreprocessor

    class _ToyPreprocessor(Preprocessor):  # module-level name: prepare must pickle
        def __init__(self, info):
            super().__init__()
            self.index_shape, self.output_channels, self.std = (2,), 3, info.get("std", 1.0)
            self.embed = nn.Linear(1, 3)
            if info.get("unused_parameter"):
                self.unused = nn.Parameter(torch.zeros(3))  # never read by forward

        def prepare(self, example):
            return {"x": (torch.tensor(example["x"], dtype=torch.float32) - 1.0) / self.std}  # [2]

        def forward(self, batch):
            return ByteArray(self.embed(batch["x"][..., None]), self.index_shape)  # [B, 2, 3]

    _ToyPreprocessor.__qualname__ = "_ToyPreprocessor"
    return _ToyPreprocessor(context.dataset)


class _ToyPlugin:
    @staticmethod
    @hookspecs.hookimpl
    def perceiver_register_components(registry):
        registry.add("preprocessor", "kit.toy", factory=_toy_preprocessor,
                     config="perceiver_core.config.positions:NoPositionConfig")


def _toy_suite(examples=({"x": [0.5, 2.0]},), **info):
    return type("S", (PreprocessorConformance,), {"plugin": _ToyPlugin, "component": "kit.toy",
                                                  "examples": list(examples), "dataset_info": info})()


def test_preprocessor_suite_names_a_parameter_without_gradient():
    suite = _toy_suite(unused_parameter=True)
    for check in ("test_output_honours_contract", "test_seeded_build_and_run_are_deterministic",
                  "test_state_survives_safetensors_round_trip"):
        getattr(suite, check)()  # only the gradient check sees the unused parameter
    with pytest.raises(Failed) as info:
        suite.test_gradients_reach_every_parameter()
    assert str(info.value) == ("preprocessor 'kit.toy': parameters ['unused'] receive no gradient from the output; "
                               "unused parameters break DDP (remove them or use them)")
    _toy_suite().test_gradients_reach_every_parameter()


def test_preprocessor_suite_reports_nan_not_nondeterminism():
    suite = _toy_suite(examples=[{"x": [1.0, 3.0]}], std=0.0)  # 0/0 and 2/0: NaN and inf
    expected = "prepare(examples[0])['x']: produced NaN or infinite values (2 of 2)"
    for check in ("test_prepare_output_collates", "test_prepare_and_augment_are_deterministic",
                  "test_prepare_pickles_for_data_workers"):
        with pytest.raises(Failed) as info:
            getattr(suite, check)()
        message = str(info.value)
        assert message.startswith(expected) and "differ" not in message and "\n" not in message, (check, message)
    with pytest.raises(Failed, match=r"forward\(batch\) made an invalid ByteArray: ByteArray.data contains 12 NaN"):
        suite.test_output_honours_contract()


def test_nan_output_is_named_by_the_determinism_check():
    import torch

    from perceiver_core.testing.base import assert_same

    a = torch.tensor([1.0, float("nan")])
    with pytest.raises(Failed, match=r"^out: produced NaN or infinite values \(1 of 2\)"):
        assert_same(a, a.clone(), "out")
    with pytest.raises(Failed, match="values differ between two runs"):
        assert_same(torch.zeros(2), torch.ones(2), "out")
    assert_same(torch.tensor([float("-inf")]), torch.tensor([float("-inf")]), "mask")  # equal infinities pass


def test_suites_are_not_collected_themselves():
    for suite in (PreprocessorConformance, PositionConformance, EncoderConformance, DecoderConformance,
                  TaskConformance, DatasetConformance, BackendConformance):
        assert not suite.__name__.startswith("Test")
        assert all(not inspect.signature(getattr(suite, n)).parameters.keys() - {"self"}
                   for n in dir(suite) if n.startswith("test_")), f"{suite.__name__} checks must take no fixtures"


# -- fixtures of the pytest plugin ---------------------------------------------------------------------------------
def test_fixtures_register_a_plugin_in_isolation(plugin_manager, register_plugin, build_context):
    class Plugin:
        @staticmethod
        @hookspecs.hookimpl
        def perceiver_register_components(registry):
            registry.add("position", "kit.none", factory="perceiver_core.model.positions.none:NoPositionEncoding",
                         config="perceiver_core.config.positions:NoPositionConfig")

    report = register_plugin(Plugin, name="kit")
    assert report.status == "ok" and report.components == ["position:kit.none"]
    assert plugin_manager.registry.get("position", "kit.none").distribution == "test-plugin"
    assert "image.pixels" not in plugin_manager.registry.names("preprocessor")  # no autoload
    assert build_context(index_shape=[2, 3]).index_shape == (2, 3)


def test_kit_imports_no_torch():
    code = ("import sys, perceiver_core.testing, perceiver_core.testing.pytest_plugin, perceiver_core.plugins.check, "
            "perceiver_core.plugins.scaffold; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "False"


# -- the guide -------------------------------------------------------------------------------------------------------
def _hookspecs() -> dict[str, str]:
    specs = {}
    for name, fn in inspect.getmembers(hookspecs, inspect.isfunction):
        if hasattr(fn, hookspecs.PROJECT + "_spec"):
            specs[name] = f"{name}({', '.join(inspect.signature(fn).parameters)})"
    return specs


def test_guide_documents_every_hook_with_its_signature():
    guide = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    specs = _hookspecs()
    assert specs, "hookspecs.py defines no hooks?"
    for name, signature in specs.items():
        assert f"### `{signature}`" in guide, f"docs/plugins.md lacks a section '### `{signature}`'"
    mentioned = set(re.findall(r"\b(perceiver_register_[a-z_]+)\(", guide))
    assert mentioned <= set(specs), f"docs/plugins.md names hooks that do not exist: {mentioned - set(specs)}"


def test_guide_names_every_suite_and_fixture():
    import perceiver_core.testing as testing
    from perceiver_core.testing import pytest_plugin

    guide = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    for suite in testing.__all__:
        assert f"`{suite}`" in guide, suite
    fixtures = [n for n, f in vars(pytest_plugin).items() if hasattr(f, "_fixture_function_marker")
                or type(f).__name__ == "FixtureFunctionDefinition"]
    assert fixtures, "no fixtures found in the pytest plugin"
    for name in fixtures:
        assert f"`{name}" in guide, name


def test_guide_lists_every_check_and_setting_of_the_suites():
    """Section 6 of the guide names every check a suite runs and every class attribute an author may set."""
    import perceiver_core.testing as testing

    guide = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    section = guide[guide.index("## 6. Test with the conformance suites"):guide.index("## 7. ")]
    for suite in map(lambda n: getattr(testing, n), testing.__all__):
        checks = [n for n in dir(suite) if n.startswith("test_")]
        assert checks, suite
        for check in checks:
            assert f"`{check}`" in section, f"docs/plugins.md section 6 does not list {suite.__name__}.{check}"
        settings = {n for cls in suite.__mro__ for n in inspect.get_annotations(cls)}
        assert {"plugin", "component", "seed"} <= settings, settings
        for name in settings:
            assert f"`{name}`" in section, f"docs/plugins.md section 6 does not document {suite.__name__}.{name}"
