"""Shared machinery of the conformance suites: loading the plugin under test, its config, and comparisons.

A suite is a plain class whose `test_*` methods take no fixtures, so pytest collects them from any subclass named
`Test...` and a test can also call one directly. Failures go through `pytest.fail` with one line saying what is
wrong and how to fix it.
"""

from __future__ import annotations

import importlib
import math
from typing import Any, ClassVar, Mapping

import pytest


def fail(message: str):
    """Fail the current conformance check with one precise line (no traceback noise)."""
    # `from None`: a failure reported from an `except` block shows only this line, not the chained traceback
    raise pytest.fail.Exception(message, pytrace=False) from None


def assert_same(a: Any, b: Any, where: str) -> None:
    """Exact equality of nested outputs (tensors, arrays, mappings, sequences, numbers); fails naming the path."""
    import numpy as np
    import torch

    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)):
            fail(f"{where}: a tensor on one run, {type(b).__name__ if isinstance(a, torch.Tensor) else type(a).__name__} "
                 "on the other")
        if a.shape != b.shape or a.dtype != b.dtype:
            fail(f"{where}: {list(a.shape)} {a.dtype} on one run, {list(b.shape)} {b.dtype} on the other")
        if not torch.equal(a, b):
            check_finite(a, where)  # NaN never equals NaN: name the NaN rather than "values differ"
            check_finite(b, where)
            diff = (a.double() - b.double()).abs().max().item() if a.is_floating_point() else "?"
            fail(f"{where}: values differ between two runs (max abs difference {diff})")
    elif isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        if not np.array_equal(np.asarray(a), np.asarray(b)):
            check_finite(a, where)
            check_finite(b, where)
            fail(f"{where}: arrays differ between two runs")
    elif isinstance(a, Mapping) and isinstance(b, Mapping):
        if set(a) != set(b):
            fail(f"{where}: keys {sorted(a)} on one run, {sorted(b)} on the other")
        for k in a:
            assert_same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        if len(a) != len(b):
            fail(f"{where}: {len(a)} items on one run, {len(b)} on the other")
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    elif hasattr(a, "__dataclass_fields__") and type(a) is type(b):
        for name in a.__dataclass_fields__:
            assert_same(getattr(a, name), getattr(b, name), f"{where}.{name}")
    elif isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return
    elif a != b:
        fail(f"{where}: {a!r} on one run, {b!r} on the other")


def check_finite(value: Any, where: str) -> None:
    """Fail with one line when a float tensor or array holds NaN or infinite values (numbers and other types pass)."""
    import numpy as np
    import torch

    if isinstance(value, torch.Tensor):
        if not (value.is_floating_point() or value.is_complex()) or value.device.type == "meta":
            return
        bad, total = int((~torch.isfinite(value.detach())).sum()), value.numel()
    elif isinstance(value, np.ndarray) and value.dtype.kind in "fc":
        bad, total = int((~np.isfinite(value)).sum()), value.size
    else:
        return
    if bad:
        fail(f"{where}: produced NaN or infinite values ({bad} of {total}); keep every value finite (mark missing "
             "values with ByteArray.mask, guard divisions such as a zero standard deviation)")


def pickle_round_trip(obj: Any, what: str) -> Any:
    """Send the object through the serializer multiprocessing uses to hand work to worker processes, in
    memory, failing with the reason. (Nothing is ever read from files this way: checkpoints are safetensors.)"""
    from multiprocessing.reduction import ForkingPickler

    try:
        return ForkingPickler.loads(bytes(ForkingPickler.dumps(obj)))
    except Exception as exc:  # noqa: BLE001
        fail(f"{what} does not pickle ({type(exc).__name__}: {exc}); it must run in data workers: keep only "
             "picklable state (no lambdas, open files, generators or locks)")


def safetensors_round_trip(state: Mapping[str, Any], what: str) -> dict[str, Any]:
    """Write a state dict to safetensors bytes and read it back, exactly as checkpoints do (tied tensors kept)."""
    import torch
    from safetensors.torch import load, save

    from ..runtime.checkpoint import _dedupe

    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad:
        fail(f"{what}: state_dict entries {bad} are not tensors; safetensors checkpoints hold tensors only "
             "(move extra state to buffers or the config)")
    unique, aliases = _dedupe(state)
    try:
        loaded = load(save({k: v.detach().contiguous().cpu() for k, v in unique.items()}))
    except Exception as exc:  # noqa: BLE001
        fail(f"{what}: its state does not survive a safetensors round trip: {type(exc).__name__}: {exc}")
    for alias, target in aliases.items():
        loaded[alias] = loaded[target]
    return loaded


