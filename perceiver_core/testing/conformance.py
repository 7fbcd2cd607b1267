"""One conformance suite per component kind, for plugin authors to subclass (pandas-extension-array style).

    from perceiver_core.testing import PreprocessorConformance

    class TestWavePreprocessor(PreprocessorConformance):
        plugin = "perceiver_wave.plugin"        # the hook module
        component = "wave.frames"               # the registered name
        config = {"frame": 4}                   # a valid config table
        dataset_info = {"sequence_length": 64}  # what the dataset's info() reports
        examples = [{"signal": [0.0] * 64}]     # raw examples, as the dataset yields them

Every suite checks that the plugin's hooks are valid and register the component (pluggy's `check_pending`);
component suites also check the config model (unknown keys refused, JSON schema, no torch on import). Module
suites build the component on the CPU and on the meta device, check the output contract of `interfaces.py` for
the declared input (finite values), that a seeded build and run are deterministic, that the state survives a
safetensors round trip and that gradients reach every parameter (unused parameters break DDP);
`Preprocessor.prepare` and datasets must pickle, since they run in data workers. Override `build`, `context` or
the sample-input helpers when a component needs more. docs/plugins.md section 6 lists every setting and check.
"""

from __future__ import annotations

import json
import math
from typing import Any, ClassVar, Mapping, Sequence

import pytest
import torch

from ..byte_array import ByteArray
from ..errors import ByteArrayError
from ..interfaces import Backend, BuildContext, Dataset, Decoder, Encoded, Encoder, PositionEncoding, Preprocessor, Task
from .base import ConfigChecks, ModuleChecks, PluginChecks, assert_same, check_finite, fail, pickle_round_trip

__all__ = ["PreprocessorConformance", "PositionConformance", "EncoderConformance", "DecoderConformance",
           "TaskConformance", "DatasetConformance", "BackendConformance"]


class _ComponentSuite(PluginChecks, ConfigChecks):
    #: what the dataset's info() reports (BuildContext.dataset)
    dataset_info: ClassVar[Mapping[str, Any]] = {}
    #: the interface the built object must implement
    interface: ClassVar[type] = object

    def context(self) -> BuildContext:
        return BuildContext(dataset=dict(self.dataset_info))

    def build(self, context: BuildContext | None = None):
        """factory(config, context) of the registered component, checked against its interface."""
        entry = self.registry_entry()
        try:
            factory = entry.factory_fn()
        except Exception as exc:  # noqa: BLE001
            fail(f"{self.kind} {self.component!r}: factory {entry.factory!r} fails to import: "
                 f"{type(exc).__name__}: {exc}")
        obj = factory(self.make_config(), context if context is not None else self.context())
        if not isinstance(obj, self.interface):
            fail(f"{self.kind} {self.component!r}: the factory returned {type(obj).__name__}, which is not a "
                 f"perceiver_core.{self.interface.__name__}")
        return obj

    def test_builds_on_cpu(self):
        obj = self.build()
        if isinstance(obj, torch.nn.Module):
            for name, t in list(obj.named_parameters()) + list(obj.named_buffers()):
                if t.device.type != "cpu":
                    fail(f"{self.kind} {self.component!r}: {name} is on {t.device} after building on the CPU; "
                         "the pipeline moves the model to the backend's device, the factory must not")

    def generator(self) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed)


def _check_finite_float(t: Any, what: str) -> None:
    if not isinstance(t, torch.Tensor):
        fail(f"{what} must be a torch.Tensor, got {type(t).__name__}")
    if not t.is_floating_point():
        fail(f"{what} must be floating point, got {t.dtype}")
    check_finite(t, what)


def _check_gradients(module: torch.nn.Module, outputs: Sequence[Any], what: str) -> None:
    """Backpropagate from the outputs; every trainable parameter must receive a gradient (DDP requires it)."""
    params = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
    if not params:
        return  # nothing to train, nothing to check
    module.zero_grad(set_to_none=True)
    tensors = [t for t in outputs if isinstance(t, torch.Tensor) and t.requires_grad]
    if tensors:
        sum(t.float().square().mean() for t in tensors).backward()
    unused = [n for n, p in params if p.grad is None]
    if unused:
        fail(f"{what}: parameters {unused} receive no gradient from the output; unused parameters break DDP "
             "(remove them or use them)")


