"""Config: every setting of a run in one flat dataclass, validated, read from and written to TOML.

The command line flags, the TOML files and the keyword overrides of `fit` are all
generated from the fields below, and each field's metadata says the rest: its section of
`--help`, whether a comparison's candidates share it or may differ in it, whether runs of one
stack may differ in it, whether a resumed run may change it, where it applies. So this file is
the one place a setting is defined; the modules that need a fact ask `settings_where` or `fact`.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import inspect
import json
import math
import os
import sys
import typing
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

from .metrics import METRICS, base_metric, direction, in_words

__all__ = [
    "Config",
    "RiskminError",
    "RiskminNote",
    "RiskminNumerics",
    "RiskminWarning",
    "Activation",
    "LossName",
    "ModelName",
    "OptimizerName",
    "SchedulerName",
]

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib


class RiskminError(ValueError):
    """A mistake in what the user asked for, told in one sentence that says how to fix it."""


class RiskminWarning(UserWarning):
    """Something a user should know that does not stop the work, in one sentence: through `warnings`, so that Python
    can filter, record or escalate it; the command line prints it as a 'warning: ...' line."""


class RiskminNumerics(RiskminWarning):
    """The numbers look wrong, though nothing failed: a model far worse than predicting the mean, probabilities given to
    a loss that takes logits. Escalate it to stop on such a run: warnings.filterwarnings("error", category=...)."""


class Diverged(RiskminNumerics):
    """A run whose training loss became NaN or infinite, or an experiment whose runs all did: the command line says it
    as an `error:` line of its own, and exits with 1."""


class RiskminNote(RiskminWarning):
    """How data was read (a column left out, text cells read as missing); the command line prints 'note: ...'."""


def warn(message: str, kind: type = RiskminWarning) -> None:
    """Issue a riskmin message, attributed to the line that called into riskmin (the user's `fit(...)`), so that
    Python's filters by module and line, and its once-per-line default, apply to the user's code: the caller of the
    outermost riskmin frame, whatever torch or the standard library wraps between riskmin's own (a no_grad decorator,
    a context manager)."""
    modules, frame = [], inspect.currentframe()  # modules[0]: this function's, level 1 as warnings.warn counts
    while frame is not None:
        modules.append(str(frame.f_globals.get("__name__", "")).partition(".")[0])
        frame = frame.f_back
    level = max(level for level, module in enumerate(modules, 1) if module == "riskmin") + 1
    while level < len(modules) and modules[level - 1] in WRAPPERS:  # a no_grad decorator around riskmin's function
        level += 1
    warnings.warn(message, kind, stacklevel=level)


# the packages whose frames can stand between the user's line and riskmin's outermost function
WRAPPERS = ("torch", "contextlib", "functools")


# The sections of `--help`, in the order shown: every setting names one as its group.
SECTIONS = ("Monte-Carlo", "data", "split", "model", "optimization", "stopping and the best model", "device", "output")

# What a setting's field may say about it beside its help text, and what it says when it is silent.
FACTS = {
    "low": None,
    "high": None,
    "low_open": False,
    "high_open": False,  # a number's allowed range, either end open or closed
    "command": None,  # the one command that shows it (None: every command that trains)
    "placeholder": None,  # what its flag takes in --help, where its type would not say (FILE, COLUMNS)
    "one_value": False,  # text whose commas belong to its one value: a comparison never splits it into alternatives
    # every candidate of a comparison has the same: they train on the same splits, written to one place
    "shared": False,
    # (the setting that decides, where it means something): momentum means something for sgd and rmsprop
    "applies": None,
    # fixed: a resumed run keeps it; free: may change; length: free unless the schedule spans the run
    "resume": "fixed",
    "stackable": False,  # runs of one stack may differ in it, each run with its own (PerRun, PerRunSchedule)
    # the one task it means something for, which the data says once it is read (given_for_task)
    "task": None,
    # it means something for a torch Dataset alone, read item by item (a DataLoader's); not for rows held in memory
    "dataset": False,
    # what its value "custom" (metrics: any text) stands for: an object of one's own, which Python alone passes (the
    # command line says so, _flags.refuse_own_code)
    "custom": None,
    # the learning-rate sweep (lr-find) uses it; False: the sweep sets the rate itself over its own steps, judges no
    # epoch, keeps no best weights and writes no run, only its picture, so the setting is said unused (unused_by_sweep)
    "sweep": True,
}


def setting(default, help: str, group: str, **facts):
    """A Config field with its help text, its section of `--help`, and any of the FACTS that differ from their defaults.

    >>> setting(0.01, "learning rate", "optimization", low=0.0, stackable=True).metadata["stackable"]
    True
    """
    unknown = sorted(set(facts) - set(FACTS))
    if unknown or group not in SECTIONS:  # a mistake in this file, found on import
        raise TypeError(f"setting(): unknown facts {unknown} or section {group!r}; facts are {', '.join(FACTS)}")
    return field(default=default, metadata={"help": help, "group": group, **FACTS, **facts})


DEFAULT_EPOCHS = 100  # epochs when neither epochs nor max_steps is set
# the largest integer TOML holds (config.toml keeps every seed); torch's generators take 2**64 - 1
LARGEST_SEED = 2**63 - 1


class DefaultBatch(int):
    """batch_size left at its default, kept apart from the same number given: the default alone, larger than a small
    table's training rows, takes them all (_prepare.fitted_batch), while a batch given, and larger, is refused there,
    whoever gave it (Config(batch_size=32), replace, a keyword of fit, a flag, a line of a file). Only Config's field
    default holds it; copies keep it (replace, to_dict), and config.toml writes it as a comment, so that a run read
    back from its own file still has the default. In all else an int (==, repr, JSON).

    >>> default, given = Config().replace(lr=0.1).batch_size, Config(batch_size=32).batch_size
    >>> isinstance(default, DefaultBatch), isinstance(given, DefaultBatch), default == given
    (True, False, True)
    """


class DefaultMonitor(str):
    """monitor left at its default, val_loss, kept apart from val_loss given, as DefaultBatch keeps the default batch:
    the default judges by a validation split where there is one and keeps the final weights where there is none, while
    val_loss given without one is refused (policy.judged), as any validation metric given is. In all else a str.

    >>> isinstance(Config().monitor, DefaultMonitor), isinstance(Config(monitor="val_loss").monitor, DefaultMonitor)
    (True, False)
    """


# the defaults config.toml writes as comments, each with what it does left unset: read back, it is the default again
UNSET = {
    DefaultBatch: "a training split of fewer rows trains as one batch",
    DefaultMonitor: "without a validation split the final weights are kept",
}


ModelName = Literal["linear", "two_layer", "mlp", "custom"]
Activation = Literal["relu", "tanh", "sigmoid", "gelu"]
LossName = Literal["auto", "mse", "l1", "huber", "cross_entropy", "bce", "custom"]
OptimizerName = Literal["sgd", "adam", "adamw", "rmsprop", "custom"]
SchedulerName = Literal["none", "step", "cosine", "plateau", "linear_warmup", "one_cycle", "custom"]

WIDE = ("two_layer", "mlp")  # the models with hidden layers
ADAM = ("adam", "adamw")


@dataclass(frozen=True)
class Config:
    """Every setting of a training run. Build one with keywords; bad values raise RiskminError.

    The fields are in the order `riskmin train --help` shows them within each section; their metadata
    (`setting`, FACTS) says everything else the command line, compare, the stacked engine and resume
    need to know about them: `settings_where` asks it.

    >>> Config(model="mlp", hidden=(64, 64), optimizer="adamw", lr=1e-3).lr
    0.001
    """

    # fmt: off
    # what to train on
    # free on resume: a resume checks the data's rows and values (their fingerprint), not the name they were given by
    data: str = setting("lab1", "built-in data set name (see `riskmin datasets`), or a .csv, .parquet or .npz file",
                        "data",
                        shared=True, resume="free")
    target: str = setting("", "column(s) to predict in a .csv or .parquet file, comma separated (required for a table)",
                          "data",
                          placeholder="COLUMNS", one_value=True, shared=True)
    features: str = setting("", "feature columns of a table, comma separated, in this order (default: all but the "
                                "target and row identifiers such as id, each left out with a note)",
                            "data", placeholder="COLUMNS", one_value=True, shared=True)
    task: Literal["auto", "regression", "classification"] = setting(
        "auto", "what the target is; auto guesses from the target column: text, true/false, at most 3 whole numbers, "
        "or the codes 0..k-1 (k up to 20) are classes; other numbers (ratings 1..5, counts) are regression", "data",
        shared=True)
    missing: Literal["error", "drop", "mean"] = setting(
        "error", "empty cells of a table, NaN in arrays: error names them, drop drops a table's rows with them, "
                 "mean fills features with training-split means",
        "data", shared=True)
    target_transform: Literal["none", "log"] = setting(
        "none", "log: train on the logarithm of a positive regression target; predictions and the metrics (rmse, mae, "
                "r2) come back in the target's units, the loss stays on the log scale", "data", shared=True)
    n_samples: int = setting(1000, "samples to generate for synthetic data sets (lab1)", "data", low=2, shared=True)
    n_inputs: int = setting(10, "input dimension n of synthetic data sets (lab1)", "data", low=1, shared=True)
    n_outputs: int = setting(2, "output dimension m of synthetic data sets (lab1)", "data", low=1, shared=True)
    noise: float = setting(0.5, "noise standard deviation sigma of synthetic data sets (lab1)", "data", low=0.0,
                           shared=True)
    data_seed: int = setting(0, "seed that generates synthetic data sets (lab1)", "data", low=0, high=LARGEST_SEED,
                             shared=True)
    # how to split it
    train: Optional[float] = setting(None, "training fraction (default: what val and test leave)", "split", low=0.0,
                                     high=1.0,
                                     low_open=True, shared=True)
    val: float = setting(0.1, "validation fraction", "split", low=0.0, high=1.0, shared=True)
    test: float = setting(0.1, "test fraction", "split", low=0.0, high=1.0, shared=True)
    split: Literal["random", "tutorial"] = setting("random",
                                                   "random split by seed, or the fixed split of the `line` tutorial",
                                                   "split", shared=True)
    seed: int = setting(0, "seed of the split, the initialization and the batch order", "split", low=0,
                        high=LARGEST_SEED,
                        shared=True)
    standardize: bool = setting(True, "standardize features with training-split mean and std", "split")
    standardize_target: bool = setting(True, "train on a regression target standardized with training-split "
                                             "statistics; metrics and predictions stay in the target's units", "split")
    # the parametrization
    model: ModelName = setting("two_layer", "parametrization: linear (Hx), two_layer (H2 s(H1 x)) or mlp (custom: a "
                                            "module given in Python)", "model",
                               custom="a module of your own, given in Python (riskmin.fit(MyNet(), data))")
    model_class: str = setting("", "the class of a user's own module (model custom), as module.Class; recorded, not "
                                   "used",
                               "model", placeholder="MODULE.CLASS", one_value=True, applies=("model", ("custom",)))
    hidden: tuple = setting((32,), "hidden widths, comma separated (two_layer takes one)", "model",
                            applies=("model", WIDE))
    activation: Activation = setting("relu", "nonlinearity of two_layer and mlp", "model", applies=("model", WIDE))
    dropout: float = setting(0.0, "dropout probability after each hidden layer of mlp (below 1: at 1 every unit is "
                                  "dropped)",
                             "model", low=0.0, high=1.0, high_open=True, applies=("model", ("mlp",)))
    bias: bool = setting(True, "give every layer a bias term", "model", applies=("model", ("linear", *WIDE)))
    # the loss, the optimizer, the schedule and the loop
    loss: LossName = setting("auto", "loss function; auto: mse for regression, cross_entropy for classification "
                                     "(custom: a function given in Python, which sees the targets unstandardized)",
                             "optimization",
                             custom="a loss function of your own, given in Python (riskmin.fit(model, data, "
                                    "loss=my_loss))")
    loss_callable: str = setting("", "the user's own loss (loss custom), as module.function; recorded, not used",
                                 "optimization",
                                 placeholder="MODULE.NAME", one_value=True, applies=("loss", ("custom",)))
    optimizer: OptimizerName = setting("adam", "optimizer (custom: a class or factory given in Python)", "optimization",
                                       custom="an optimizer of your own, given in Python (riskmin.fit(model, data, "
                                              "optimizer=MyOptimizer))")
    optimizer_callable: str = setting("", "the user's own optimizer (optimizer custom), as module.name; recorded, not "
                                          "used",
                                      "optimization", placeholder="MODULE.NAME", one_value=True,
                                      applies=("optimizer", ("custom",)))
    lr: float = setting(0.01, "learning rate", "optimization", low=0.0, low_open=True, stackable=True, sweep=False)
    momentum: float = setting(0.0, "momentum of sgd and rmsprop", "optimization", low=0.0, high=1.0,
                              applies=("optimizer", ("sgd", "rmsprop")), stackable=True)
    nesterov: bool = setting(False, "nesterov momentum (sgd)", "optimization", applies=("optimizer", ("sgd",)))
    beta1: float = setting(0.9, "decay of adam's and adamw's running average of the gradient", "optimization", low=0.0,
                           high=1.0, high_open=True, applies=("optimizer", ADAM))
    beta2: float = setting(0.999, "decay of adam's and adamw's running average of the squared gradient", "optimization",
                           low=0.0, high=1.0, high_open=True, applies=("optimizer", ADAM))
    eps: float = setting(1e-8, "added to the denominator of adam's and adamw's update", "optimization", low=0.0,
                         low_open=True,
                         applies=("optimizer", ADAM))
    weight_decay: Optional[float] = setting(None, "weight decay (default: the optimizer's own, 0.01 for adamw as in "
                                                  "torch, 0 for the others)", "optimization", low=0.0, stackable=True)
    scheduler: SchedulerName = setting("none", "learning-rate schedule: step (times gamma every step_size epochs), "
                                               "cosine (to 0 over the run), plateau (times gamma when the monitored "
                                               "metric stalls), linear_warmup (from lr/warmup up to lr over warmup, "
                                               "then lr), one_cycle (up to lr and down again over the run); custom: a "
                                               "factory given in Python",
                                       "optimization", stackable=True,
                                       custom="a schedule of your own, given in Python (riskmin.fit(model, data, "
                                              "scheduler=my_schedule))", sweep=False)
    scheduler_callable: str = setting("", "the user's own scheduler factory (scheduler custom), as module.name; "
                                          "recorded, not used", "optimization", placeholder="MODULE.NAME",
                                          one_value=True,
                                      applies=("scheduler", ("custom",)))
    scheduler_interval: Literal["epoch", "step"] = setting("epoch", "step the scheduler after every epoch or after "
                                                                    "every step; the lengths of cosine, one_cycle and "
                                                                    "warmup count in these",
                                                           "optimization", sweep=False)
    warmup: int = setting(0, "length of linear_warmup, in epochs or steps as scheduler_interval says (0: a tenth of "
                             "the run)",
                          "optimization", low=0, applies=("scheduler", ("linear_warmup",)), sweep=False)
    step_size: int = setting(30, "epochs between learning-rate drops (step scheduler)", "optimization", low=1,
                             applies=("scheduler", ("step",)), stackable=True, sweep=False)
    gamma: float = setting(0.1, "learning-rate factor at each drop (step and plateau schedulers)", "optimization",
                           low=0.0,
                           high=1.0, low_open=True, applies=("scheduler", ("step", "plateau")), stackable=True,
                           sweep=False)
    clip_grad: float = setting(0.0, "clip the gradient norm to this value (0: off)", "optimization", low=0.0)
    epochs: Optional[int] = setting(None, "number of epochs (default: 100, or with max_steps as many as those steps "
                                          "take)",
                                    "optimization", low=1, resume="length", sweep=False)
    max_steps: int = setting(0, "stop after this many steps (0: no limit); without epochs, it alone says how long to "
                                "train",
                             "optimization", low=0, resume="length", sweep=False)
    batch_size: int = setting(DefaultBatch(32), "samples per batch (0: the whole training split)", "optimization",
                              low=0)
    accumulate: int = setting(1, "add up the gradients of this many batches before each optimizer step (an epoch's "
                                 "last group may hold fewer); steps, schedules, val_every, clip_grad and max_steps "
                                 "count optimizer steps",
                              "optimization", low=1)
    sampling: Literal["epoch", "random"] = setting("epoch", "epoch: permute and partition; random: draw a random "
                                                            "batch each step", "optimization")
    drop_last: bool = setting(False, "drop the last incomplete batch of each epoch", "optimization")
    # validation, the best model and early stopping
    val_every: int = setting(0, "validate every this many steps (0: every epoch)", "stopping and the best model", low=0,
                             sweep=False)
    metrics: str = setting("", "the user's own metrics given in Python, as name=module.function, comma separated; "
                               "recorded, not used", "stopping and the best model", placeholder="NAME=MODULE.NAME,...",
                               one_value=True,
                               custom="metrics of your own, given in Python (riskmin.fit(model, data, "
                                      "metrics={'hits': my_hits}))", sweep=False)
    monitor: str = setting(DefaultMonitor("val_loss"),
                           "metric that decides the best model and early stopping: loss, val_loss, or val_ "
                           f"with {in_words(list(METRICS)[1:])}", "stopping and the best model",
                           placeholder="METRIC", one_value=True, shared=True, sweep=False)
    mode: Literal["auto", "min", "max"] = setting("auto", "whether the monitored metric should go down or up (auto: "
                                                          "as riskmin's metric does, a loss or an error down, "
                                                          "accuracy, f1 and r2 up)",
                                                  "stopping and the best model", shared=True, sweep=False)
    patience: int = setting(0, "stop after this many validations without improvement (0: never)",
                            "stopping and the best model",
                            low=0, sweep=False)
    min_delta: float = setting(0.0, "smallest change of the monitored metric that counts as improvement",
                               "stopping and the best model", low=0.0, sweep=False)
    threshold_mode: Literal["abs", "rel"] = setting("abs", "min_delta as an absolute change, or (rel) as a fraction of "
                                                           "the best value's size (0.01: a hundredth better)",
                                                    "stopping and the best model", sweep=False)
    restore_best: bool = setting(True, "restore the best weights at the end (off: keep the final ones)",
                                 "stopping and the best model", sweep=False)
    # where it trains
    device: str = setting("auto", "auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps", "device", shared=True,
                          resume="free")
    precision: Literal["32", "bf16-mixed", "16-mixed"] = setting(
        "32", "arithmetic of the forward pass and the loss: 32 (float32), bf16-mixed (bfloat16 under torch.autocast; "
              "CPU, or a GPU that has it) or 16-mixed (float16 with loss scaling; CUDA); weights, optimizer state and "
              "metrics stay float32",
        "device")
    threads: str = setting("auto", "intra-op threads on CPU: auto (train: chosen from the work of one step; "
                                   "montecarlo, compare, curve: one thread and every core each timed for an epoch, "
                                   "the faster kept) or a number", "device",
                                   placeholder="{auto,N}", shared=True,
                           resume="free")
    num_workers: int = setting(0, "worker processes that read a Dataset's items (0: the training process reads them)",
                               "device",
                               low=0, dataset=True)
    pin_memory: bool = setting(False, "collect a Dataset's batches in page-locked memory, for faster copies to a GPU",
                               "device", dataset=True)
    # output
    progress: bool = setting(True, "show a progress bar and epoch lines", "output", shared=True, resume="free")
    print_every: int = setting(0, "print an epoch line every this many epochs (0: about 20 lines in all)", "output",
                               low=0,
                               shared=True, resume="free", sweep=False)
    log: Literal["csv", "tensorboard"] = setting("csv", "live log of every validation in the run directory: "
                                                        "metrics.csv (always), and with tensorboard TensorBoard "
                                                        "scalars too (pip install riskmin[tensorboard])", "output",
                                                 command="train", sweep=False)
    out: str = setting("runs", "folder that holds run directories", "output", placeholder="FOLDER", one_value=True,
                       shared=True,
                       resume="free", sweep=False)
    name: str = setting("", "run directory name (default: data and model, numbered if taken unless --overwrite)",
                        "output", one_value=True,
                        shared=True, resume="free", sweep=False)
    overwrite: bool = setting(False, "replace an existing run directory of the same name", "output", shared=True,
                              resume="free")
    checkpoint_every: Optional[int] = setting(None, "write a checkpoint every this many epochs (0: only when "
                                                    "interrupted; default: at the end of an epoch once 30 s have "
                                                    "passed since the last)",
                                              "output", low=0, command="train", resume="free", sweep=False)
    # Monte-Carlo experiments
    runs: int = setting(100, "number of runs, run r on seed seed + r", "Monte-Carlo", low=1, command="montecarlo",
                        shared=True,
                        resume="free")
    engine: Literal["auto", "vectorized", "sequential"] = setting(
        "auto", "vectorized trains all runs as one stacked model; auto falls back to sequential when it must",
        "Monte-Carlo",
        command="montecarlo", resume="free")
    chunk: int = setting(0, "runs trained together by the vectorized engine (0: chosen from model and data size)",
                         "Monte-Carlo",
                         low=0, command="montecarlo", resume="free")
    stratify: bool = setting(True, "keep the class proportions in every split of a classification experiment",
                             "Monte-Carlo",
                             command="montecarlo", shared=True, resume="free", task="classification")
    folds: int = setting(0, "repeated k-fold: runs / folds repetitions of this many folds (0: random splits)",
                         "Monte-Carlo",
                         low=0, command="montecarlo", shared=True, resume="free")
    splits: str = setting("", "a file of given splits: .npz arrays train_0, val_0, test_0, train_1, ... or a CSV "
                              "with one line per split (see the README)", "Monte-Carlo", command="montecarlo",
                          placeholder="FILE", one_value=True, shared=True, resume="free")
    # fmt: on

    def __new__(cls, *args, **settings):
        # before the dataclass's __init__, whose TypeError for a misspelt keyword names no setting, and which would
        # take a value given by position for whichever setting comes first
        if args:
            given = args[0]
            raise RiskminError(
                f"Config takes each setting by name, as Config(lr=0.01); {given!r} was given without one"
                + ("; unpack a dict of settings with Config(**settings)" if isinstance(given, dict) else "")
            )
        for key in settings:
            _known_key(key, "setting")
        return super().__new__(cls)

    def __post_init__(self):
        if self.precision == 32 and type(self.precision) is int:  # precision=32 from Python or TOML means "32"
            object.__setattr__(self, "precision", "32")
        if isinstance(self.threads, int) and not isinstance(self.threads, bool):  # threads=1 from Python means "1"
            object.__setattr__(self, "threads", str(self.threads))
        if isinstance(self.hidden, int) and not isinstance(self.hidden, bool):
            object.__setattr__(self, "hidden", (self.hidden,))
        elif isinstance(self.hidden, list):
            object.__setattr__(self, "hidden", tuple(self.hidden))
        for name in ("target", "features"):  # several columns: kept as the one text that config.toml records
            if isinstance(getattr(self, name), (list, tuple)):
                object.__setattr__(self, name, _column_text(name, getattr(self, name)))
        for f in dataclasses.fields(self):
            _check_field(f, getattr(self, f.name))
        _check_together(self)

    @property
    def train_fraction(self) -> float:
        """The training fraction in force: `train`, or what `val` and `test` leave."""
        return self.train if self.train is not None else 1.0 - self.val - self.test

    @property
    def goal(self) -> Literal["min", "max"]:
        """ "min" or "max": `mode`, or with auto the way the monitored metric improves (a metric of the user's own has
        no auto, _check_mode).

        >>> Config().goal, Config(monitor="val_accuracy").goal, Config(monitor="val_own", mode="max").goal
        ('min', 'max', 'max')
        """
        if self.mode != "auto":
            return self.mode
        # a name riskmin does not measure under auto is none of the user's (_check_mode): the first validation refuses
        return direction(self.monitor) if base_metric(self.monitor) in METRICS else "min"  # type: ignore[return-value]

    @property
    def own_metrics(self) -> list:
        """The names of the user's own metrics, as `metrics` records them (name=module.function, ...).

        >>> Config(metrics="hits=pkg.m.hits, miss=pkg.m.miss").own_metrics
        ['hits', 'miss']
        """
        return [part.partition("=")[0].strip() for part in self.metrics.split(",") if part.strip()]

    def epochs_for(self, steps_per_epoch: int) -> int:
        """The epochs in force: `epochs` when set; else as many as `max_steps` take when that is set, else 100.

        >>> (Config(max_steps=250).epochs_for(100), Config(max_steps=250, epochs=2).epochs_for(100),
        ...  Config().epochs_for(100))
        (3, 2, 100)
        """
        if self.epochs is not None:
            return self.epochs
        return -(-self.max_steps // max(steps_per_epoch, 1)) if self.max_steps else DEFAULT_EPOCHS

    def replace(self, **changes) -> "Config":
        """A copy with some settings changed; unknown names are an error that suggests the right one."""
        for key in changes:
            _known_key(key, "setting")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def to_toml(self) -> str:
        """The settings as TOML, each on its line; the settings of the data set lab1 generates are left out, at their
        defaults, for other data, where they would read as the run's (n_outputs = 2 beside a table of one target). A
        batch_size or monitor left at its default (UNSET) is a comment: the file read back leaves it at the default,
        which fits a small table as it did or keeps the final weights without a validation split, where a line would
        give it. `overwrite` is left out: the file run again (--config)
        would replace the very result it came from.

        >>> "n_outputs" in Config(data="houses.csv").to_toml(), "n_outputs" in Config().to_toml()
        (False, True)
        >>> [line for line in Config().to_toml().splitlines() if "batch_size" in line]
        ['# batch_size = 32 (the default, left unset: a training split of fewer rows trains as one batch)']
        """
        lines = []
        for key, value in self.to_dict().items():
            if key == "overwrite":  # what a command was told to do with a folder, not a setting of what it wrote
                continue
            unused = key in GENERATOR and self.data != "lab1" and value == FIELDS[key].default
            unset = [does for kind, does in UNSET.items() if isinstance(value, kind)]
            if unset:
                lines.append(f"# {key} = {_toml_value(value)} (the default, left unset: {unset[0]})")
            elif value is not None and not unused:  # TOML has no null: an absent key means the default
                lines.append(f"{key} = {_toml_value(value)}")
        return "\n".join(lines) + "\n"

    @classmethod
    def from_dict(cls, values: dict, source: str = "settings") -> "Config":
        for key in values:
            _known_key(key, f"key in {source}")
        return cls(**values)

    @classmethod
    def from_toml(cls, path) -> "Config":
        return cls.from_dict(read_toml(path), source=str(path))


def read_toml(path) -> dict:
    """The settings of the TOML file at `path`; a data file it names by a relative path is found from the file's own
    folder, as the paths of a file of settings are wherever it is read from. (A run's own config.toml names its data
    file by its absolute path; a splits file stays as the flag gave it.) A monitor of val_loss is the default's, as
    runs wrote it before they wrote the default as a comment: such a run, without validation, keeps its final weights
    as it did, and a file that asks for val_loss beside val = 0 is read so too."""
    from ._paths import is_file_name

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RiskminError(f"config file {path} does not exist; check the path") from None
    except (OSError, UnicodeDecodeError) as error:
        raise RiskminError(f"config file {path} cannot be read ({error}); check the path and its permissions") from None
    try:
        values = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise RiskminError(f"config file {path} is not valid TOML ({error}); fix that line") from None
    named = values.get("data")
    if isinstance(named, str) and named and not os.path.isabs(named) and is_file_name(named, path.parent):
        values["data"] = str(path.parent / named)
    if values.get("monitor") == "val_loss":  # every config.toml held this line before riskmin kept the default apart
        values["monitor"] = DefaultMonitor("val_loss")  # (DefaultMonitor): a run without validation resumes as it began
    return values


FIELDS = {f.name: f for f in dataclasses.fields(Config)}
# help(Config), a notebook's tooltip and inspect read the settings from __init__'s signature, not __new__'s, each
# by name alone, as __new__ takes them
_settings = [
    p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
    for p in list(inspect.signature(Config.__init__).parameters.values())[1:]
]
setattr(Config, "__signature__", inspect.Signature(_settings))


GENERATOR = ("n_samples", "n_inputs", "n_outputs", "noise", "data_seed")  # the settings of the data set lab1 generates


@functools.cache
def settings_where(**facts) -> tuple:
    """The names of the settings whose field metadata holds every fact given (see FACTS), in Config's order.

    >>> settings_where(stackable=True)
    ('lr', 'momentum', 'weight_decay', 'scheduler', 'step_size', 'gamma')
    >>> settings_where(group="model")
    ('model', 'model_class', 'hidden', 'activation', 'dropout', 'bias')
    """
    return tuple(name for name, f in FIELDS.items() if all(f.metadata[key] == value for key, value in facts.items()))


def fact(name: str, key: str):
    """What setting `name`'s field metadata says of `key` (see FACTS).

    >>> fact("momentum", "applies")
    ('optimizer', ('sgd', 'rmsprop'))
    """
    return FIELDS[name].metadata[key]


@functools.cache
def field_type(name: str):
    """The declared type of a Config field, with Optional[...] unwrapped (worked out once per field)."""
    hint = type_hints()[name]
    if typing.get_origin(hint) is typing.Union:
        hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
    return hint


@functools.cache
def type_hints() -> dict:
    """Config's resolved annotations, worked out once: a costly call that the command line would pay once per flag."""
    return typing.get_type_hints(Config)