def _version(distribution: str | None) -> str:
    """The installed version of a distribution, or "checkout" (the plugin is tested from its source tree)."""
    from importlib import metadata

    try:
        return metadata.version(distribution) if distribution else "checkout"
    except metadata.PackageNotFoundError:
        return "checkout"


class PluginChecks:
    """What every suite checks about the plugin object: it imports, its hooks are valid, it registers the
    component without clashing with the built-in ones, and (when `distribution` is set) its entry points."""

    #: the kind of component ("preprocessor", ..., "backend"), set by each suite
    kind: ClassVar[str] = ""
    #: the plugin's hook module: the object itself or its import path ("my_plugin.plugin")
    plugin: ClassVar[Any] = None
    #: the registered name of the component under test (e.g. "image.pixels")
    component: ClassVar[str] = ""
    #: the installed distribution (pip name); when set, its entry points and core API version are checked too
    distribution: ClassVar[str | None] = None
    #: seed of every build and sample input
    seed: ClassVar[int] = 0

    # -- helpers -------------------------------------------------------------------------------------------
    def plugin_object(self) -> Any:
        if self.plugin is None:
            fail(f"{type(self).__name__}.plugin is not set: name the plugin's hook module, e.g. plugin = "
                 "'my_package.plugin'")
        if isinstance(self.plugin, str):
            try:
                return importlib.import_module(self.plugin)
            except Exception as exc:  # noqa: BLE001
                fail(f"plugin module {self.plugin!r} fails to import: {type(exc).__name__}: {exc}")
        return self.plugin

    def plugin_manager(self):
        """An isolated plugin manager (no autoload, strict) holding the built-ins and the plugin under test."""
        from ..errors import PluginError
        from ..plugins.manager import PluginManager

        plugin = self.plugin_object()
        pm = PluginManager(autoload=False, strict=True)
        if pm.pm.is_registered(plugin):  # the built-in plugin is already there
            return pm
        name = getattr(plugin, "__name__", type(plugin).__name__)
        try:
            pm.register(plugin, name=name, distribution=self.distribution or "source",
                        version=_version(self.distribution))
        except PluginError as exc:
            fail(str(exc))
        return pm

    def registry_entry(self):
        registry = self.plugin_manager().registry
        if self.kind == "backend":
            entry = registry.backends.get(self.component)
            names = sorted(registry.backends)
        else:
            entry = registry.components.get((self.kind, self.component))
            names = registry.names(self.kind)
        if entry is None:
            from ..plugins.components import suggest

            fail(f"the plugin registers no {self.kind} named {self.component!r}{suggest(self.component, names)}; "
                 f"registered {self.kind}s: {', '.join(names) or 'none'}")
        return entry

    # -- checks --------------------------------------------------------------------------------------------
    def test_plugin_registers_component(self):
        entry = self.registry_entry()
        assert entry.name == self.component

    def test_hooks_pass_check_pending(self):
        from ..plugins.check import hook_problems, import_problems

        plugin = self.plugin_object()
        problems = hook_problems(plugin)
        if isinstance(self.plugin, str):  # the runtime's import guard: no global torch state changed at import
            problems += import_problems(self.plugin)[0]
        if problems:
            fail("; ".join(problems))
        import pluggy

        try:
            self.plugin_manager().pm.check_pending()
        except pluggy.PluginValidationError as exc:
            fail(" ".join(str(exc).split()))

    def test_distribution_entry_points(self):
        if not self.distribution:
            pytest.skip("set `distribution` to also check the installed entry points and core API version")
        from importlib import metadata

        from ..plugins.check import check_distribution

        try:
            metadata.distribution(self.distribution)
        except metadata.PackageNotFoundError:
            pytest.skip(f"{self.distribution} is not installed, so it has no entry points yet (pip install it)")
        result = check_distribution(self.distribution, check_torch_imports=False)
        if result.problems:
            fail(f"{self.distribution}: " + "; ".join(result.problems))


