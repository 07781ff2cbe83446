"""Data, random splits, standardization and fast batching of in-memory tensors.

A split is a set of index tensors, never a copy of the data. The training loop
moves the rows it needs to the training device once and takes each batch by
slicing an epoch's permuted copy, so no per-sample `__getitem__` or collate runs.
Any `torch.utils.data.Dataset` still works, through a standard DataLoader.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterator, Optional, Sequence, Union, cast

import torch
from torch.utils.data import DataLoader, Dataset, Subset

from .config import Config, RiskminError
from .metrics import REGRESSION
from ._data._inputs import each_input, input_tensors, is_several, n_rows, several_inputs

__all__ = [
    "Data",
    "LoaderBatches",
    "Splits",
    "Standardizer",
    "TargetScale",
    "TensorBatches",
    "split",
    "split_sizes",
    "tutorial_split",
]


@dataclass
class Data:
    """Samples as float32 `x` (samples x features) and `y` (samples x targets, or class indices).

    `x` may also be several inputs, a tuple or a dict of tensors with one row per sample each,
    which a model takes as model(*x) or model(**x); they are used as given (no feature scaling).

    >>> d = Data(torch.zeros(5, 3), torch.zeros(5, 1)); (d.n_features, d.n_targets)
    (3, 1)
    """

    x: Union[torch.Tensor, tuple, dict]
    y: torch.Tensor
    feature_names: list = field(default_factory=list)
    target_names: list = field(default_factory=list)
    name: str = "data"
    tutorial_split: Optional[tuple] = None  # (train, val) index tensors of a data set's own fixed split
    layout: Optional[list] = None  # a table's feature columns and their categories (see _data/_readers.py)
    classes: Optional[list] = None  # class names, for class-index targets
    task: str = ""  # regression or classification; empty: judged from y
    missing: str = "error"  # "mean": NaN in x are missing values, filled with training-split means
    # (the column separator, the decimal mark) of the CSV file it was read from, with which predict reads a file
    # separated the same way; empty for other data
    csv_form: tuple = ()
    notes: list = field(default_factory=list)  # what reading the data guessed or did, to tell the user
    # the settings that read it, which config.toml records: the data set's name and its own settings, or the file's
    # absolute path, columns, task and missing-value rule; empty for data built in Python
    source: dict = field(default_factory=dict)
    # the labels of the rows as given (a pandas DataFrame's index), by which a refused value's row is named; None: by
    # its position
    row_labels: Optional[Sequence] = field(default=None, repr=False)

    def __post_init__(self):
        self.y = torch.as_tensor(self.y)
        check_real(self.y, "y")
        if self.y.ndim == 0:
            raise RiskminError(
                "y is a single number (a 0-d tensor); give one target per sample, a tensor of samples x targets"
            )
        given = self.y  # as the user gave it: a float64 value beyond float32 is named before it becomes inf
        self.x, originals = read_inputs(self.x, len(self.y))
        if self.y.is_floating_point():
            self.y = self.y.float()
            if self.y.ndim == 1:
                self.y = self.y[:, None]
        else:
            self.y = self.y.long()
        if len(self) != len(self.y):
            raise RiskminError(f"x has {len(self)} samples but y has {len(self.y)}; they must match")
        if len(self) < 2:
            raise RiskminError(f"the data has {len(self)} sample{'s' * (len(self) != 1)}; training needs at least 2")
        if not self.several:  # predict and evaluate find a table's columns by these names
            check_names(list(self.feature_names), self.x.shape[1], "feature_names")
        check_names(list(self.target_names), self.y.shape[1] if self.y.ndim == 2 else 1, "target_names")
        check_values(self, originals, given)
        self.feature_names = list(self.feature_names) or (
            [] if self.several else [f"x{i}" for i in range(self.x.shape[1])]
        )
        if self.missing == "mean" and not self.several:
            check_some_value(self.x, self.feature_names)
        if not self.target_names:
            self.target_names = [f"y{i}" for i in range(self.y.shape[1])] if self.y.ndim == 2 else ["y"]
        self.task = self.task or ("regression" if self.y.is_floating_point() else "classification")
        if self.classes is not None and len(self.classes) == 1:
            raise RiskminError(
                f"y holds one class, {self.classes[0]}, in every row; classification needs rows of at least two classes"
            )

    def __len__(self) -> int:
        return n_rows(self.x)

    def __repr__(self) -> str:
        """What the data is, not its every value: rows, inputs, targets and task.

        >>> Data(torch.zeros(5, 3), torch.zeros(5, 1), name="mine")
        Data('mine': 5 rows, 3 features (x0, x1, x2), 1 target (y0), regression)
        """
        inputs = (
            f"{len(input_tensors(self.x))} inputs"
            if self.several
            else f"{self.n_features} feature{'s' * (self.n_features != 1)} ({names_text(self.feature_names)})"
        )
        targets = (
            f"{len(self.classes or [])} classes ({names_text([str(c) for c in self.classes])})"
            if self.classes
            else f"{len(self.target_names)} target{'s' * (len(self.target_names) != 1)} "
            f"({names_text(self.target_names)})"
        )
        return f"Data({self.name!r}: {len(self)} rows, {inputs}, {targets}, {self.task})"

    @property
    def several(self) -> bool:
        """Whether x is several inputs (a tuple or dict of tensors) rather than one samples x features tensor."""
        return is_several(self.x)

    @property
    def n_features(self) -> int:
        """Input columns; for several inputs, the values of one sample in all of them."""
        if not isinstance(self.x, torch.Tensor):  # several
            return sum(t[0].numel() for t in input_tensors(self.x))
        return self.x.shape[1]

    @property
    def n_targets(self) -> int:
        """Outputs a model needs: target columns, or classes for class-index targets."""
        if self.y.is_floating_point():
            return self.y.shape[1]
        return len(self.classes) if self.classes else int(self.y.max()) + 1

    def onehot(self) -> Optional[torch.Tensor]:
        """Which input columns are one-hot category indicators (None when there are none)."""
        if not self.layout or all(c["kind"] == "numeric" for c in self.layout):
            return None
        return torch.tensor([c["kind"] == "categorical" for c in self.layout for _ in c.get("categories", [None])])


def names_text(names: list, most: int = 3) -> str:
    """Up to `most` names, and "..." for the rest."""
    return ", ".join(names[:most]) + (", ..." if len(names) > most else "")


def check_names(names: list, columns: int, what: str) -> None:
    """Refuse `names` given for the columns of x or y (`what`: feature_names or target_names) that are not one a column,
    or that name a column twice: a DataFrame's columns are found by them.

    >>> check_names(["a", "a"], 2, "feature_names")
    Traceback (most recent call last):
    riskmin.config.RiskminError: feature_names names a twice; give each column a name of its own
    """
    if names and len(names) != columns:
        raise RiskminError(
            f"{what} gives {len(names)} name{'s' * (len(names) != 1)} for {columns} column{'s' * (columns != 1)}; "
            "give one a column, in order"
        )
    twice = [name for name, count in Counter(names).items() if count > 1]
    if twice:
        raise RiskminError(f"{what} names {twice[0]} twice; give each column a name of its own")


def check_values(data: Data, originals: list, given: torch.Tensor) -> None:
    """Refuse what is not a finite number (NaN in x allowed under missing="mean") or what float32 cannot hold, in
    every input and in the targets, naming the column; `originals` and `given` are the tensors as the user gave them."""
    inputs = input_tensors(data.x)
    if data.several:  # each input by its place or key (as several_inputs names it), its values by number
        keys = list(data.x) if isinstance(data.x, dict) else range(len(inputs))
        named = [(f"x[{key!r}]", [str(c) for c in range(t[0].numel())]) for key, t in zip(keys, inputs)]
    else:
        named = [("x", data.feature_names)]
    for tensor, original, what, columns in [
        *((t, o, what, names) for t, o, (what, names) in zip(inputs, originals, named)),
        (data.y, given, "y", data.target_names),
    ]:
        # "mean": NaN are holes to fill
        check_finite(tensor, original, what, columns, what == "x" and data.missing == "mean", data.row_labels)
        check_float32(original, tensor, what, columns)


def read_inputs(x, rows_of_y: int) -> tuple:
    """(the inputs as riskmin keeps them, the input tensors as given): one tensor of samples x features in float32, or
    several (a tuple or dict) each with a row per sample; what was given names a value float32 cannot hold."""
    if is_several(x):  # as given: float64 is made float32 by several_inputs
        given = [torch.as_tensor(value) for value in (x.values() if isinstance(x, dict) else x)]
        return several_inputs(x, rows_of_y), given
    given = torch.as_tensor(x)
    return one_input(given), [given]


def one_input(x) -> torch.Tensor:
    """One input tensor as samples x features in float32 (a vector: one feature)."""
    x = torch.as_tensor(x)
    check_real(x, "x")
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise RiskminError(
            f"x has shape {tuple(x.shape)}; one x is samples x features, and images or other shaped inputs go as "
            "a tuple, ((x,), y), which reaches the model as it is"
        )
    return x.float()


def check_real(tensor: torch.Tensor, what: str) -> None:
    """Refuse complex numbers, which float32 would silently cut to their real parts."""
    if tensor.is_complex():
        raise RiskminError(
            f"{what} holds complex numbers ({tensor.dtype}), and riskmin trains on real ones; give the "
            f"real and imaginary parts as columns of their own ({what}.real and {what}.imag)"
        )


def first_bad_row(tensor: torch.Tensor, allow_nan: bool = False, rows: int = 65536) -> Optional[int]:
    """The first row holding an infinite value, or NaN unless allowed; None when there is none.

    A finite sum proves every value finite without a mask the size of the data; only
    otherwise are the rows scanned, a bounded block at a time.
    """
    if not tensor.is_floating_point() or (not allow_nan and torch.isfinite(tensor.sum())):
        return None
    for start in range(0, len(tensor), rows):
        block = tensor[start : start + rows].reshape(min(rows, len(tensor) - start), -1)
        bad = torch.isinf(block) if allow_nan else ~torch.isfinite(block)
        if bad.any():
            return start + int(bad.any(1).nonzero()[0])
    return None


def check_finite(
    tensor: torch.Tensor, original: torch.Tensor, what: str, names: list, allow_nan: bool = False, labels=None
) -> None:
    """Raise one RiskminError naming the first value of `tensor` that is infinite (or NaN unless allowed), its column
    and its row (by `labels`, a DataFrame's index, where given: see row_list); a finite value of the `original` that
    became infinite in float32 is said to be beyond float32's range."""
    from ._data._columns import row_list

    row = first_bad_row(tensor, allow_nan)
    if row is None:
        return
    values = tensor[row].reshape(-1)
    column = int((torch.isinf(values) if allow_nan else ~torch.isfinite(values)).nonzero()[0])
    name = names[column] if column < len(names) else f"{what}{column}"
    value = float(original[row].reshape(-1)[column])
    if math.isfinite(value):
        raise RiskminError(
            f"{what} column {name} holds {value:g} at {row_list([row], labels)}, beyond the float32 range riskmin "
            f"trains in (±{FLOAT32_MAX:.1e}); rescale that column, say divide it by a power of ten"
        )
    raise RiskminError(
        f"{what} holds NaN or infinite values, first at {row_list([row], labels)}, in column {name}; remove or fill "
        f"them (a number in a file beyond ±{FLOAT32_MAX:.1e}, the float32 range riskmin trains in, "
        "reads as infinite)"
    )


def check_some_value(x: torch.Tensor, names: list) -> None:
    """Refuse a column of `x` that is missing (NaN) in every row: there is no mean to fill it with. Only the columns
    whose
    sum is NaN can be, so the others are never scanned."""
    holes = torch.isnan(x.sum(0)).nonzero()[:, 0]
    empty = holes[torch.isnan(x[:, holes]).all(0)] if len(holes) else holes
    if len(empty):
        raise RiskminError(
            f"column {names[int(empty[0])]} is empty in every row, so there is no mean to fill it with; "
            "leave it out of the features"
        )


def check_float32(original: torch.Tensor, kept: torch.Tensor, what: str, names: list) -> None:
    """Refuse a column as the user gave it (`original`, float64 or integers) that float32, in which it is `kept`,
    cannot hold: too small (check_small), or rounded beyond its spread (check_rounding). Each column's extremes are
    taken once for both, in one pass without a copy."""
    if original.dtype not in (torch.float64, torch.int64, torch.int32) or not len(original):
        return
    columns = original.reshape(len(original), -1)
    low, high = (bounds.double() for bounds in torch.aminmax(columns, dim=0))
    holes = low.isnan().nonzero()[:, 0]  # a column with a missing value: its extremes taken over the values it has
    if len(holes):
        present = columns[:, holes].double()
        missing = present.isnan()
        low[holes] = present.masked_fill(missing, math.inf).amin(0)
        high[holes] = present.masked_fill(missing, -math.inf).amax(0)
    if original.dtype == torch.float64:
        check_small(columns, low, high, what, names)
    if kept.is_floating_point():
        check_rounding(columns, kept.reshape(len(kept), -1), low, high, what, names)


def check_small(columns: torch.Tensor, low: torch.Tensor, high: torch.Tensor, what: str, names: list) -> None:
    """Refuse a float64 column every value of which is below float32's smallest normal number in size (`low`, `high`:
    each column's extremes over the values it has)."""
    largest = torch.maximum(low.abs(), high.abs())
    tiny = ((largest > 0) & (largest < FLOAT32_TINY)).nonzero()[:, 0]
    if len(tiny):
        column = int(tiny[0])
        name = names[column] if column < len(names) else f"{what}{column}"
        raise RiskminError(too_small(f"{what} column {name}", float(largest[column])))


def check_rounding(
    columns: torch.Tensor, rounded: torch.Tensor, low: torch.Tensor, high: torch.Tensor, what: str, names: list
) -> None:
    """Refuse a column whose values float32 (`rounded`) rounds by more than ROUNDED of their spread: values far from 0
    beside how much they differ (1e9 + 3z, where float32 steps by 64), which would train on the rounding. (Feature
    columns of a file or a DataFrame never get here so: they are centred in float64 as they are read.)

    float32 rounds a value v by at most |v| 2^-24, and a column's standard deviation is at least its range over
    sqrt(2n): only a column where the one may exceed ROUNDED of the other is measured, over the values it has (a
    missing one, NaN, is no value; a column of none is not measured)."""
    bound = torch.maximum(low.abs(), high.abs()) * 2.0**-24
    suspects = ((bound > ROUNDED * (high - low) / math.sqrt(2 * len(columns))) & (low <= high)).nonzero()[:, 0]
    if not len(suspects):
        return
    values = columns[:, suspects].double()
    error = (rounded[:, suspects].double() - values).abs().nan_to_num(nan=0.0).amax(0)
    spreads = (values - values.nanmean(0)).square().nanmean(0).sqrt()
    # a constant column is said to be one elsewhere
    lost = ((error > ROUNDED * spreads) & (spreads > 0)).nonzero()[:, 0]
    if len(lost):
        column = int(suspects[lost[0]])
        name = names[column] if column < len(names) else f"{what}{column}"
        centre, spread = float(values[:, lost[0]].nanmedian()), float(spreads[lost[0]])
        raise RiskminError(
            f"{what} column {name}'s values lie near {centre:.6g} and differ by about {spread:.3g}, where float32, "
            f"the precision riskmin trains in, rounds them by up to {float(error[lost[0]]):.3g}; subtract a constant "
            f"from that column first (such as {centre:.6g})"
        )


ROUNDED = 0.1  # float32 rounding, as a share of a column's standard deviation, beyond which the column is refused
FLOAT32_MAX = torch.finfo(torch.float32).max
# a float32 mean of one value repeated is off by a few ulps (pairwise sums): a spread below this share of the mean may
# be that rounding alone
ROUNDING = 1e-4
# the smallest normal float32; below it digits are lost, and below 1.4e-45 all
FLOAT32_TINY = torch.finfo(torch.float32).tiny


def too_small(column: str, largest: float) -> str:
    """What to say of a column every value of which is too small in size for float32 to hold."""
    return (
        f"{column}'s values are all smaller in size than {FLOAT32_TINY:.1e} (the largest is {largest:.3g}), too "
        "small for the float32 precision riskmin trains in, which would make them 0 or lose their digits; multiply "
        "that column by a power of ten"
    )


@dataclass
class Splits:
    """Index tensors into `data` for training, validation and test (either of the last two may be empty)."""

    data: Union[Data, Dataset]
    train: torch.Tensor
    val: torch.Tensor
    test: torch.Tensor
    seed: Optional[int] = None

    def sizes(self) -> dict:
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}

    def __repr__(self) -> str:
        """The split's sizes and seed, and the data it indexes (not every index).

        >>> split(Data(torch.zeros(10, 1), torch.zeros(10, 1), name="mine"), val=0.2, test=0.2)
        Splits(6 train, 2 val, 2 test rows, seed 0, of Data('mine': 10 rows, 1 feature (x0), 1 target (y0), regression))
        """
        data = repr(self.data) if isinstance(self.data, Data) else f"a {type(self.data).__name__}"
        sizes = ", ".join(f"{size} {part}" for part, size in self.sizes().items())
        return f"Splits({sizes} rows, seed {self.seed}, of {data})"