class PreprocessorConformance(_ComponentSuite, ModuleChecks):
    """Raw examples -> `prepare` (data workers) -> collate -> `forward` -> ByteArray [B, M, C]."""

    kind = "preprocessor"
    interface = Preprocessor
    #: raw examples as the dataset yields them (repeated to fill a batch)
    examples: ClassVar[Sequence[Mapping[str, Any]]] = ()
    #: B of the sample batch: max(batch_size, len(examples))
    batch_size: ClassVar[int] = 2

    def sample_examples(self) -> list[Mapping[str, Any]]:
        if not self.examples:
            fail(f"{type(self).__name__}.examples is empty: give at least one raw example, e.g. examples = "
                 "[dataset.examples('train')[0]]")
        return [self.examples[i % len(self.examples)] for i in range(max(self.batch_size, len(self.examples)))]

    def batch(self, pre: Preprocessor) -> dict[str, Any]:
        from ..data.loader import collate

        return collate([pre.prepare(e) for e in self.sample_examples()])

    def run(self, pre: Preprocessor) -> ByteArray:
        batch = self.batch(pre)
        try:
            return pre(batch)
        except ByteArrayError as exc:
            fail(f"preprocessor {self.component!r}: forward(batch) made an invalid ByteArray: {exc}")

    def test_prepare_output_collates(self):
        pre = self.build()
        for i, example in enumerate(self.sample_examples()[:2]):
            out = pre.prepare(example)
            if not isinstance(out, Mapping) or not out:
                fail(f"prepare(examples[{i}]) returned {type(out).__name__}; it must return a non-empty dict")
            for key, value in out.items():
                if isinstance(value, torch.Tensor) and (value.device.type != "cpu" or value.requires_grad):
                    fail(f"prepare(...)[{key!r}] is on {value.device} / requires_grad={value.requires_grad}; "
                         "prepare runs in data workers and must return plain CPU tensors")
            self.check_prepared(out, i)
        self.batch(pre)

    def check_prepared(self, out: Mapping[str, Any], i: int) -> Mapping[str, Any]:
        """prepare's output holds finite values only (checked before comparing runs: NaN never equals NaN)."""
        for key, value in out.items():
            check_finite(value, f"prepare(examples[{i}])[{key!r}]")
        return out

    def test_output_honours_contract(self):
        pre = self.build()
        if not (isinstance(pre.output_channels, int) and pre.output_channels > 0):
            fail(f"output_channels must be a positive int, got {pre.output_channels!r}")
        index_shape = tuple(pre.index_shape)
        out = self.run(pre)
        if not isinstance(out, ByteArray):
            fail(f"forward(batch) returned {type(out).__name__}; it must return a perceiver_core.ByteArray")
        expected = [len(self.sample_examples()), math.prod(index_shape), pre.output_channels]
        if list(out.data.shape) != expected:
            fail(f"ByteArray.data is {list(out.data.shape)}, expected [B, prod(index_shape), output_channels] = "
                 f"{expected}")
        if out.index_shape != index_shape:
            fail(f"ByteArray.index_shape {out.index_shape} differs from the preprocessor's index_shape {index_shape}")
        _check_finite_float(out.data, "ByteArray.data")

    def test_prepare_pickles_for_data_workers(self):
        pre = self.build()
        prepare = pickle_round_trip(pre.prepare, f"{self.component}.prepare")
        for i, example in enumerate(self.sample_examples()[:2]):
            expected = self.check_prepared(pre.prepare(example), i)
            assert_same(expected, prepare(example), f"prepare(examples[{i}]) after pickling")

    def test_prepare_and_augment_are_deterministic(self):
        pre = self.build()
        example = self.sample_examples()[0]
        assert_same(self.check_prepared(pre.prepare(example), 0), pre.prepare(example), "prepare(examples[0])")
        a = pre.augment(example, torch.Generator().manual_seed(7))
        b = pre.augment(example, torch.Generator().manual_seed(7))
        assert_same(a, b, "augment(examples[0], generator seeded 7)")
        pre.prepare(a)

    def test_gradients_reach_every_parameter(self):
        pre = self.build().train()
        out = self.run(pre)
        _check_gradients(pre, [out.data, out.positions], f"preprocessor {self.component!r}")


