"""A run's inputs made ready to train on: data as Splits, rows standardized and on the device,
batches, evaluation sources, the model and the device; and the evaluation pass over them."""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Optional

import numpy as np
import torch
from torch import nn
from torch.utils.data import BatchSampler, DataLoader, Dataset, IterableDataset, Subset

from .._data import _frames as frames
from .. import datasets, models
from ._checks import check_pairs
from ..config import FIELDS, Config, DefaultBatch, RiskminError, fact
from .._paths import GIVEN_IN_PYTHON, is_file_name
from .._data._inputs import each_input, forward, is_several, n_rows
from ..data import (
    Data,
    LoaderBatches,
    Splits,
    Standardizer,
    TargetScale,
    check_parts,
    constant_note,
    TensorBatches,
    rows_at,
    schedule,
    split as split_indices,
    to_device,
    tutorial_split,
)
from ._losses import check_log_target, check_targets
from ._callables import user_metric, step_sums
from ..metrics import REGRESSION, evaluation_sums, finish_metrics

EVAL_CHUNK = 65536  # rows per forward pass when evaluating: bounds memory on large splits


class Prepared:
    """The splits made ready for training: rows standardized and on the device once, sources to iterate."""

    def __init__(self, splits: Splits, config: Config, device: torch.device, team=None, metrics: Optional[dict] = None):
        self.device, self.team = device, team
        self.tensors = isinstance(splits.data, Data)
        self.splits = splits
        self.standardizer = None
        # what the training split holds that a model cannot learn from (constant columns, a constant target), said by
        # setup once every check passed, and not by a run of an experiment, which says it once for all its runs
        self.notes: list = []
        self.names = {}
        # a Dataset's targets are class labels, whose count a named model's outputs need (as_model)
        self.labels = False
        if isinstance(splits.data, Data):
            self.in_memory(splits.data, splits, config, device)
        else:
            self.from_dataset(splits.data, splits, config, device)
        self.has_val = "val" in self.sources
        # model(*x) or model(**x)
        self.several = is_several(splits.data.x) if isinstance(splits.data, Data) else is_several(splits.data[0][0])
        # the user's own, by name
        self.metrics = {name: user_metric(name, fn, self.target) for name, fn in (metrics or {}).items()}

    def in_memory(self, data: Data, splits: Splits, config: Config, device: torch.device) -> None:
        """The rows of each split gathered once, standardized with the training rows' statistics, on the device."""
        # every row's target, val and test ones too, has a logarithm
        check_log_target(config, data.y, data.target_names)
        gathered = {
            part: (each_input(lambda t: rows_at(t, idx), data.x), rows_at(data.y, idx))
            for part, idx in (("train", splits.train), ("val", splits.val), ("test", splits.test))
            if len(idx)
        }
        # several inputs (images, token ids, ...) are used as given: an identity standardizer keeps the target's scale
        self.standardizer = (
            Standardizer(torch.zeros(0), torch.ones(0))
            if data.several
            else Standardizer.fit(gathered["train"][0], data.onehot(), config.standardize, data.missing == "mean")
        )
        self.standardizer.target = target = target_scale(gathered["train"][1], config)
        constant = (
            constant_note(data.feature_names, [self.standardizer.constant]),
            constant_target_note([gathered["train"][1]], config.loss),
            unequal_targets_note(gathered["train"][1], data.target_names, config),
        )
        self.notes = [note for note in constant if note]
        self.rows = {
            part: (
                to_device(self.standardizer(x, in_place=True), device),
                (y if target is None else target(y)).to(device),
            )
            for part, (x, y) in gathered.items()
        }
        self.sources = {part: chunks(*self.evaluated(x, y, part)) for part, (x, y) in self.rows.items()}
        self.n_inputs, self.n_outputs = data.n_features, data.n_targets
        self.names = {
            "features": data.feature_names,
            "targets": data.target_names,
            "data": data.name,
            "task": data.task,
            "layout": data.layout,
            "classes": data.classes,
            "missing": data.missing,
            "csv_form": list(data.csv_form),
            "loss": config.loss,
        }
        check_targets(config.loss, data.y)

    def from_dataset(self, dataset: Dataset, splits: Splits, config: Config, device: torch.device) -> None:
        """Evaluation sources over the rows of each split of a Dataset, read through DataLoaders."""
        if config.target_transform == "log":
            raise RiskminError(
                "target_transform log takes data held in memory (a table, arrays, riskmin.Data), "
                "whose targets it checks and transforms once; for a Dataset, return log(y) from its "
                "items instead"
            )
        self.sources = {
            part: eval_loader(dataset, self.evaluated(idx, None, part)[0], config, device)
            for part, idx in (("train", splits.train), ("val", splits.val), ("test", splits.test))
            if len(idx)
        }
        x0, y0 = dataset[0]
        inputs = x0.values() if isinstance(x0, dict) else x0 if is_several(x0) else [x0]
        self.n_inputs = sum(torch.as_tensor(t).numel() for t in inputs)
        y0 = torch.as_tensor(y0)
        self.labels = config.loss == "cross_entropy" and y0.numel() == 1 and not y0.is_floating_point()
        listed = listed_labels(dataset) if self.labels else None
        self.n_outputs = class_count(listed) if listed is not None else max(y0.numel(), 1)

    @property
    def target(self) -> Optional[TargetScale]:
        """How the regression target is standardized for training; None when it is not."""
        return None if self.standardizer is None else self.standardizer.target

    @property
    def scale(self) -> Optional[float]:
        """The scale of a standardized regression target, by which the metrics are converted back; None when not
        standardized."""
        return None if self.target is None else self.target.scale

    def first_inputs(self, rows: int = 256):
        """The inputs of the first training rows (at most `rows`), on the device: what a look at the model's outputs
        takes."""
        x = self.rows["train"][0] if self.tensors else next(iter(self.sources["train"]))[0]
        return each_input(lambda t: t[:rows], x)

    def evaluated(self, x, y, part: str) -> tuple:
        """The rows of a split this process evaluates: all of them, or under torchrun its share, summed across after."""
        if self.team is None or self.team.world == 1:
            return x, y
        if n_rows(x) < self.team.world:
            raise RiskminError(
                f"the {part} split has {n_rows(x)} rows, fewer than the {self.team.world} processes; "
                "use fewer processes or a larger split"
            )
        return each_input(self.team.shard, x), None if y is None else self.team.shard(y)

    def batches(self, config: Config):
        generator = torch.Generator().manual_seed(order_seed(config.seed))
        if isinstance(self.splits.data, Data):
            x, y = self.rows["train"]
            return TensorBatches(x, y, config.batch_size, generator, config.sampling, config.drop_last)
        return LoaderBatches(
            self.splits.data,
            self.splits.train,
            config.batch_size,
            generator,
            self.device,
            config.drop_last,
            reading(config),
        )

    def final_metrics(self, model, loss_fn, loss_name, known: Optional[dict] = None) -> dict:
        """Loss and metrics of every split; a split whose metrics are `known` (val_loss, ...) for these weights is not
        run again."""
        metrics, known = {}, known or {}
        for part, source in self.sources.items():
            if f"{part}_loss" in known:
                metrics.update({k: v for k, v in known.items() if k.startswith(f"{part}_")})
                continue
            metrics.update(
                evaluate_batches(
                    model,
                    source,
                    loss_fn,
                    loss_name,
                    prefix=f"{part}_",
                    team=self.team,
                    target=self.target,
                    metrics=self.metrics,
                )
            )
        for part in ("train", "val", "test"):
            metrics.setdefault(f"{part}_loss", None)
        return metrics