class ConfigChecks:
    """Checks of the config model: unknown keys are refused, a JSON schema exports, no torch on import."""

    #: a valid config table for the component (what follows `use = "..."` in a registry file)
    config: ClassVar[Mapping[str, Any]] = {}

    def config_model(self) -> type:
        entry = self.registry_entry()
        try:
            return entry.config_model()
        except Exception as exc:  # noqa: BLE001
            fail(f"{self.kind} {self.component!r}: config {entry.config!r} fails to import: "
                 f"{type(exc).__name__}: {exc}")

    def make_config(self, **overrides):
        from pydantic import ValidationError

        model = self.config_model()
        try:
            return model.model_validate({**self.config, **overrides})
        except ValidationError as exc:
            fail(f"{type(self).__name__}.config {dict(self.config)!r} is not a valid {model.__qualname__}: "
                 f"{exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}")

    def test_config_forbids_unknown_keys(self):
        from pydantic import ValidationError

        from ..plugins.check import config_model_problems

        entry = self.registry_entry()
        problems, _ = config_model_problems(entry.config, f"{self.kind} {self.component!r}")
        if problems:
            fail("; ".join(problems))
        with pytest.raises(ValidationError):
            self.config_model().model_validate({**self.config, "surely_not_a_field": 1})

    def test_config_exports_json_schema(self):
        import json

        schema = self.config_model().model_json_schema()
        json.dumps(schema)
        assert schema.get("type") == "object", f"the JSON schema of {self.component!r} is not an object schema"
        self.make_config()  # the sample config validates

    def test_config_module_imports_no_torch(self):
        from ..plugins.check import modules_importing_torch

        ref = self.registry_entry().config
        if not isinstance(ref, str):
            pytest.skip("the config is registered as an object, not a 'module:attr' reference")
        module = ref.partition(":")[0]
        if modules_importing_torch([module])[module]:
            fail(f"{self.kind} {self.component!r}: importing its config module {module!r} imports torch; config "
                 "modules must import only pydantic so listing and validating stay light")


class ModuleChecks:
    """Checks of an `nn.Module` component: builds on the meta device, seeded builds and runs are deterministic,
    its state survives a safetensors round trip. Suites provide `build(context=None)`, `run(module)`."""

    def build_on(self, device: str | None = None, seed: int | None = None):
        import torch

        torch.manual_seed(self.seed if seed is None else seed)
        if device is None:
            return self.build()
        with torch.device(device):
            return self.build()

    def test_builds_on_meta_device(self):
        cpu = self.build_on()
        try:
            meta = self.build_on("meta")
        except Exception as exc:  # noqa: BLE001
            fail(f"{self.kind} {self.component!r} does not build on the meta device ({type(exc).__name__}: {exc}); "
                 "the factory must create tensors without reading their values or forcing a device")
        for name, t in list(meta.named_parameters()) + list(meta.named_buffers()):
            if t.device.type != "meta":
                fail(f"{self.kind} {self.component!r}: {name} was created on {t.device} while building under "
                     "torch.device('meta'); create parameters and buffers without an explicit device")
        shapes = {n: tuple(t.shape) for n, t in cpu.state_dict().items()}
        meta_shapes = {n: tuple(t.shape) for n, t in meta.state_dict().items()}
        if shapes != meta_shapes:
            fail(f"{self.kind} {self.component!r}: the state built on the meta device {meta_shapes} differs from "
                 f"the one built on the CPU {shapes}")

    def test_seeded_build_and_run_are_deterministic(self):
        import torch

        a, b = self.build_on(), self.build_on()
        assert_same(dict(a.state_dict()), dict(b.state_dict()), f"{self.component} state_dict")
        a.eval()
        with torch.no_grad():
            assert_same(self.run(a), self.run(a), f"{self.component} output")

    def test_state_survives_safetensors_round_trip(self):
        import torch

        module = self.build_on().eval()
        loaded = safetensors_round_trip(module.state_dict(), f"{self.kind} {self.component!r}")
        fresh = self.build_on(seed=self.seed + 1).eval()
        try:
            fresh.load_state_dict(loaded, strict=True)
        except Exception as exc:  # noqa: BLE001
            fail(f"{self.kind} {self.component!r}: its safetensors state does not load back: {exc}")
        with torch.no_grad():
            assert_same(self.run(module), self.run(fresh), f"{self.component} output after a safetensors round trip")