# arguments of one Python call that another may be given by mistake: said as such, not matched to a setting's name
ARGUMENTS = {
    "rope": "riskmin.compare",
    "select": "riskmin.compare",
    "metric": "riskmin.compare",
    "sizes": "riskmin.curve",
    "resume": "riskmin.fit, riskmin.montecarlo and riskmin.compare",
    "callbacks": "riskmin.fit",  # an experiment's runs train in stacks, where no callback could see one run
}


def _known_key(key: str, what: str) -> None:
    if key in ARGUMENTS and what == "setting":  # a keyword of a Python call
        raise RiskminError(f"{key} is not a setting but an argument of {ARGUMENTS[key]}, which this call does not take")
    if key in ARGUMENTS:  # a line of a settings file
        raise RiskminError(
            f"unknown {what} '{key}'; {key} is not a setting, and a file holds settings alone: give it on the command "
            f"line (--{key})"
        )
    if key not in FIELDS:
        # a loose match only where it begins as the key does (lrate: lr), so that a name unlike any is not offered one
        known = [*FIELDS, "callbacks"] if what == "setting" else list(FIELDS)  # fit's argument, misspelt callback=
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.6) or [
            name for name in difflib.get_close_matches(key, known, n=1, cutoff=0.5) if name[0] == key[:1]
        ]
        listed = "help(riskmin.Config) lists them" if what == "setting" else "run `riskmin train --help` for the list"
        hint = f"did you mean '{close[0]}'?" if close else listed
        raise RiskminError(f"unknown {what} '{key}'; {hint}")