def batches_per_epoch(splits: Splits, config: Config) -> int:
    """How many batches `Prepared.batches` cuts an epoch of the training split into, known before the rows are prepared
    (so that the settings are final first): as data.schedule cuts rows in memory, as a DataLoader batches a Dataset."""
    rows = len(splits.train)
    if isinstance(splits.data, Data):
        return schedule(rows, config.batch_size, config.sampling, config.drop_last)[1]
    return len(BatchSampler(range(rows), config.batch_size or rows, config.drop_last))


def target_scale(y: torch.Tensor, config: Config) -> Optional[TargetScale]:
    """How a regression target is standardized (and with target_transform log, transformed) for training (None: it is
    neither)."""
    return TargetScale.of_training(y, config) if TargetScale.asked(config) else None


def as_they_are_note(data, config: Config) -> str:
    """What `standardize` leaves as it is: a Dataset's items, which riskmin reads batch by batch, never whole to fit a
    scaling on, and several inputs held in memory, whose shapes and kinds (indices, images) no one scaling fits; ""
    for one input in memory, which it scales.

    >>> as_they_are_note(Data(torch.zeros(4, 1), torch.zeros(4, 1)), Config())
    ''
    >>> as_they_are_note(Data((torch.zeros(4, 1),), torch.zeros(4, 1)), Config()).split(":")[0]
    'several inputs reach the model as they are'
    """
    if not config.standardize or (isinstance(data, Data) and not data.several):
        return ""
    if isinstance(data, Data):
        return (
            "several inputs reach the model as they are: standardize scales x given as one tensor (or array, or "
            "table); scale each input before fit where its features are on different scales, or pass "
            "standardize=False to leave this unsaid"
        )
    return (
        "a Dataset's items reach the model as they are, inputs and targets: standardize scales data held in memory "
        "(tensors, arrays, tables); scale them in the Dataset, or give them as (x, y)"
    )