class _ArraySuite(_ComponentSuite, ModuleChecks):
    #: index shape of the sample input (M = prod(index_shape))
    index_shape: ClassVar[tuple[int, ...]] = (4, 4)
    #: channels of the sample input's data
    input_channels: ClassVar[int] = 8
    batch_size: ClassVar[int] = 2

    def byte_array(self, positions_dims: int | None = None) -> ByteArray:
        g = self.generator()
        m = math.prod(self.index_shape)
        data = torch.randn(self.batch_size, m, self.input_channels, generator=g)  # [B, M, C]
        positions = None
        if positions_dims:
            positions = torch.rand(self.batch_size, m, positions_dims, generator=g) * 2 - 1  # [B, M, d]
        return ByteArray(data, self.index_shape, positions=positions)

    def context(self) -> BuildContext:
        return BuildContext(dataset=dict(self.dataset_info), index_shape=tuple(self.index_shape),
                            input_channels=self.input_channels)


class PositionConformance(_ArraySuite):
    """ByteArray [B, M, C] -> position features [B|1, M, P] with P = num_channels(len(index_shape))."""

    kind = "position"
    interface = PositionEncoding
    #: also feed explicit positions [B, M, d] (point clouds, permuted pixels) with this d; None: grids only
    explicit_positions_dims: ClassVar[int | None] = None

    def run(self, module: PositionEncoding, positions_dims: int | None = None):
        return module(self.byte_array(positions_dims))

    def _check(self, module: PositionEncoding, out: Any, what: str) -> None:
        p = module.num_channels(len(self.index_shape))
        if out is None:
            if p != 0:
                fail(f"{what}: forward returned None but num_channels({len(self.index_shape)}) is {p}")
            return
        _check_finite_float(out, what)
        m = math.prod(self.index_shape)
        if out.dim() != 3 or out.shape[0] not in (1, self.batch_size) or tuple(out.shape[1:]) != (m, p):
            fail(f"{what} is {list(out.shape)}, expected [B or 1, M, num_channels] = [{self.batch_size} or 1, {m}, {p}]")

    def test_output_honours_contract(self):
        module = self.build()
        self._check(module, self.run(module), "position features")

    def test_gradients_reach_every_parameter(self):
        module = self.build().train()
        _check_gradients(module, [self.run(module)], f"position {self.component!r}")

    def test_explicit_positions(self):
        if not self.explicit_positions_dims:
            pytest.skip("set explicit_positions_dims to check inputs with explicit positions")
        module = self.build()
        self._check(module, self.run(module, self.explicit_positions_dims), "features of explicit positions")


class EncoderConformance(_ArraySuite):
    """ByteArray [B, M, C] -> Encoded with latents [B, N, D]; the factory sets context.latent_channels/num_latents."""

    kind = "encoder"
    interface = Encoder
    #: check that masked (padding) input elements do not change the latents
    supports_mask: ClassVar[bool] = True

    def run(self, module: Encoder):
        return module(self.byte_array())

    def test_output_honours_contract(self):
        context = self.context()
        module = self.build(context)
        if context.latent_channels is None or context.num_latents is None:
            fail("the encoder's factory must set context.latent_channels and context.num_latents (decoders need them)")
        out = self.run(module)
        if not isinstance(out, Encoded):
            fail(f"forward returned {type(out).__name__}; it must return perceiver_core.Encoded")
        expected = [self.batch_size, module.num_latents, module.latent_channels]
        if list(out.latents.shape) != expected:
            fail(f"Encoded.latents is {list(out.latents.shape)}, expected [B, num_latents, latent_channels] = {expected}")
        if (context.num_latents, context.latent_channels) != (module.num_latents, module.latent_channels):
            fail("context.num_latents/latent_channels disagree with the encoder's attributes")
        _check_finite_float(out.latents, "Encoded.latents")
        if out.latents.dtype != torch.float32:
            fail(f"Encoded.latents is {out.latents.dtype} for float32 input; keep the input's dtype (autocast "
                 "chooses lower precision, not the module)")

    def test_gradients_reach_every_parameter(self):
        module = self.build().train()
        _check_gradients(module, [self.run(module).latents], f"encoder {self.component!r}")

    def test_mask_hides_padding(self):
        if not self.supports_mask:
            pytest.skip("supports_mask is False")
        module = self.build().eval()
        ba = self.byte_array()
        mask = torch.ones(ba.batch_size, ba.num_elements, dtype=torch.bool)
        mask[:, -1] = False  # the last element of every example is padding
        changed = ba.data.clone()
        changed[:, -1] += 100.0
        with torch.no_grad():
            a = module(ByteArray(ba.data, ba.index_shape, mask=mask)).latents
            b = module(ByteArray(changed, ba.index_shape, mask=mask)).latents
        if not torch.allclose(a, b, atol=1e-5, rtol=1e-4):
            fail("changing a masked (padding) input element changed the latents; the encoder must ignore "
                 "elements where ByteArray.mask is False")