def _check_field(f: dataclasses.Field, value) -> None:
    """Raise RiskminError unless `value` has the type of field `f` and, for a number, lies in its range."""
    kind = field_type(f.name)
    if value is None and f.default is None:
        return  # an optional setting left unset
    if typing.get_origin(kind) is Literal:
        _check_choice(f.name, typing.get_args(kind), value)
    elif kind is bool:
        _check_flag(f.name, value)
    elif kind is tuple:
        _check_widths(f.name, value)
    elif kind is str:
        _check_text(f.name, value)
    else:
        _check_number(f.name, kind, value)
        _check_range(f, value)


def _check_choice(name: str, allowed: tuple, value) -> None:
    if callable(value) and "custom" in allowed:
        raise RiskminError(
            f"{name} = {value!r} is not allowed in Config, which holds names; pass your own {name} to "
            f"riskmin.fit({name}=...) beside the config"
        )
    if value not in allowed:
        raise RiskminError(f"{name} = {value!r} is not allowed; choose one of {', '.join(allowed)}")


def _check_flag(name: str, value) -> None:
    if not isinstance(value, bool):
        raise RiskminError(f"{name} = {value!r} is not allowed; it must be true or false")


def _is_positive_int(value) -> bool:
    # bool is a subclass of int, but True is not a width
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _check_widths(name: str, value) -> None:
    if not isinstance(value, tuple) or not value or not all(_is_positive_int(v) for v in value):
        shown = ",".join(map(str, value)) if isinstance(value, tuple) and value else repr(value)  # as --hidden takes it
        raise RiskminError(f"{name} = {shown} is not allowed; give positive integer widths such as 64,64")