def constant_target_note(targets: list, loss: str) -> str:
    """What to say of a regression target constant on the training split of one run, or of runs of an experiment
    (`targets`: each run's training targets); "" when it varies on every one.

    >>> constant_target_note([torch.ones(3, 1)], "mse").split(";")[0]
    'the target is constant on the training split (every value 1)'
    >>> constant_target_note([torch.ones(3, 1), torch.arange(3.0)[:, None]], "mse").split(";")[0]
    'the target is constant on the training split of 1 of the 2 runs'
    """
    if loss not in REGRESSION:
        return ""
    constant = [y for y in targets if len(y) > 1 and bool((y == y[:1]).all())]
    if not constant:
        return ""
    if len(targets) == 1:
        return (
            f"the target is constant on the training split (every value {float(constant[0].flatten()[0]):g}); a "
            "model can only learn that constant, and r2 is undefined"
        )
    share = "every run" if len(constant) == len(targets) else f"{len(constant)} of the {len(targets)} runs"
    return (
        f"the target is constant on the training split of {share}; a model can only learn that constant there, and "
        "r2 is undefined"
    )


# target columns whose spreads differ by this factor or more: a loss over all of them weighs the wider one's errors
# a hundred times as much or more, and the narrower one is learned little (r2 -140 beside 0.61 on diabetes' target
# given twice, once in thousandths)
UNEQUAL_SPREADS = 10.0


def unequal_targets_note(y: torch.Tensor, names: list, config: Config) -> str:
    """What to say of regression target columns on scales far apart (`y`: the training targets): one loss over all of
    them, mse in their units or standardized by one scale (TargetScale), weighs the wide column's errors by the square
    of the ratio; "" when they are comparable, one column, or on the log scale (whose spreads units do not set).

    >>> unequal_targets_note(torch.tensor([[100.0, 0.1], [300.0, 0.2]]), ["price", "size"], Config(loss="mse"))[:58]
    'target columns price and size spread 100 and 0.05: the mse'
    """
    if config.loss not in REGRESSION or config.target_transform == "log" or y.ndim != 2 or y.shape[1] < 2:
        return ""
    spreads = y.double().std(0, correction=0)
    wide, narrow = int(spreads.argmax()), int(spreads.argmin())
    ratio = float(spreads[wide] / spreads[narrow]) if spreads[narrow] > 0 else 0.0
    if ratio < UNEQUAL_SPREADS:
        return ""
    return (
        f"target columns {names[wide]} and {names[narrow]} spread {float(spreads[wide]):.3g} and "
        f"{float(spreads[narrow]):.3g}: the {config.loss} of all targets weighs {names[wide]}'s errors {ratio**2:.3g} "
        f"times as much as {names[narrow]}'s, which is learned little; give the targets in comparable units (divide "
        f"{names[wide]} by {ratio:.3g}), or train them apart"
    )


def order_seed(seed: int) -> int:
    """The seed of the batch-order generator, derived from the run's seed so it differs from the split's."""
    return int(np.random.SeedSequence([seed, 1]).generate_state(1)[0])