class DecoderConformance(_ArraySuite):
    """Encoded latents [B, N, D] -> outputs [B, O, K] with K = context.num_outputs."""

    kind = "decoder"
    interface = Decoder
    latent_channels: ClassVar[int] = 16
    num_latents: ClassVar[int] = 8
    num_outputs: ClassVar[int] = 5
    #: O, when the decoder's number of output queries is known (None: any)
    expected_queries: ClassVar[int | None] = None

    def context(self) -> BuildContext:
        ctx = super().context()
        ctx.latent_channels, ctx.num_latents, ctx.num_outputs = self.latent_channels, self.num_latents, self.num_outputs
        return ctx

    def run(self, module: Decoder):
        ba = self.byte_array()
        latents = torch.randn(self.batch_size, self.num_latents, self.latent_channels, generator=self.generator())
        return module(Encoded(latents=latents, inputs=ba), ba)  # [B, O, K]

    def test_output_honours_contract(self):
        out = self.run(self.build())
        _check_finite_float(out, "decoder output")
        if out.dim() != 3 or out.shape[0] != self.batch_size or out.shape[2] != self.num_outputs:
            fail(f"decoder output is {list(out.shape)}, expected [B, O, K] with B={self.batch_size}, "
                 f"K=num_outputs={self.num_outputs}")
        if out.dtype != torch.float32:
            fail(f"decoder output is {out.dtype} for float32 latents; keep the input's dtype")
        if self.expected_queries is not None and out.shape[1] != self.expected_queries:
            fail(f"decoder output has O={out.shape[1]} queries, expected {self.expected_queries}")

    def test_gradients_reach_every_parameter(self):
        module = self.build().train()
        _check_gradients(module, [self.run(module)], f"decoder {self.component!r}")