def _check_text(name: str, value) -> None:
    if not isinstance(value, str):
        columns = ', the column names comma separated, as "a,b"' if fact(name, "placeholder") == "COLUMNS" else ""
        raise RiskminError(f"{name} = {value!r} is not allowed; it must be text{columns}")


def _column_text(name: str, columns) -> str:
    """A list or tuple of column names as the comma-separated text setting `name` holds, a name quoted where its
    commas, quotes or edge spaces would split or trim it (the quoting the readers undo, _readers.column_names).

    >>> _column_text("target", ["Weight", "Waist, cm"])
    'Weight,"Waist, cm"'
    """
    if not columns or not all(isinstance(column, str) and column for column in columns):
        raise RiskminError(
            f"{name} = {columns!r} is not allowed; give column names as text, in a list or comma separated, as "
            '["a", "b"] or "a,b"'
        )
    return ",".join(quoted(column) for column in columns)


def quoted(name: str) -> str:
    """A column name as a comma-separated list of columns holds it (_data._readers.column_names reads it back): in
    double quotes when it holds a comma, a quote or edge spaces."""
    if "," in name or '"' in name or name != name.strip():
        return '"' + name.replace('"', '""') + '"'
    return name


def _check_number(name: str, kind: type, value) -> None:
    """Raise RiskminError unless `value` is a whole number (kind int) or a finite number (kind float); never a bool."""
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise RiskminError(f"{name} = {value!r} is not allowed; it must be a whole number")
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise RiskminError(f"{name} = {value!r} is not allowed; it must be a finite number")


