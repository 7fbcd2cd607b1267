"""Settings of the training loop."""

from typing import Annotated, Literal

from pydantic import Field, model_validator

from .base import ComponentConfig
from .numbers import Seed

Beta = Annotated[float, Field(ge=0, lt=1)]


class TrainConfig(ComponentConfig):
    epochs: int = Field(10, ge=1, description="passes over the training split")
    max_steps: int | None = Field(None, ge=1, description="stop after this many optimizer steps (overrides epochs)")
    lr: float = Field(1e-3, gt=0, le=10, description="peak learning rate")
    min_lr_ratio: float = Field(0.0, ge=0, le=1, description="final learning rate as a fraction of lr (cosine)")
    warmup_steps: int | None = Field(None, ge=0, description="linear warm-up steps (default: 5% of all steps)")
    weight_decay: float = Field(
        0.01, ge=0, le=10,
        description="decoupled weight decay (not on vectors nor on what modules name in no_weight_decay())")
    optimizer: Literal["adamw", "lamb"] = Field("adamw", description="optimizer")
    betas: tuple[Beta, Beta] = Field((0.9, 0.999), description="Adam betas, each in [0, 1)")
    grad_clip: float | None = Field(1.0, gt=0, description="clip the global gradient norm (None: off)")
    seed: Seed = Field(0, description="seed of initialisation, shuffling and augmentation")
    eval_every: int = Field(1, ge=1, description="evaluate on the eval split every N epochs")
    eval_split: str = Field("test", description="split used for evaluation during and after training")
    train_split: str = Field("train", description="split used for training")
    log_every: int = Field(10, ge=1, description="write a metrics line every N steps")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto", description="autocast dtype; auto lets the backend choose")
    parallel: Literal["ddp", "fsdp"] = Field(
        "ddp", description="with several processes (torchrun): ddp replicates the model on every process; fsdp "
                           "(FSDP2) shards parameters, gradients and optimizer state across them, for models that do "
                           "not fit one device (no ema_decay, compile or fp16 with it); one process ignores it")
    compile: bool = Field(False, description="torch.compile the model's attention blocks (where the backend allows it)")
    val_split: str | None = Field(
        None, description="dataset split for per-epoch monitoring (model selection, early stopping); the eval_split "
                          "(test) is then evaluated once, at the end")
    val_fraction: float = Field(
        0.0, ge=0, lt=1, description="hold out this seeded fraction of the training split as the validation split "
                                     "(when the dataset has none)")
    monitor: str = Field("loss", description="validation metric that selects the best checkpoint and stops early")
    monitor_mode: Literal["auto", "min", "max"] = Field(
        "auto", description="whether the monitored metric should fall or rise (auto: loss falls, others rise)")
    keep_best: bool = Field(True, description="with validation: keep the best model in best/ beside the last one")
    early_stopping_patience: int | None = Field(
        None, ge=1, description="stop after this many validations without improvement (needs validation)")
    grad_accumulation: int = Field(1, ge=1, description="micro-batches per optimizer step (a larger effective batch)")
    ema_decay: float | None = Field(
        None, gt=0, lt=1, description="keep an exponential moving average of the weights (e.g. 0.999); evaluation "
                                      "and the saved model use it")
    loggers: list[Literal["csv", "tensorboard"]] = Field(
        default_factory=list, description="extra loggers beside metrics.jsonl: csv (metrics.csv), tensorboard "
                                          "(tb/, needs perceiver-core[tensorboard])")

    @model_validator(mode="after")
    def _validation_data(self):
        """What the loop would refuse at its start, refused when the file is validated."""
        if self.val_split and self.val_fraction:
            raise ValueError("set train.val_split or train.val_fraction, not both")
        if self.early_stopping_patience is not None and not (self.val_split or self.val_fraction):
            raise ValueError("train.early_stopping_patience needs validation data (train.val_split or "
                             "train.val_fraction): early stopping never looks at the test split")
        return self


#: the parts of a pipeline, by the first part of their parameter names (packing: several inputs' padding and mask
#: tokens)
MODULES = ("preprocessor", "position", "packing", "encoder", "decoder", "task")


class InitFromConfig(ComponentConfig):
    """`init_from` of a pipeline (or `perceiver train --init-from`): start training from another checkpoint's weights.

    A tensor is loaded when its module is selected, it exists in the file and has the same shape; everything else
    keeps its fresh initialisation, and one line reports what was loaded, skipped and re-initialised.
    """

    checkpoint: str = Field(description="a run folder or a .safetensors checkpoint of ours (train or import-hf); "
                                        "a relative path is relative to the working directory")
    load: list[Literal["preprocessor", "position", "packing", "encoder", "decoder", "task"]] | None = Field(
        None, description="modules to load (default: all of them, where the shapes fit)")
    reinit: list[Literal["preprocessor", "position", "packing", "encoder", "decoder", "task"]] = Field(
        default_factory=list, description="modules kept freshly initialised (e.g. the decoder for new classes)")
    freeze: list[Literal["preprocessor", "position", "packing", "encoder", "decoder", "task"]] = Field(
        default_factory=list, description="modules not trained (their parameters get no gradient)")