def check_parts(parts: dict, rows: int, where: str) -> dict:
    """`parts` (part name -> row numbers: a tensor, an array or a list) as int64 tensors, once each is checked: one
    axis of whole numbers, of rows 0 to rows - 1, and no row in two parts (a test row trained on would be measured as
    unseen). `where` names them in a message (the split given, splits file f.csv: split 3). A row may recur within a
    part (a bootstrap's training rows) where the caller allows it.

    >>> check_parts({"train": [0, 1], "test": [1]}, 3, "split 1")
    Traceback (most recent call last):
    riskmin.config.RiskminError: split 1 puts row 1 in both train and test; the parts of a split must not overlap
    """
    owner = torch.full((rows,), -1, dtype=torch.int8)  # the part that holds each row, -1 for none
    checked = {}
    for number, (part, given) in enumerate(parts.items()):
        indices = torch.as_tensor(given)
        indices = indices.reshape(0).long() if indices.numel() == 0 else indices
        if indices.ndim != 1 or indices.is_floating_point() or indices.is_complex() or indices.dtype == torch.bool:
            kind = str(indices.dtype).removeprefix("torch.")
            raise RiskminError(
                f"{part} of {where} is a {kind} array of shape {tuple(indices.shape)}; give a 1-D array of integer "
                "row indices"
            )
        low, high = (int(end) for end in torch.aminmax(indices)) if len(indices) else (0, -1)
        if low < 0:
            raise RiskminError(f"{part} of {where} holds the negative row index {low}; row indices count from 0")
        if high >= rows:
            raise RiskminError(f"{part} of {where} holds row {high}, but the data has {rows} rows (0 to {rows - 1})")
        indices = indices.long()
        held = owner[indices]
        shared = (held >= 0).nonzero()[:, 0]
        if len(shared):
            other = list(parts)[int(held[shared[0]])]
            raise RiskminError(
                f"{where} puts row {int(indices[shared[0]])} in both {other} and {part}; the parts of a split must not "
                "overlap"
            )
        owner[indices] = number
        checked[part] = indices
    return checked