class TaskConformance(_ComponentSuite, ModuleChecks):
    """outputs [B, O, K] + batch -> scalar loss, (sum, count) metrics, one prediction per example."""

    kind = "task"
    interface = Task
    #: B of the sample outputs and targets
    batch_size: ClassVar[int] = 4
    #: O of the sample outputs
    num_queries: ClassVar[int] = 1

    def make_batch(self, task: Task) -> dict[str, torch.Tensor]:
        """Targets for the sample outputs: integer labels in [0, K) for keys named like labels; override otherwise."""
        g, batch = self.generator(), {}
        for key in task.target_keys:
            if "label" not in key:
                fail(f"{type(self).__name__}: override make_batch(task) to give targets for {key!r}")
            batch[key] = torch.randint(0, task.num_outputs, (self.batch_size,), generator=g)
        return batch

    def outputs(self, task: Task, requires_grad: bool = False) -> torch.Tensor:
        shape = (self.batch_size, self.num_queries, task.num_outputs)
        return torch.randn(*shape, generator=self.generator()).requires_grad_(requires_grad)  # [B, O, K]

    def run(self, task: Task):
        out, batch = self.outputs(task), self.make_batch(task)
        return task.loss(out, batch), task.metrics(out, batch), task.postprocess(out, batch)

    def test_output_honours_contract(self):
        context = self.context()
        task = self.build(context)
        if context.num_outputs != task.num_outputs:
            fail(f"the task's factory must set context.num_outputs (= task.num_outputs {task.num_outputs}), "
                 f"got {context.num_outputs}")
        out, batch = self.outputs(task, requires_grad=True), self.make_batch(task)
        loss = task.loss(out, batch)
        _check_finite_float(loss, "loss")
        if loss.dim() != 0:
            fail(f"loss must be a scalar, got shape {list(loss.shape)}")
        loss.backward()
        if out.grad is None:
            fail("the loss does not depend on the outputs (no gradient reaches them)")
        metrics = task.metrics(out.detach(), batch)
        for name, value in metrics.items():
            if not (isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, (int, float)) for v in value)
                    and value[1] > 0):
                fail(f"metrics()[{name!r}] is {value!r}; metrics are (sum, count) pairs of Python numbers, count > 0")
        predictions = task.postprocess(out.detach(), batch)
        if not isinstance(predictions, list) or len(predictions) != self.batch_size:
            fail(f"postprocess must return a list of {self.batch_size} predictions, got {type(predictions).__name__}")
        import tempfile
        from pathlib import Path

        with tempfile.TemporaryDirectory() as folder:  # what `perceiver predict` prints, after writing any files
            printed = [task.save_prediction(p, Path(folder), f"example{i}") for i, p in enumerate(predictions)]
            try:
                json.dumps(printed)
            except TypeError as exc:
                fail(f"predictions must be JSON-serialisable (the CLI prints them), or dense predictions written by "
                     f"save_prediction, which returns a JSON-serialisable summary: {exc}")

    def test_gradients_reach_every_parameter(self):
        task = self.build().train()
        loss = task.loss(self.outputs(task, requires_grad=True), self.make_batch(task))
        _check_gradients(task, [loss], f"task {self.component!r}")