def chunks(x, y: torch.Tensor) -> list:
    return [
        (each_input(lambda t: t[i : i + EVAL_CHUNK], x), y[i : i + EVAL_CHUNK]) for i in range(0, len(y), EVAL_CHUNK)
    ]


def reading(config: Config) -> dict:
    """How a DataLoader reads a Dataset's items: in worker processes and into pinned memory, as asked. The order of the
    batches is drawn in the training process either way; workers are started each epoch, not kept (persistent workers
    draw the loader's seed once, not per epoch, and so would change the order of every later epoch)."""
    return {"num_workers": config.num_workers, "pin_memory": config.pin_memory}


def eval_loader(dataset, rows, config: Config, device):
    loader = DataLoader(Subset(dataset, rows.tolist()), batch_size=max(config.batch_size, 1024), **reading(config))
    if len(rows) > EVAL_CHUNK:
        return OnDevice(loader, device)
    return [(to_device(x, device), y.to(device)) for x, y in loader]


class OnDevice:
    """The batches of a DataLoader moved to `device` as they come."""

    def __init__(self, loader, device):
        self.loader, self.device = loader, device

    def __iter__(self):
        return ((to_device(x, self.device), y.to(self.device)) for x, y in self.loader)


@torch.no_grad()
def evaluate_batches(
    model,
    source,
    loss_fn,
    loss_name: str,
    prefix: str = "",
    switches_mode: Optional[bool] = None,
    team=None,
    target: Optional[TargetScale] = None,
    metrics: Optional[dict] = None,
) -> dict:
    """Mean loss and metrics of `model` over (x, y) batches, read from the device once; under torchrun, over every
    process' batches. `target`: how the targets were standardized (data.TargetScale); the metrics come back in the
    target's units, a log target's measured on the outputs and targets restored (exp), its loss on the log scale.
    `metrics`: the user's own, name -> function (output, target) -> mean over the batch, weighted by rows here."""
    was_training = model.training
    # whether eval() could change the outputs
    switches_mode = not models.mode_free(model) if switches_mode is None else switches_mode
    if switches_mode:
        model.eval()
    sums, rows = {}, 0
    restore = target.restore if target is not None and target.log else None
    # the model computes its own loss (and sums, by validation_step)
    has_training_step = hasattr(model, "training_step")
    for index, (x, y) in enumerate(source):
        values = (
            step_sums(model, (x, y), len(y), index)
            if has_training_step
            else batch_sums(model, x, y, loss_fn, loss_name, metrics, restore)
        )
        for key, value in values.items():
            sums[key] = sums[key] + value if key in sums else value
        rows += len(y)
    if switches_mode:
        model.train(was_training)
    if not rows:
        return {}
    add = None if team is None or team.world == 1 else team.add
    scale = None if target is None else target.scale
    finished = finish_metrics(loss_name, sums, rows, add, scale=scale, restored=restore is not None)
    return {prefix + k: v for k, v in finished.items()}


def batch_sums(model, x, y, loss_fn, loss_name: str, metrics: Optional[dict], restore=None) -> dict:
    """The sums over one batch from which evaluation makes the loss and metrics (metrics.evaluation_sums, and the
    user's own metrics weighted by the rows). `restore`: a log target's way back to its own units, in which the metrics
    are summed (in float64: exp magnifies float32's rounding)."""
    output = forward(model, x)
    back = None if restore is None else lambda z: restore(z.double())
    values = evaluation_sums(loss_name, output, y, loss_fn, len(y), back)
    for name, metric in (metrics or {}).items():
        values["own:" + name] = metric(output, y) * len(y)
    return values


def as_data(data, config: Config):
    """A data set name or a file's path (a str or a pathlib.Path), a DataFrame (with config.target) or an (x, y) pair
    as Data; anything else as it is."""
    if isinstance(data, (str, bytes, os.PathLike)):
        return datasets.load(data, config)
    if frames.is_frame(data):
        return frames.for_python(lambda: frames.frame_data(data, config))
    pair = isinstance(data, (tuple, list))
    columns = pair and len(data) == 2 and frames.is_frame(data[0])  # a DataFrame x: target= and features= name its
    if (pair and not columns or isinstance(data, Dataset)) and (config.target or config.features):
        kind = "(x, y)" if pair else "a Dataset"
        raise RiskminError(
            f"target= and features= choose columns of a table (a file or a DataFrame); data given as {kind} has "
            "none: leave them out"
        )
    if isinstance(data, (tuple, list)) and len(data) == 2:
        x, y = data
        return frames.for_python(lambda: frames.as_pair(x, y, config))
    if isinstance(data, IterableDataset):  # no length and no index: no split can draw its rows
        raise RiskminError(
            "data is an IterableDataset, whose items have no index to split by; give a map-style Dataset "
            "(__len__ and __getitem__), or the rows as (x, y)"
        )
    check_task(data, config)
    return data