def split(data, train: Optional[float] = None, val: float = 0.1, test: float = 0.1, seed: int = 0) -> Splits:
    """Shuffle the samples of `data` (Data or a Dataset) with `seed` and cut them into train, validation and test index
    sets; riskmin.split takes anything fit takes (_prepare.split).

    `train` defaults to what `val` and `test` leave. Sizes are `split_sizes`: training and
    validation round(fraction x n) rows, test the rest.

    >>> s = split(Data(torch.randn(10, 2), torch.randn(10, 1)), val=0.2, test=0.2, seed=0); s.sizes()
    {'train': 6, 'val': 2, 'test': 2}
    """
    n_train, n_val, n_test = split_sizes(len(data), train, val, test)
    n = len(data)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return Splits(
        data, order[:n_train], order[n_train : n_train + n_val], order[n_train + n_val : n_train + n_val + n_test], seed
    )


def split_sizes(n: int, train: Optional[float] = None, val: float = 0.1, test: float = 0.1) -> tuple:
    """(n_train, n_val, n_test) for `n` rows: training round(train x n), validation round(val x n), test the rest, as
    common split scripts round (n_test = n - round(n x train)); with all three fractions given and rows left over,
    test gets round(test x n). A test fraction of 0 gets no row: what rounding leaves to it goes to training.

    >>> (split_sizes(100, val=0.1, test=0.2), split_sizes(100, val=0.0, test=0.29),
    ...  split_sizes(100, train=0.5, val=0.1, test=0.2), split_sizes(45, val=0.1, test=0.0))
    ((70, 10, 20), (71, 0, 29), (50, 10, 20), (41, 4, 0))
    """
    rest = train is None
    train = 1.0 - val - test if train is None else train
    if min(train, val, test) < 0 or train + val + test > 1 + 1e-9 or train <= 0:
        raise RiskminError(
            f"split fractions train={train:g}, val={val:g}, test={test:g} are not allowed; train must "
            "be positive and all must sum to at most 1"
        )
    n_train = min(round(train * n), n)
    n_val = min(round(val * n), n - n_train)
    if test == 0 and train + val >= 1 - 1e-9:  # 0.9 x 45 rounds to 40, which would leave a test row nobody asked for
        n_train = n - n_val
    n_test = n - n_train - n_val if rest else min(round(test * n), n - n_train - n_val)
    check_split_sizes(n, (train, val, test), (n_train, n_val, n_test))
    return n_train, n_val, n_test


