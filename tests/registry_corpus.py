"""A corpus of malformed registry files, generated here (nothing shipped): each case must give exit 2 and one line
naming what is wrong, no traceback, bounded memory, through `perceiver validate` and, where a pipeline resolves
far enough to be trained, `perceiver train --max-steps 1` (which must refuse it before allocating anything).

Each case is `Case(name, text, expected, key, train)`: `text` is the whole file (str or bytes; `BASE` holds a valid
pipeline `base` that the bad pipeline `bad` extends), `expected` a fragment of the one error line, `key` the key
path the line must name (None when the error is about the whole file), `train` whether `train bad` is run too.
Used by tests/test_hostile_registry.py.
"""

from __future__ import annotations

from dataclasses import dataclass

BASE = """\
[pipelines.base]
description = "a valid pipeline: small Perceiver IO on digits"
task = { use = "classification", num_classes = 10 }
data = { use = "image.digits", batch_size = 32 }
preprocessor = { use = "image.pixels" }
position = { use = "fourier", num_bands = 4 }
encoder = { use = "perceiver", num_latents = 16, latent_channels = 32, num_blocks = 1, self_attends_per_block = 1, self_attend_heads = 2 }
decoder = { use = "classification" }
train = { max_steps = 2, lr = 3e-3 }
"""


@dataclass(frozen=True)
class Case:
    name: str
    text: str | bytes
    expected: str
    key: str | None = None
    train: bool = False


def _bad(body: str, expected: str, key: str | None, train: bool = True) -> tuple[str, str, str | None, bool]:
    """A pipeline `bad` extending the valid `base`, with `body` as its own lines."""
    return BASE + '\n[pipelines.bad]\nextends = "base"\n' + body + "\n", expected, key, train


def _file(text: str | bytes, expected: str, key: str | None = None) -> tuple[str | bytes, str, str | None, bool]:
    return text, expected, key, False


def _chain(n: int) -> str:
    return BASE + "".join(f'\n[pipelines.c{i}]\nextends = "{"base" if i == 0 else f"c{i - 1}"}"\n' for i in range(n)) \
        + f'\n[pipelines.bad]\nextends = "c{n - 1}"\n'