def split(
    data, train: Optional[float] = None, val: float = 0.1, test: float = 0.1, seed: int = 0, **settings
) -> Splits:
    """riskmin.split: the samples of `data` shuffled with `seed` and cut into train, validation and test index sets,
    the splits a fit with the same seed and fractions trains on (data.split). `data`: anything fit takes (Data, a
    Dataset, a name, a file's path, a DataFrame with target=, (x, y)), read as fit reads it with the `settings` that
    read data (target=, features=, task=, ...), and split="tutorial" for a data set's own split, as fit takes them.

    >>> split("lab1", val=0.2, test=0.2, seed=1).sizes()
    {'train': 600, 'val': 200, 'test': 200}
    """
    if isinstance(data, Splits):
        raise RiskminError("data is Splits already; give fit the Splits, or split the data they index (splits.data)")
    other = [name for name in settings if name != "split" and name in FIELDS and fact(name, "group") != "data"]
    if other:
        raise RiskminError(
            f"{other[0]}= is a setting of the training, not of the split; give it to fit (split takes target=, "
            "features=, task=, missing= and the settings of a synthetic data set, and split=)"
        )
    read = Config().replace(**settings)
    if not isinstance(data, (Data, Dataset)) or settings:
        data = as_data(data, read)
    if read.split == "tutorial":
        return tutorial_split(data)
    return split_indices(data, train, val, test, seed)


def check_task(data, config: Config) -> None:
    """Refuse a task given beside riskmin.Data whose targets were read as the other one: it cannot be read again. Real
    numbers are classification targets as they are for loss="bce" (0/1, one column a label)."""
    bce = config.task == "classification" and config.loss == "bce"
    if isinstance(data, Data) and config.task not in ("auto", data.task) and not bce:
        raise RiskminError(
            f"task={config.task!r} does not match the riskmin.Data given, whose targets were read as {data.task}; "
            "leave task out, or pass (x, y) with task= to have y read so"
        )


def recorded(config: Config, data) -> Config:
    """`config` with `data` saying what a run or experiment was given, as its config.toml records it: a data set's
    name, or a file's absolute path (found from any folder by --config and --resume), also for Data read from one,
    with the settings that read it (its `source`: what the command line passes once it has read its file). Else the
    setting says what the object was ("DataFrame given in Python"), which a file of settings cannot name, rather than
    the default data set, on which `riskmin train --config` would train without a word. A file of splits is recorded by
    its absolute path too, so that --resume and --config from another folder read the same file."""
    if config.splits and not os.path.isabs(config.splits):
        config = config.replace(splits=os.path.abspath(config.splits))
    if isinstance(data, (str, bytes, os.PathLike)):
        name = os.fsdecode(data)
        return config.replace(data=os.path.abspath(name) if is_file_name(name) else name)
    named = data.data if isinstance(data, Splits) else data
    if isinstance(named, Data) and named.source:  # read by riskmin: the settings that read it, which read it again
        return config.replace(**named.source)
    kind = "(x, y)" if isinstance(data, (tuple, list)) else type(data).__name__
    return config.replace(data=f"{kind} {GIVEN_IN_PYTHON}")


def as_splits(data, config: Config) -> Splits:
    """Whatever the user passed as data, as Splits made with the run's seed and fractions."""
    if isinstance(data, Splits):  # made by hand, maybe: its rows checked, and taken as tensors
        check_task(data.data, config)
        given = {"train": data.train, "val": data.val, "test": data.test}
        indexed: Any = data.data  # Data, or a Dataset of a length
        rows = check_parts(given, len(indexed), "the split given")
        return dataclasses.replace(
            data, data=data.data if isinstance(data.data, Data) else check_pairs(data.data), **rows
        )
    data = as_data(data, config)
    if isinstance(data, Data):
        if config.split == "tutorial":
            return tutorial_split(data)
        return split_indices(data, config.train, config.val, config.test, config.seed)
    if isinstance(data, Dataset):
        return split_indices(check_pairs(data), config.train, config.val, config.test, config.seed)
    raise RiskminError(
        f"data of type {type(data).__name__} is not supported; pass a data set name or a file's path, a DataFrame with "
        "target=, riskmin.Data, (x, y) tensors or arrays, Splits or a torch Dataset"
    )