def check_split_sizes(n: int, fractions: tuple, sizes: tuple) -> None:
    """Refuse sizes that leave training empty, or a validation or test set asked for (fraction above 0) with no row."""
    names = ("training", "validation", "test")
    empty = [i for i, (fraction, size) in enumerate(zip(fractions, sizes)) if size == 0 and (fraction > 0 or i == 0)]
    if not empty:
        return
    said = (
        f"{n} samples split by train={fractions[0]:g}, val={fractions[1]:g}, test={fractions[2]:g} give "
        + ", ".join(f"{size} {name}" for name, size in zip(names, sizes))
    )
    if empty[0] == 0:
        raise RiskminError(f"{said} rows, which leaves no training sample; lower val and test or use more data")
    flags = " and ".join(("val", "test")[i - 1] for i in empty)  # as the sentence names them: a flag, a keyword
    raise RiskminError(
        f"{said} rows, so the {' and '.join(names[i] for i in empty)} set{'s' * (len(empty) > 1)} asked "
        f"for would be empty; use more data, set {flags} to at least {1 / n:.3g} for one "
        f"row{' each' * (len(empty) > 1)}, or to 0 for none"
    )


def tutorial_split(data: Data) -> Splits:
    """The fixed train/validation split a data set ships with (the `line` tutorial's 80/20 cut)."""
    if data.tutorial_split is None:
        raise RiskminError(f"data set '{data.name}' has no tutorial split; use split random (only 'line' has one)")
    train, val = data.tutorial_split
    return Splits(data, train, val, torch.empty(0, dtype=torch.long))