def _check_range(f: dataclasses.Field, value) -> None:
    """Raise RiskminError when a number lies outside the [low, high] of its field (low excluded when low_open, high when
    high_open)."""
    low, high, low_open, high_open = (f.metadata[key] for key in ("low", "high", "low_open", "high_open"))
    if low is not None and (value <= low if low_open else value < low):
        bound = f"greater than {_bound(low)}" if low_open else f"at least {_bound(low)}"
        raise RiskminError(f"{f.name} = {value!r} is out of range; it must be {bound}")
    if high is not None and (value >= high if high_open else value > high):
        bound = f"less than {_bound(high)}" if high_open else f"at most {_bound(high)}"
        raise RiskminError(f"{f.name} = {value!r} is out of range; it must be {bound}")


def check_experiment(config: Config) -> None:
    """Refuse, before any run trains, an experiment (montecarlo, compare, curve) whose random splits hold no test rows
    to estimate the risk on, or whose last run would take a seed beyond the largest: run r takes seed + r, and each
    run's settings hold its own seed."""
    if config.test == 0 and not config.folds and not config.splits:
        raise RiskminError(
            "test = 0 leaves the experiment's splits no test rows to estimate the risk on; set --test 0.1 (test=0.1)"
        )
    last = config.seed + config.runs - 1
    if last > LARGEST_SEED:
        raise RiskminError(
            f"seed = {config.seed} with runs = {config.runs} gives the last run the seed {last}, beyond "
            f"{LARGEST_SEED}, the largest; choose a seed of at most {LARGEST_SEED - config.runs + 1}"
        )