_RAW = {
    # -- the file's structure -------------------------------------------------------------------------------
    "pipelines-is-a-string": _file('pipelines = "digits"\n', "must be a table of named pipelines", "pipelines"),
    "pipelines-is-an-array-of-tables": _file('[[pipelines]]\nname = "a"\n[[pipelines]]\nname = "b"\n',
                                             "not an array of tables ([[pipelines]])", "pipelines"),
    "pipelines-is-an-int": _file("pipelines = 3\n", "not a int", "pipelines"),
    "pipelines-is-an-array": _file("pipelines = [1, 2]\n", "array of tables", "pipelines"),
    "pipeline-is-a-string": _file('[pipelines]\nbad = "digits"\n', "a pipeline must be a table", "pipelines.bad"),
    "pipeline-is-an-array-of-tables": _file('[[pipelines.bad]]\ntask = "classification"\n',
                                            "a pipeline must be a table", "pipelines.bad"),
    "nested-arrays-5000-deep": _file("[pipelines.bad]\ndescription = " + "[" * 5000 + "]" * 5000 + "\n",
                                     "nested too deeply"),
    "nested-inline-tables-3000-deep": _file("[pipelines.bad]\ndescription = " + "{a = " * 3000 + "1" + "}" * 3000
                                            + "\n", "nested too deeply"),
    "nested-arrays-40-deep": _file("[pipelines.bad]\ndescription = " + "[" * 40 + "]" * 40 + "\n",
                                   "nested too deeply", "pipelines.bad.description"),
    "dotted-header-200-deep": _file("[pipelines.bad." + ".".join(["a"] * 200) + "]\nx = 1\n", "nested too deeply"),
    "requires-is-a-string": _file('requires = "perceiver-image"\n' + BASE, "must be a table", "requires"),
    "requires-version-is-an-int": _file("[requires]\nperceiver-image = 1\n" + BASE, "version specifier string",
                                        "requires.perceiver-image"),
    "requires-bad-specifier": _file('[requires]\nperceiver-image = "~~1"\n' + BASE, "is not a version specifier",
                                    "requires.perceiver-image"),
    "unknown-top-level-table": _file("[pipeline.bad]\ndescription = 'x'\n", "unknown top-level table", "pipeline"),
    "not-toml": _file("[pipelines.bad\ntask = 1\n", "not valid TOML"),
    "not-utf8": _file(b"[pipelines.bad]\ndescription = \"\xff\xfe\"\n", "cannot read the registry file"),
    "nul-bytes": _file(b"[pipelines.bad]\x00\x00\n", "not valid TOML"),
    "too-large-17-mib": _file("# " + "x" * (17 << 20) + "\n", "more than the limit"),
    "key-with-newlines": _bad('"line\\nbreak" = 1', "unknown key", 'pipelines.bad."line\\nbreak"', train=False),
    "key-of-100k-characters": _bad('"' + "k" * 100_000 + '" = 1', "unknown key", "pipelines.bad.", train=False),
    "backend-of-1m-characters": _bad('backend = "' + "x" * 1_000_000 + '"', "unknown backend",
                                     "pipelines.bad.backend", train=False),
    # -- pipelines and their sections -------------------------------------------------------------------
    "extends-itself": _bad("", "cycle", "pipelines.bad.extends", train=False),
    "extends-not-a-string": _bad("", "must be the name of another pipeline", "pipelines.bad.extends", train=False),
    "extends-unknown": _bad("", "extends unknown pipeline 'bsae'", "pipelines.bad.extends", train=False),
    "extends-chain-of-65": _file(_chain(63), "the extends chain is longer than 64 pipelines",
                                  "pipelines.bad.extends"),
    "missing-section": _file(BASE.replace('decoder = { use = "classification" }\n', ""),
                             "missing: every pipeline needs decoder", "pipelines.base.decoder"),
    "section-is-an-int": _bad("encoder = 3", "expected a table with a `use` key", "pipelines.bad.encoder"),
    "section-is-an-array": _bad("encoder = [1, 2]", "expected a table with a `use` key", "pipelines.bad.encoder"),
    "use-is-an-int": _bad("encoder = { use = 5 }", "expected a table with a `use` key", "pipelines.bad.encoder"),
    "unknown-component": _bad('encoder = { use = "perciever" }', "did you mean 'perceiver'",
                              "pipelines.bad.encoder.use"),
    "unknown-pipeline-key": _bad("encodr = 1", "did you mean 'encoder'", "pipelines.bad.encodr"),
    "unknown-config-key": _bad('encoder = { use = "perceiver", num_latent = 8 }', "did you mean 'num_latents'",
                               "pipelines.bad.encoder.num_latent"),
    "description-is-a-table": _bad("description = { a = 1 }", "valid string", "pipelines.bad.description"),
    "backend-is-an-int": _bad("backend = 3", "must be a backend name", "pipelines.bad.backend"),
    "backend-unknown": _bad('backend = "tpu"', "unknown backend 'tpu'", "pipelines.bad.backend"),
    "init-from-is-an-int": _bad("init_from = 5", "valid dictionary", "pipelines.bad.init_from"),
    "train-is-a-string": _bad('train = "fast"', "valid dictionary", "pipelines.bad.train", train=False),
    # -- numbers: coercion, finiteness, ranges ----------------------------------------------------------
    "lr-inf": _bad("train = { lr = inf }", "finite number", "pipelines.bad.train.lr"),
    "lr-nan": _bad("train = { lr = nan }", "finite number", "pipelines.bad.train.lr"),
    "lr-negative": _bad("train = { lr = -0.1 }", "greater than 0", "pipelines.bad.train.lr"),
    "lr-a-string": _bad('train = { lr = "0.1" }', "valid number; got '0.1'", "pipelines.bad.train.lr"),
    "lr-a-bool": _bad("train = { lr = true }", "valid number; got True", "pipelines.bad.train.lr"),
    "lr-1e300": _bad("train = { lr = 1e300 }", "less than or equal to 10", "pipelines.bad.train.lr"),
    "epochs-a-string": _bad('train = { epochs = "3" }', "valid integer; got '3'", "pipelines.bad.train.epochs"),
    "epochs-a-bool": _bad("train = { epochs = true }", "valid integer; got True", "pipelines.bad.train.epochs"),
    "epochs-a-float": _bad("train = { epochs = 3.5 }", "valid integer; got 3.5", "pipelines.bad.train.epochs"),
    "max-steps-1e12": _bad("train = { max_steps = 1000000000000 }", "less than or equal to 2147483647",
                           "pipelines.bad.train.max_steps", train=False),  # train's --max-steps replaces it
    "epochs-1e12": _bad("train = { epochs = 1000000000000 }", "less than or equal to 2147483647",
                        "pipelines.bad.train.epochs"),
    "betas-out-of-range": _bad("train = { betas = [2.0, 0.999] }", "less than 1; got 2.0",
                               "pipelines.bad.train.betas.0"),
    "betas-negative": _bad("train = { betas = [0.9, -1.0] }", "greater than or equal to 0",
                           "pipelines.bad.train.betas.1"),
    "betas-one-value": _bad("train = { betas = [0.9] }", "missing required key", "pipelines.bad.train.betas.1"),
    "weight-decay-negative": _bad("train = { weight_decay = -1.0 }", "greater than or equal to 0",
                                  "pipelines.bad.train.weight_decay"),
    "grad-clip-negative": _bad("train = { grad_clip = -1.0 }", "greater than 0", "pipelines.bad.train.grad_clip"),
    "warmup-negative": _bad("train = { warmup_steps = -1 }", "greater than or equal to 0",
                            "pipelines.bad.train.warmup_steps"),
    "seed-negative": _bad("train = { seed = -1 }", "greater than or equal to 0", "pipelines.bad.train.seed"),
    "seed-2-to-the-40": _bad("train = { seed = 1099511627776 }", "less than or equal to 4294967295",
                             "pipelines.bad.train.seed"),
    "precision-fp8": _bad('train = { precision = "fp8" }', "'auto', 'fp32', 'bf16' or 'fp16'",
                          "pipelines.bad.train.precision"),
    "optimizer-sgd": _bad('train = { optimizer = "sgd" }', "'adamw' or 'lamb'", "pipelines.bad.train.optimizer"),
    "batch-size-zero": _bad('data = { use = "image.digits", batch_size = 0 }', "greater than or equal to 1",
                            "pipelines.bad.data.batch_size"),
    "batch-size-a-string": _bad('data = { use = "image.digits", batch_size = "32" }', "valid integer",
                                "pipelines.bad.data.batch_size"),
    "batch-size-1e12": _bad('data = { use = "image.digits", batch_size = 1000000000000 }',
                            "less than or equal to 1048576", "pipelines.bad.data.batch_size"),
    "num-latents-1e9": _bad('encoder = { use = "perceiver", num_latents = 1000000000 }',
                            "less than or equal to 65536", "pipelines.bad.encoder.num_latents"),
    "latent-channels-a-bool": _bad('encoder = { use = "perceiver", latent_channels = true }', "valid integer",
                                   "pipelines.bad.encoder.latent_channels"),
    "dropout-1.5": _bad('encoder = { use = "perceiver", dropout = 1.5 }', "less than 1",
                        "pipelines.bad.encoder.dropout"),
    "dropout-nan": _bad('encoder = { use = "perceiver", dropout = nan }', "finite number",
                        "pipelines.bad.encoder.dropout"),
    "label-smoothing-1": _bad('task = { use = "classification", num_classes = 10, label_smoothing = 1.0 }',
                              "less than 1", "pipelines.bad.task.label_smoothing"),
    "num-classes-1": _bad('task = { use = "classification", num_classes = 1 }', "greater than or equal to 2",
                          "pipelines.bad.task.num_classes"),
    "num-bands-zero": _bad('position = { use = "fourier", num_bands = 0 }', "greater than or equal to 1",
                           "pipelines.bad.position.num_bands"),
    "std-zero": _bad('preprocessor = { use = "image.pixels", std = [0.0] }', "greater than 0",
                     "pipelines.bad.preprocessor.std.0"),
    # -- what only the build finds (validate builds on the meta device) ----------------------------------
    "self-heads-do-not-divide-channels": _bad('encoder = { use = "perceiver", self_attend_heads = 3 }',
                                              "must be divisible by self_attend_heads (3)",
                                              "pipelines.bad.encoder.self_attend_heads"),
    "cross-heads-do-not-divide-qk": _bad('encoder = { use = "perceiver", cross_attend_heads = 3, '
                                         'cross_attend_qk_channels = 32 }', "cross_attend_heads (3)",
                                         "pipelines.bad.encoder.cross_attend"),
    "decoder-heads-do-not-divide": _bad('decoder = { use = "classification", num_heads = 5 }',
                                        "cannot build decoder 'classification'", "pipelines.bad.decoder"),
    "mean-of-the-wrong-length": _bad('preprocessor = { use = "image.pixels", mean = [0.1, 0.2, 0.3, 0.4] }',
                                     "mean has 4 values but the images have 1 channels",
                                     "pipelines.bad.preprocessor.mean"),
    "std-of-the-wrong-length": _bad('preprocessor = { use = "image.pixels", std = [0.5, 0.5] }',
                                    "std has 2 values", "pipelines.bad.preprocessor.std"),
    "fewer-classes-than-the-dataset": _bad('task = { use = "classification", num_classes = 3 }',
                                           "task.num_classes is 3 but the dataset has 10 classes",
                                           "pipelines.bad.task.num_classes"),
    "train-split-unknown": _bad('train = { train_split = "training" }', "has no split 'training'",
                                "pipelines.bad.train.train_split"),
    "eval-split-unknown": _bad('train = { eval_split = "validation" }', "has no split 'validation'",
                               "pipelines.bad.train.eval_split"),
    "val-split-unknown": _bad('train = { val_split = "val" }', "has no split 'val'", "pipelines.bad.train.val_split"),
    "val-split-and-fraction": _bad('train = { val_split = "test", val_fraction = 0.1 }',
                                   "set train.val_split or train.val_fraction, not both", "pipelines.bad.train.val_"),
    "early-stopping-without-validation": _bad("train = { early_stopping_patience = 3 }", "needs validation data",
                                              "pipelines.bad.train.early_stopping_patience"),
    "cross-attends-exceed-blocks": _bad('encoder = { use = "perceiver", num_cross_attends = 3 }',
                                        "cannot exceed num_blocks", "pipelines.bad.encoder.num_cross_attends"),
    "hip-modality-of-another-size": ('[pipelines.bad]\nextends = "hip-tiny"\nencoder = { use = "hip", modalities = '
                                    '{ x = { index_shape = [1], channels = 1 } } }\n',
                                    "its model does not take its data: modality 'x'", "pipelines.bad", True),
    "model-of-absurd-size": _bad('encoder = { use = "perceiver", num_latents = 65536, latent_channels = 65536, '
                                 'self_attend_heads = 1, share_blocks = false, num_blocks = 8 }',
                                 "more than the limit of 20,000,000,000", "pipelines.bad.encoder"),
}
# cases whose bad pipeline is made by editing the text rather than appending
_RAW["extends-itself"] = (_RAW["extends-itself"][0].replace('extends = "base"\n', 'extends = "bad"\n', 1)
                          .replace('[pipelines.bad]\nextends = "base"', '[pipelines.bad]\nextends = "bad"'),
                          *_RAW["extends-itself"][1:])