class DatasetConformance(_ComponentSuite):
    """A named source of raw examples with splits: info() JSON-able, indexable splits, picklable, deterministic."""

    kind = "dataset"
    interface = Dataset
    #: examples read from each split by the checks
    examples_checked: ClassVar[int] = 3

    def context(self) -> BuildContext:
        return BuildContext()

    def sample(self, dataset: Dataset, split: str) -> list[Mapping[str, Any]]:
        """Up to `examples_checked` examples, evenly spaced from the first to the last."""
        examples = dataset.examples(split)
        n, k = len(examples), max(1, self.examples_checked)
        indices = sorted({(i * (n - 1)) // (k - 1) for i in range(k)}) if k > 1 else [0]
        return [examples[i] for i in indices] if n else []

    def test_info_and_splits(self):
        dataset = self.build()
        if not dataset.splits or not all(isinstance(s, str) for s in dataset.splits):
            fail(f"splits must be a non-empty sequence of names, got {dataset.splits!r}")
        info = dataset.info()
        try:
            json.dumps(BuildContext(dataset=dict(info)).to_json())
        except TypeError as exc:
            fail(f"info() must be JSON-serialisable (checkpoints record it): {exc}; use Python ints, floats, "
                 "strings, lists and tuples")
        for split in dataset.splits:
            examples = dataset.examples(split)
            if len(examples) == 0:
                fail(f"split {split!r} is empty")
            keys = None
            for example in self.sample(dataset, split):
                if not isinstance(example, Mapping):
                    fail(f"examples of split {split!r} must be mappings, got {type(example).__name__}")
                if keys is not None and set(example) != keys:
                    fail(f"examples of split {split!r} have different keys: {sorted(keys)} and {sorted(example)}")
                keys = set(example)

    def test_unknown_split_is_a_user_error(self):
        from ..errors import UserError

        dataset = self.build()
        with pytest.raises(UserError, match="no_such_split"):
            dataset.examples("no_such_split")

    def test_seeded_build_is_deterministic(self):
        a, b = self.build(), self.build()
        assert_same(dict(a.info()), dict(b.info()), "info()")
        for split in a.splits:
            assert_same(self.sample(a, split), self.sample(b, split), f"examples({split!r})")

    def test_pickles_for_data_workers(self):
        dataset = self.build()
        copy = pickle_round_trip(dataset, f"dataset {self.component!r}")
        for split in dataset.splits:
            examples = pickle_round_trip(dataset.examples(split), f"dataset {self.component!r} split {split!r}")
            assert_same(self.sample(dataset, split), self.sample(copy, split), f"examples({split!r}) after pickling")
            assert_same(examples[0], dataset.examples(split)[0], f"examples({split!r})[0] after pickling")


class BackendConformance(PluginChecks):
    """A hardware target: builds, answers available() without raising, and (where available) runs tensors."""

    kind = "backend"
    DISTRIBUTED = ("gloo", "nccl", "mpi", "ucc", "xccl", "hccl")

    def build(self) -> Backend:
        entry = self.registry_entry()
        try:
            backend = entry.create()
        except Exception as exc:  # noqa: BLE001
            fail(f"backend {self.component!r}: building it from {entry.factory!r} raised {type(exc).__name__}: {exc}")
        if not isinstance(backend, Backend):
            fail(f"backend {self.component!r}: built a {type(backend).__name__}, not a perceiver_core.Backend")
        return backend

    def available_backend(self) -> Backend:
        backend = self.build()
        ok, reason = backend.available()
        if not ok:
            pytest.skip(f"backend {self.component!r} is not available here: {reason}")
        backend.setup()
        return backend

    def test_builds_and_names_itself(self):
        backend = self.build()
        if backend.name != self.component:
            fail(f"the backend registered as {self.component!r} calls itself {backend.name!r}; set name = "
                 f"{self.component!r}")
        if backend.distributed_backend not in self.DISTRIBUTED:
            fail(f"distributed_backend {backend.distributed_backend!r} is not a torch.distributed backend "
                 f"({', '.join(self.DISTRIBUTED)})")

    def test_available_never_raises(self):
        try:
            answer = self.build().available()
        except Exception as exc:  # noqa: BLE001
            fail(f"available() raised {type(exc).__name__}: {exc}; it must return (False, reason) instead")
        if not (isinstance(answer, tuple) and len(answer) == 2 and isinstance(answer[0], bool)
                and isinstance(answer[1], str) and answer[1]):
            fail(f"available() returned {answer!r}; it must return (ok: bool, reason: non-empty str)")

    def test_runs_a_tensor_on_its_device(self):
        backend = self.available_backend()
        device = backend.device()
        if not isinstance(device, torch.device):
            fail(f"device() returned {device!r}, not a torch.device")
        x = torch.arange(6, dtype=torch.float32, device=device).reshape(2, 3)
        y = (x @ x.T).sum()  # [[5, 14], [14, 50]] -> 83
        backend.synchronize()
        if y.to("cpu").item() != 83.0:
            fail(f"a matrix product on {device} gave {y.to('cpu').item()}, expected 83.0")

    def test_precision_policy(self):
        backend = self.build()
        if backend.autocast_dtype("fp32") is not None:
            fail(f'autocast_dtype("fp32") must be None (no autocast), got {backend.autocast_dtype("fp32")!r}')
        for precision in ("auto", "bf16", "fp16"):
            try:
                dtype = backend.autocast_dtype(precision)
            except ValueError:
                continue  # refusing a precision with a clear ValueError is allowed
            if dtype is not None and not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
                fail(f"autocast_dtype({precision!r}) returned {dtype!r}; expected None, a float dtype or a ValueError")

    def test_policies_and_memory_stats(self):
        backend = self.available_backend()
        if backend.should_compile(False) is not False:
            fail("should_compile(False) must be False: the backend may refuse compilation, never force it")
        if not isinstance(backend.pin_memory(), bool):
            fail(f"pin_memory() must return a bool, got {backend.pin_memory()!r}")
        options = backend.compile_options() if hasattr(backend, "compile_options") else {}
        if not isinstance(options, Mapping):
            fail(f"compile_options() must return a dict of torch.compile keyword arguments, got {options!r}")
        stats = backend.memory_stats()
        if not isinstance(stats, Mapping) or not all(isinstance(k, str) and isinstance(v, int) for k, v in stats.items()):
            fail(f"memory_stats() must return a dict of str -> int bytes, got {stats!r}")