def no_validation(needs: str, splits: str = "") -> str:
    """What a setting that judges by a validation split (`needs`: patience, monitor val_r2, ...) says where there is
    none: val = 0, or a split of the file `splits` without validation rows."""
    lacking, fix = (
        (f"a split of {splits} has no validation rows", "give every split a val column")
        if splits
        else ("val = 0", "set --val 0.1 (val=0.1)")
    )
    return (
        f'{needs} needs a validation split but {lacking}; {fix}, or --monitor loss (monitor="loss") to judge by the '
        "training loss"
    )


def given_settings(config: Config, given, flags: bool, trained=None) -> list:
    """What the settings the user gives (`given`, their names) tell, beyond their own checks: a mode that would keep
    the worst epoch of riskmin's metric (max of a loss, min of an accuracy), refused; and, returned, a note on each
    setting the others leave unused (momentum under adam, hidden under linear, a test fraction beside folds), which
    taken without a word would read as if it had acted. `flags`: in the command line's words, else Python's.
    `trained`: the configs that train, where they differ from `config` (a curve's models, a comparison's candidates,
    model "custom" for a module of one's own): a setting is noted when none of them uses it.

    >>> given_settings(Config(optimizer="adam", momentum=0.9), ["momentum", "optimizer"], flags=True)
    ['--momentum is not used with --optimizer adam, only with sgd or rmsprop']
    >>> given_settings(Config(hidden=(8,)), ["hidden"], flags=False, trained=[Config(model="custom")])
    ["hidden= is not used with model='custom', only with two_layer or mlp"]
    """
    trained = trained or [config]

    def named(name: str, value=None) -> str:
        return _named(name, flags, value)

    if {"mode", "monitor"} & set(given) and config.mode != "auto" and base_metric(config.monitor) in METRICS:
        natural = direction(config.monitor)
        if config.mode != natural:
            raise RiskminError(
                f"mode {config.mode} would keep the epoch with the {'highest' if config.mode == 'max' else 'lowest'} "
                f"{config.monitor}, the worst; set {named('mode', natural)}, or leave mode out for auto, which "
                "follows the monitored metric"
            )

    notes = []
    for name in given:
        if name not in FIELDS or getattr(config, name) == FIELDS[name].default:  # at its default it changes nothing
            continue
        if name in ("train", "val", "test", "folds", "stratify") and config.splits:
            notes.append(f"{named(name)} is not used beside {named('splits')}: the file gives each split's rows")
        elif name == "runs" and config.splits:
            notes.append(f"{named(name)} is not used beside {named('splits')}: each split of the file is a run")
        elif name in ("train", "test") and config.folds:
            notes.append(f"{named(name)} is not used beside {named('folds')}: each fold is the test set in turn")
        if not fact(name, "applies"):
            continue
        decider, where = fact(name, "applies")
        deciding = list(dict.fromkeys(getattr(c, decider) for c in trained))
        if not any(value in where for value in deciding):
            notes.append(
                f"{named(name)} is not used with {' or '.join(named(decider, value) for value in deciding)}, only with "
                f"{in_words(where)}"
            )
    return notes