def rows_at(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """`x[index]` for an integer `index` of any shape, through one index_select, which copies the rows without the
    general machinery of advanced indexing: for one set of rows as for a stack of replicas' batches."""
    return x.index_select(0, index.reshape(-1)).view(*index.shape, *x.shape[1:])


def column_sums(x: torch.Tensor, term, floats: int = 2**20) -> torch.Tensor:
    """The column sums of `term(part)` over parts of `x` of about `floats` values: a temporary of one part, not of
    all of x, small enough to stay in cache, and faster than one pass over all of it."""
    return sum(term(part).sum(0) for part in x.split(max(1, floats // max(x.shape[1], 1))))


def moments(x: torch.Tensor, count: Optional[torch.Tensor] = None) -> tuple:
    """(mean, std) of each column, in float32; with `count`, NaN are holes skipped and `count` the values of each
    column.

    Summed in float32 first, as fast as it goes; when a sum overflows, all are summed again in float64, a part at a
    time: a column at 1e20 scale squares to 1e40, beyond float32, and would get an infinite std that scales it to
    zeros. (Always in float64 would be slower, and every ordinary run's numbers would move by an ulp.)
    """
    if count is None:
        mean = x.mean(0)
        std = column_sums(x, lambda part: (part - mean).square_()).div_(len(x)).sqrt_()
    else:
        mean = torch.where(torch.isnan(x), 0.0, x).sum(0) / count
        std = (torch.where(torch.isnan(x), 0.0, x - mean) ** 2).sum(0).div(count).sqrt()
    if torch.isfinite(mean).all() and torch.isfinite(std).all():
        return mean, std
    # parts of 2^16 values: their float64 copies stay in cache
    floats, count = 2**16, len(x) if count is None else count
    mean = column_sums(x, lambda part: part.double().nan_to_num(0.0), floats).div_(count)
    variance = column_sums(x, lambda part: (part.double() - mean).nan_to_num_(0.0).square_(), floats).div_(count)
    return mean.float(), variance.sqrt_().float()


def unvarying(x: torch.Tensor, holes: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Which columns of `x` hold one value in every row, compared exactly, a NaN (a missing value) left out where
    `holes` (isnan of x) says there are some; a column without a value holds none. Column sums, a part at a time (see
    column_sums), rather than comparisons reduced along rows: several times faster.

    >>> x = torch.tensor([[1.0, 2.0, float("nan")], [1.0, 3.0, float("nan")], [float("nan"), 2.0, float("nan")]])
    >>> unvarying(x, torch.isnan(x))
    tensor([ True, False, False])
    """
    if holes is None:
        return column_sums(x, lambda part: (part - x[:1]).abs_()) == 0
    first = x.gather(0, holes.byte().argmin(0, keepdim=True))  # each column's first value, NaN where it has none
    return (column_sums(x, lambda part: (part - first).nan_to_num_(0.0).abs_()) == 0) & ~holes.all(0)


def constant_columns(data: Data, trainings: list, head: int = 64) -> list:
    """For each training split in `trainings` (index tensors into the rows of `data`), the numeric feature columns
    constant on it, as Standardizer.fit lists them (`constant`) for the run that trains on it: what a Monte-Carlo
    experiment says once, whichever engine trains its runs. Only the columns constant on a split's first `head` rows
    are gathered in full: for most data, none. Several inputs are used as given, unscaled: none is listed.

    >>> data = Data(torch.tensor([[0.0, 1.0], [0.0, 2.0], [1.0, 3.0]]), torch.zeros(3, 1))
    >>> constant_columns(data, [torch.tensor([0, 1]), torch.tensor([1, 2])])
    [[0], []]
    """
    if data.several:
        return [[] for _ in trainings]
    x = cast(torch.Tensor, data.x)
    onehot = data.onehot()
    numeric = torch.ones(x.shape[1], dtype=torch.bool) if onehot is None else ~onehot
    fills, found = data.missing == "mean", []  # NaN are missing values only where they are filled: else refused
    for rows in trainings:
        first = rows_at(x, rows[:head])
        holes = torch.isnan(first) if fills else None
        # a column without a value in the first rows may still be constant on the rest
        maybe = unvarying(first, holes) if holes is None else unvarying(first, holes) | holes.all(0)
        candidates = (numeric & maybe).nonzero().flatten()
        if len(candidates):  # gathered alone, not whole rows
            part = x[rows[:, None], candidates[None, :]]
            candidates = candidates[unvarying(part, torch.isnan(part) if fills else None)]
        found.append(candidates.tolist())
    return found


def constant_note(names: list, constant: list) -> str:
    """What to say of the feature columns constant on the training split of one run, or of each run of an experiment
    (`constant`: each run's column indices, Standardizer.constant or constant_columns); "" when there are none.

    >>> constant_note(["a", "b"], [[1]])
    'feature columns b are constant on the training split; they carry no information'
    >>> constant_note(["a", "b", "c"], [[0, 2], [0], [0, 2]]).split("; ")[0]
    'feature columns a are constant on the training split of every run, c on that of 2 of the 3 runs'
    """
    runs, counts = len(constant), Counter(column for columns in constant for column in columns)
    if not counts:
        return ""
    if runs == 1:
        where = f"{', '.join(names[i] for i in constant[0])} are constant on the training split"
    else:
        groups: dict = {}  # the columns of each count of runs, the most first
        for column in sorted(counts, key=lambda column: (-counts[column], column)):
            groups.setdefault(counts[column], []).append(names[column])
        where = ", ".join(
            f"{', '.join(columns)} {'on that of' if i else 'are constant on the training split of'} "
            + ("every run" if count == runs else f"{count} of the {runs} runs")
            for i, (count, columns) in enumerate(groups.items())
        )
    return f"feature columns {where}; they carry no information"


@dataclass
class Standardizer:
    """Feature scaling fitted on the training rows only: missing values filled, then (x - mean) / std.

    A numeric column gets its training mean and std (a constant one is left unscaled, and
    listed in `constant`); NaN, a missing value, becomes the column's training mean. A one-hot
    column is left as it is, or zeroed (std = inf) when its category never occurs in the
    training rows, so that no model leans on an input it was never trained with.
    """

    mean: torch.Tensor
    std: torch.Tensor
    fill: Optional[torch.Tensor] = None  # what NaN becomes, before scaling; None: NaN are not holes (missing="error")
    constant: list = field(default_factory=list)  # indices of numeric columns constant on the training rows
    target: Optional["TargetScale"] = None  # how a regression target was scaled for training; None: it was not

    @classmethod
    def fit(
        cls, x: torch.Tensor, onehot: Optional[torch.Tensor] = None, scale: bool = True, fills: bool = False
    ) -> "Standardizer":
        """`fills` (missing="mean"): NaN are holes, filled with the column's training mean, also when the training
        rows have none (a validation, test or new row may)."""
        numeric = torch.ones(x.shape[1], dtype=torch.bool) if onehot is None else ~onehot
        # a NaN makes its column's sum NaN, so finite sums prove there are no holes, at a quarter of isnan's cost;
        # column reductions (sums) rather than comparisons reduced along rows (all(0), std(0)): several times faster
        holes = None if torch.isfinite(x.sum(0)).all() else torch.isnan(x)
        if holes is None or not holes.any():
            constant = (numeric & unvarying(x)).nonzero().flatten().tolist()
            if not scale and onehot is None and not fills:  # nothing to fill, scale or zero: skip the statistics
                return cls(torch.zeros(x.shape[1]), torch.ones(x.shape[1]), None, constant)
            mean, std = moments(x)
            fill = mean.clone() if fills else None
        else:
            count = (~holes).sum(0)
            if (count == 0).any():
                column = int((count == 0).nonzero()[0])
                raise RiskminError(
                    f"input column {column} has no value in the training split, so no mean to fill it "
                    "with; drop the column"
                )
            mean, std = moments(x, count)
            fill = mean.clone()
            # std == 0 misses a constant column whose float32 mean rounds (0.1 in every row): the columns whose spread
            # is within rounding of their mean are compared exactly, as those of a split without holes are
            close = (numeric & (std <= ROUNDING * mean.abs())).nonzero().flatten()
            constant = close[unvarying(x[:, close], holes[:, close])].tolist()
        std = torch.where(std > 0, std, torch.ones_like(std))
        if not scale:
            mean, std = torch.zeros_like(mean), torch.ones_like(std)
        if onehot is not None:
            seen = (torch.nan_to_num(x[:, onehot]) != 0).any(0)
            mean[onehot] = 0.0
            std[onehot] = torch.where(seen, 1.0, float("inf"))
        return cls(mean, std, fill, constant)

    @property
    def is_identity(self) -> bool:
        return self.fill is None and not self.mean.any() and bool((self.std == 1).all())

    def __call__(self, x: torch.Tensor, in_place: bool = False) -> torch.Tensor:
        """The scaled rows; `in_place` overwrites `x` (a copy the caller owns) instead of allocating twice its size."""
        if self.is_identity:
            return x
        if self.fill is not None:
            x = torch.where(torch.isnan(x), self.fill.to(x.device), x)
            in_place = True  # x is a fresh tensor now
        if in_place:
            return x.sub_(self.mean.to(x.device)).div_(self.std.to(x.device))
        return (x - self.mean.to(x.device)) / self.std.to(x.device)

    def to_dict(self) -> dict:
        return {
            "mean": self.mean.tolist(),
            "std": [None if math.isinf(v) else v for v in self.std.tolist()],
            "fill": None if self.fill is None else self.fill.tolist(),
            "target": None if self.target is None else self.target.to_dict(),
        }

    def fits(self, n_inputs: int) -> bool:
        """Whether it scales `n_inputs` input columns, one mean and one spread above 0 each, as a run's files must
        agree, or none (several inputs, which riskmin leaves as they are, beside a target it scales)."""
        sizes = self.mean.shape == self.std.shape and self.mean.shape in ((n_inputs,), (0,))
        return sizes and (self.fill is None or self.fill.shape == (n_inputs,)) and bool((self.std > 0).all())

    @classmethod
    def from_dict(cls, values: dict) -> "Standardizer":
        std = torch.tensor([float("inf") if v is None else v for v in values["std"]], dtype=torch.float32)
        fill, target = values.get("fill"), values.get("target")
        return cls(
            torch.tensor(values["mean"], dtype=torch.float32),
            std,
            None if fill is None else torch.tensor(fill, dtype=torch.float32),
            target=None if target is None else TargetScale.from_dict(target),
        )


@dataclass
class TargetScale:
    """A regression target as the model is trained on it: (y - mean) / scale, with training-split statistics; with
    `log` (target_transform "log"), (log y - mean) / scale.

    `mean` is each target column's; `scale` is one number for all of them, the root of their mean
    variance. With one number the loss minimized is the loss asked for, only divided by a constant
    (mse by scale², l1 by scale), so standardizing changes the conditioning and never which model
    is best; every metric is converted back exactly (mse × scale², rmse and mae × scale, r2 as it is).
    A log target is trained on log y, its loss in log units; `restore` gives exp of the model's
    answer (the median of a log-normal, not its mean), and the metrics are measured on those.

    >>> t = TargetScale.fit(torch.tensor([[100.0], [140.0]])); (t.mean.tolist(), t.scale)
    ([120.0], 20.0)
    >>> t.restore(t(torch.tensor([[130.0]]))).tolist()
    [[130.0]]
    >>> t = TargetScale.fit(torch.tensor([[10.0], [1000.0]]), log=True)
    >>> round(t.scale, 4), round(t.restore(torch.zeros(1, 1)).item(), 4)
    (2.3026, 100.0)
    """

    mean: torch.Tensor
    scale: float
    log: bool = False  # trained on the logarithm of a positive target

    @classmethod
    def fit(cls, y: torch.Tensor, log: bool = False, standardize: bool = True) -> "TargetScale":
        """The statistics of the training targets `y` (rows x columns), computed in float64 (of log y with `log`); a
        constant target keeps scale 1. Without `standardize` (a log target alone), mean 0 and scale 1."""
        y = y.double().reshape(len(y), -1)
        y = y.log() if log else y
        if not standardize:
            return cls(torch.zeros(y.shape[1]), 1.0, log)
        mean = y.mean(0)
        scale = math.sqrt(float((y - mean).square().mean()))
        return cls(mean.float(), scale if scale > 0 and math.isfinite(scale) else 1.0, log)

    @staticmethod
    def asked(config: Config) -> bool:
        """Whether `config` trains on its targets scaled: a regression target standardized, or its logarithm, or both
        (a target of a classification loss is taken as it is). Both engines ask here.

        >>> TargetScale.asked(Config(loss="mse")), TargetScale.asked(Config(loss="cross_entropy"))
        (True, False)
        """
        wanted = config.standardize_target or config.target_transform == "log"
        return config.loss in REGRESSION and wanted

    @classmethod
    def of_training(cls, y: torch.Tensor, config: Config) -> "TargetScale":
        """The scaling `config` asks for (see `asked`), fitted on the training targets `y`.

        >>> TargetScale.of_training(torch.tensor([[10.0], [1000.0]]), Config(target_transform="log")).log
        True
        """
        return cls.fit(y, config.target_transform == "log", config.standardize_target)

    def __call__(self, y: torch.Tensor) -> torch.Tensor:
        # float32 tensors on both sides, as the Monte-Carlo engine computes it per replica: the same bits either way
        y = torch.log(y) if self.log else y
        return (y - self.mean.to(y.device)) / torch.tensor(self.scale, dtype=y.dtype, device=y.device)

    def restore(self, output: torch.Tensor) -> torch.Tensor:
        """Model outputs in the target's own units (in the dtype of `output`: float64 where the metrics are summed)."""
        value = output * self.scale + self.mean.to(output.device)
        return torch.exp(value) if self.log else value

    def to_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "scale": self.scale, **({"transform": "log"} if self.log else {})}

    @classmethod
    def from_dict(cls, values: dict) -> "TargetScale":
        return cls(
            torch.tensor(values["mean"], dtype=torch.float32), float(values["scale"]), values.get("transform") == "log"
        )


def schedule(n: int, batch_size: int, sampling: str = "epoch", drop_last: bool = False) -> tuple:
    """(rows per batch, steps per epoch) for `n` training rows; a batch size of 0 or at least n is full batch."""
    batch = n if batch_size == 0 or batch_size >= n else batch_size
    full, rest = divmod(n, batch)
    return batch, full if (drop_last and full) or sampling == "random" else full + (rest > 0)


def draw_order(n: int, generator: torch.Generator, sampling: str, batch: int, steps: int):
    """One epoch's row order: a permutation, or random draws with replacement; None for full batch.

    Both the training loop and the Monte-Carlo engine draw through here, so that a replica
    sees exactly the batches its run alone would.
    """
    if sampling == "random":
        return torch.randint(n, (steps * batch,), generator=generator)
    if batch == n:
        return None  # full batch: the order of the rows does not change the gradient
    return torch.randperm(n, generator=generator)


class Batches:
    """What both kinds of batches share: their number per epoch, and an epoch that a resumed run redraws and skips into.
    `epoch_start`: the generator's state where the current epoch's order began (None when nothing is drawn)."""

    generator: torch.Generator
    steps_per_epoch: int
    epoch_start: Optional[torch.Tensor]
    skip: int

    def __len__(self) -> int:
        return self.steps_per_epoch

    def resume_epoch(self, generator_state: torch.Tensor, done: int) -> None:
        """Make the next epoch redraw the order that began at `generator_state` and skip its first `done` batches."""
        self.generator.set_state(generator_state)
        self.skip = done


class TensorBatches(Batches):
    """Batches of in-memory training rows already on the training device.

    sampling="epoch": each epoch one permutation from `generator`, one gather of the
    permuted rows, then contiguous slices of `batch_size`. sampling="random": each
    step draws `batch_size` rows with replacement, all of an epoch's draws at once.
    A batch size of 0 (or one at least the number of rows) means full batch.
    """

    def __init__(self, x, y, batch_size: int, generator: torch.Generator, sampling="epoch", drop_last=False):
        self.x, self.y, self.generator, self.sampling = x, y, generator, sampling
        self.n, self.one = len(y), not is_several(x)
        self.batch_size, self.steps_per_epoch = schedule(self.n, batch_size, sampling, drop_last)
        self.epoch_start, self.skip = None, 0

    def __iter__(self) -> Iterator[tuple]:
        size = self.batch_size
        draws = self.sampling == "random" or size < self.n
        # a checkpoint taken inside this epoch stores where its order began; None: a full batch draws nothing
        self.epoch_start = self.generator.get_state() if draws else None
        skip, self.skip = self.skip, 0
        order = draw_order(self.n, self.generator, self.sampling, size, self.steps_per_epoch)
        if order is None:
            xs, ys = self.x, self.y
        else:
            order = order.to(self.y.device, non_blocking=True)
            xs, ys = (
                self.x.index_select(0, order) if self.one else each_input(lambda t: t.index_select(0, order), self.x),
                self.y.index_select(0, order),
            )
        if not self.one:  # several inputs: every tensor sliced alike
            for i in range(skip, self.steps_per_epoch):
                yield each_input(lambda t: t[i * size : (i + 1) * size], xs), ys[i * size : (i + 1) * size]
            return
        for i in range(skip, self.steps_per_epoch):
            yield xs[i * size : (i + 1) * size], ys[i * size : (i + 1) * size]


class LoaderBatches(Batches):
    """Batches of any Dataset through a standard DataLoader, moved to the device as they come."""

    def __init__(
        self,
        dataset: Dataset,
        rows,
        batch_size: int,
        generator,
        device,
        drop_last=False,
        reading: Optional[dict] = None,
    ):
        size = batch_size or len(rows)
        self.loader = DataLoader(
            Subset(dataset, rows.tolist()),
            batch_size=size,
            shuffle=True,
            generator=generator,
            drop_last=drop_last,
            **(reading or {}),
        )
        self.device, self.generator = device, generator
        self.steps_per_epoch = len(self.loader)
        self.epoch_start, self.skip = None, 0

    def __iter__(self):
        self.epoch_start = self.generator.get_state()
        skip, self.skip = self.skip, 0
        for i, (x, y) in enumerate(self.loader):
            if i >= skip:
                yield to_device(x, self.device), y.to(self.device, non_blocking=True)


def to_device(x, device):
    """Inputs, one tensor or several, on `device`."""
    if isinstance(x, torch.Tensor):
        return x.to(device, non_blocking=True)
    return each_input(lambda t: t.to(device, non_blocking=True), x)