def fitted_batch(config: Config, train_rows: int, where: str = "the training split") -> tuple:
    """(`config` with a batch its `train_rows` hold, the note that says so or ""): the default batch_size, larger than
    a small table's training rows, becomes the whole split (as the scikit-learn estimators do); one given and larger,
    the default's value too (anything but the field's own DefaultBatch), is refused (check_batch_size). The caller
    says the note once its data passed every check, so that a mistake found after this one is still the one line
    said."""
    if isinstance(config.batch_size, DefaultBatch) and 0 < train_rows < config.batch_size:
        note = (
            f"{where} has {train_rows} rows, fewer than the default batch of {config.batch_size}; batch_size 0 is "
            "used: each step takes its whole training split"
        )
        return config.replace(batch_size=0), note
    check_batch_size(config, train_rows, where)
    return config, ""


def check_batch_size(config: Config, train_rows: int, where: str = "the training split") -> None:
    """Refuse a batch larger than the training split of in-memory data, for every engine alike; `where` names the
    rows (a learning curve names its smallest size)."""
    if config.batch_size > train_rows:
        raise RiskminError(
            f"batch_size = {config.batch_size} is larger than {where} ({train_rows} "
            f"samples); use at most {train_rows}, or 0 for the whole split"
        )


def listed_labels(dataset) -> Optional[torch.Tensor]:
    """The class labels a Dataset lists, one an item (`targets`, as torchvision's data sets list them), where they are
    what its items give: whole numbers, and no target_transform between; else None."""
    listed = getattr(dataset, "targets", None)
    if getattr(dataset, "target_transform", None) is not None or not isinstance(
        listed, (list, torch.Tensor, np.ndarray)
    ):
        return None
    if len(listed) != len(dataset):
        return None
    whole = (
        all(type(label) is int for label in listed)
        if isinstance(listed, list)
        else listed.dtype.kind in "iu"
        if isinstance(listed, np.ndarray)
        else not (listed.is_floating_point() or listed.is_complex() or listed.dtype == torch.bool)
    )
    return torch.as_tensor(listed).reshape(-1) if whole else None


def class_count(labels: torch.Tensor) -> int:
    """The outputs class indices `labels` need, 0 to the largest, two at least (cross entropy's fewest)."""
    return max(int(labels.max()) + 1, 2) if labels.numel() else 2


def as_model(model, prepared: Prepared, config: Config) -> nn.Module:
    if isinstance(model, str) and prepared.several:
        raise RiskminError(
            f"model {model} takes one input tensor but x is several (a tuple or dict of tensors); pass "
            "an nn.Module of your own whose forward takes them"
        )
    if isinstance(model, str):
        data: Any = prepared.splits.data  # a Dataset here: indexed, and of a length
        outputs = prepared.n_outputs  # checked_model records the built model's, which this count sets
        if prepared.labels and listed_labels(data) is None:  # read from every item once: the first need not hold all
            outputs = class_count(torch.stack([torch.as_tensor(data[i][1]).reshape(()) for i in range(len(data))]))
        return models.build(config, prepared.n_inputs, outputs)
    if isinstance(model, nn.Module):
        return model
    raise RiskminError(
        f"model of type {type(model).__name__} is not supported; pass an nn.Module or one of linear, two_layer, mlp"
    )


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RiskminError(f"device = {name} but this machine has no CUDA GPU; use --device cpu or auto (device=)")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise RiskminError("device = mps but MPS is not available here; use --device cpu or auto (device=)")
    try:
        return torch.device(name)
    except RuntimeError:  # "cpux", "cuda:x": torch's own words are a traceback
        raise RiskminError(f"device = {name!r} is not a device; choose auto, cpu, cuda, cuda:N or mps") from None