def given_for_task(config: Config, given, task: str, flags: bool) -> list:
    """The notes on the settings the user gives (`given`) that mean something for one task only (their `task` fact)
    when the data, once read, is of the other (`task`: its task; "" where no rows are read, a Dataset's): stratify for
    a regression target. Only a setting that is on: stratify is on by default, and off asks for nothing the task
    leaves undone. `flags`: in the command line's words, else Python's.

    Rows held in memory (a task: not a Dataset's) leave the settings of a Dataset's DataLoader unused too.

    >>> given_for_task(Config(stratify=True), ["stratify"], "regression", flags=True)
    ['--stratify is not used with a regression target, only with classification']
    >>> given_for_task(Config(num_workers=2), ["num_workers"], "regression", flags=True)
    ['--num-workers is not used with rows held in memory, only with a torch Dataset, read item by item']
    """
    named = [name for name in dict.fromkeys(given) if name in FIELDS and task and getattr(config, name)]
    return [
        f"{_named(name, flags)} is not used with a {task} target, only with {fact(name, 'task')}"
        for name in named
        if fact(name, "task") not in (None, task)
    ] + [
        f"{_named(name, flags)} is not used with rows held in memory, only with a torch Dataset, read item by item"
        for name in named
        if fact(name, "dataset")
    ]


def said_for_task(config: Config, given, task: str) -> None:
    """`given_for_task` for a Python caller, once the data is read: the notes as RiskminNote warnings."""
    for note in given_for_task(config, given, task, flags=False):
        warn(note, RiskminNote)


def unused_by_sweep(given, flags: bool) -> list:
    """The note on the settings `given` that the sweep of lr-find (lr_find from Python) leaves unused, in the flags' or
    the keywords' words.

    >>> print(*unused_by_sweep(["out", "optimizer", "epochs"], flags=True))
    --out and --epochs are not used by lr-find, which sweeps the rate over --steps and writes only its picture (--plot)
    """
    names = [_named(name, flags) for name in dict.fromkeys(given) if name in FIELDS and not fact(name, "sweep")]
    if not names:
        return []
    listed = in_words(names, "and")
    sweep = (
        "lr-find, which sweeps the rate over --steps and writes only its picture (--plot)"
        if flags
        else ("lr_find, which sweeps the rate over steps= and draws it with plot()")
    )
    return [f"{listed} {'are' if len(names) > 1 else 'is'} not used by {sweep}"]


def unused_by_experiment(given) -> list:
    """The note on the settings `given` to an experiment from Python that only a run of one's own uses (the command
    line refuses their flags beside an experiment, as another command's).

    >>> print(*unused_by_experiment(["log", "runs"]))
    log= is not used by an experiment, which keeps no directory of each run's own; fit uses it
    """
    names = [
        _named(name, False) for name in dict.fromkeys(given) if name in FIELDS and fact(name, "command") == "train"
    ]
    if not names:
        return []
    return [
        f"{in_words(names, 'and')} {'are' if len(names) > 1 else 'is'} not used by an experiment, which keeps no "
        f"directory of each run's own; fit uses {'them' if len(names) > 1 else 'it'}"
    ]