for _name, _value in (("extends-not-a-string", "3"), ("extends-unknown", '"bsae"')):
    _RAW[_name] = (_RAW[_name][0].replace('[pipelines.bad]\nextends = "base"', f"[pipelines.bad]\nextends = {_value}"),
                   *_RAW[_name][1:])

CASES: list[Case] = [Case(name, *value) for name, value in _RAW.items()]

# `--set` values: the error names the --set, not a line of the file
SET_CASES: list[tuple[str, str, str]] = [
    ("set-lr-inf", "train.lr=inf", "--set train.lr=inf: pipelines.base.train.lr: Input should be a finite number"),
    ("set-epochs-string", 'train.epochs="3"', "Input should be a valid integer"),
    ("set-heads", "encoder.self_attend_heads=3", "--set encoder.self_attend_heads=3: "),
    ("set-mean", "preprocessor.mean=[0.1,0.2,0.3]", "--set preprocessor.mean=[0.1,0.2,0.3]: pipelines.base."
                                                    "preprocessor.mean: cannot build preprocessor"),
    ("set-split", "train.eval_split=nope", "--set train.eval_split=nope: pipelines.base.train.eval_split"),
    ("set-deep", "train.lr=" + "[" * 3000 + "]" * 3000, "nested too deeply"),
    ("set-not-a-table", "train.lr.x=1", "'lr' is not a table"),
]