def _named(name: str, flags: bool, value=None) -> str:
    """A setting (with a value) as the user gave it: a flag (--momentum 0.9), else a keyword (momentum=0.9)."""
    if flags:
        return f"--{name.replace('_', '-')}" + ("" if value is None else f" {value}")
    return f"{name}=" + ("" if value is None else repr(value))


def called_with(call: str, config, settings: dict, **placed) -> Config:
    """The Config a Python call of riskmin.`call` trains with: `config` (None: the defaults) under the keyword
    `settings`. A config that is not a Config (a dict, say), or a Config given in the place of another argument
    (`placed`: those arguments, by name: montecarlo's runs, taken third where fit takes its config), is refused in one
    sentence that says how to pass it.

    >>> called_with("fit", Config(lr=0.1), {"epochs": 3}).lr
    0.1
    """
    for name, value in placed.items():
        if isinstance(value, Config):
            what = {"runs": "number of runs", "sizes": "training sizes"}.get(name, name)
            raise RiskminError(
                f"{name} is a Config, where riskmin.{call} takes its {what}; pass the Config by name: "
                f"riskmin.{call}(..., config=Config(...))"
            )
    if config is not None and not isinstance(config, Config):
        raise RiskminError(
            f"config is a {type(config).__name__}, not a riskmin.Config; pass riskmin.Config(...), or the settings "
            f"themselves as keywords: riskmin.{call}(..., lr=0.1)"
        )
    return (config or Config()).replace(**settings)


def said_given(config: Config, given, models=(), trained=None, whole: bool = False) -> None:
    """`given_settings` for a Python caller: the notes as RiskminNote warnings. `models`: what trains, where
    config.model does not say it (a name, or a module or a factory of one's own); or `trained`, the configs that
    train. `whole`: a Config was passed, whose mode is given too (not when it is a saved run's, to resume)."""
    given = [*given, *(("mode",) if whole else ())]
    if not given:
        return
    if not trained and any(name in FIELDS and fact(name, "applies") for name in given):  # what the notes look at
        trained = [config.replace(model=m if isinstance(m, str) else "custom") for m in models] or None
    for note in given_settings(config, given, flags=False, trained=trained):
        warn(note, RiskminNote)


def _bound(value) -> str:
    """A range's end as a message says it: a whole number in full (a seed's 9223372036854775807), others shortest."""
    return str(value) if isinstance(value, int) else f"{value:g}"


def _check_together(c: Config) -> None:
    train = c.train_fraction
    total = train + c.val + c.test
    if c.train is None and train <= 1e-9:  # training takes what validation and test leave: nothing
        raise RiskminError(
            f"split fractions val={c.val:g} and test={c.test:g} sum to {c.val + c.test:g}, which leaves no rows to "
            "train on; lower them to sum to less than 1"
        )
    if train <= 0 or total > 1 + 1e-9:
        raise RiskminError(
            f"split fractions train={train:g}, val={c.val:g}, test={c.test:g} sum to {total:g}, more than all the "
            "rows; lower them to sum to at most 1, with train above 0"
        )
    if c.model == "two_layer" and len(c.hidden) != 1:
        raise RiskminError(
            f"hidden = {','.join(map(str, c.hidden))} gives two_layer {len(c.hidden)} widths; it takes "
            "one (use model mlp for more)"
        )
    _check_log_target(c)
    _check_mode(c)
    if c.nesterov and (c.optimizer != "sgd" or c.momentum == 0):
        raise RiskminError(
            "nesterov = true needs optimizer sgd with momentum above 0; set --momentum 0.9 (momentum=0.9) or drop "
            "--nesterov (nesterov=False)"
        )
    if c.scheduler_interval == "step" and c.scheduler == "plateau":
        raise RiskminError(
            'scheduler plateau follows the validations; drop --scheduler-interval step (scheduler_interval="epoch")'
        )
    if not c.device.startswith(("auto", "cpu", "cuda", "mps")):
        raise RiskminError(f"device = {c.device!r} is not allowed; choose auto, cpu, cuda, cuda:N or mps")
    if c.threads != "auto" and not (c.threads.isdigit() and int(c.threads) >= 1):
        raise RiskminError(f"threads = {c.threads!r} is not allowed; give auto or a whole number of at least 1")
    if "/" in c.name or c.name in (".", ".."):
        raise RiskminError(f"name = {c.name!r} is not allowed; a run name is a plain folder name without '/'")


def _check_mode(c: Config) -> None:
    """Refuse mode auto for a metric of the user's own, whose direction riskmin cannot know. (A mode that keeps the
    worst epoch of riskmin's metric is refused where the user gives it, `given_settings`: a run saved before mode
    followed its metric holds one, and still loads.)"""
    if c.mode == "auto" and base_metric(c.monitor) in c.own_metrics:
        raise RiskminError(
            f"monitor {c.monitor} is a metric of your own, which riskmin cannot tell should go down or up; set "
            "--mode min or --mode max (mode=)"
        )


def _check_log_target(c: Config) -> None:
    """Refuse target_transform log where the settings alone show it cannot apply: classes, or a loss of the user's own
    (a target read as classes under loss auto is refused once the data is read, _losses.check_log_target)."""
    if c.target_transform != "log":
        return
    if c.task == "classification" or c.loss in ("cross_entropy", "bce"):
        classes = "task classification" if c.task == "classification" else f"loss {c.loss}"
        raise RiskminError(
            f"target_transform log is for a positive regression target, but {classes} is for classes; "
            'drop --target-transform log (target_transform="none")'
        )
    if c.loss == "custom":
        raise RiskminError(
            "target_transform log trains riskmin's regression losses (mse, l1, huber) on log(y), but a "
            "loss of your own sees the targets in their own units; take the logarithm inside your loss "
            'and drop --target-transform log (target_transform="none")'
        )


def _plain(value):
    return list(value) if isinstance(value, tuple) else value


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(value)  # a JSON string is a valid TOML basic string
