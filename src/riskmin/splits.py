"""The splits a Monte-Carlo experiment trains on: stratified random splits, repeated k-fold, splits read from a file.

Each split is a set of index tensors into the rows of one `Data` (`data.Splits`), as
scikit-learn's splitters yield index arrays; nothing copies the samples.

How sizes are rounded:

- `stratified_split` cuts exactly the sizes `data.split` cuts for the same fractions
  (`data.split_sizes`): training round(train x n) rows, validation round(val x n), test the
  rest, as common split scripts do (n_test = n - round(n x train) without validation); when
  all three fractions are given and leave rows over, test gets round(test x n). A test
  fraction of 0 gets no row: what rounding would leave it goes to training.
- `kfold_splits` deals the rows into K folds of floor(n/K) or ceil(n/K) rows; of the rows
  outside the test fold, round(val x their number) go to validation (Python's round, half to
  even) and the remainder to training.

Within these sizes, stratifying keeps each class's share in every part: a class of n_c of
the n rows gets floor or ceil of n_c x (size of the part) / n rows of each part.
"""

from __future__ import annotations

import csv
import numbers
import re
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from .config import RiskminError
from .data import check_parts, split_sizes, Data, Splits

__all__ = ["kfold_splits", "read_splits", "stratified_split"]

PARTS = ("train", "val", "test")


def stratified_split(
    data: Data, train: Optional[float] = None, val: float = 0.1, test: float = 0.1, seed: int = 0
) -> Splits:
    """A random split of `split`'s sizes in which every part keeps the class proportions of the whole.

    For class-index targets (integer y, one per row). Deterministic by `seed`.

    >>> data = Data(torch.zeros(100, 1), torch.tensor([0] * 90 + [1] * 10))
    >>> s = stratified_split(data, val=0.1, test=0.2, seed=0)
    >>> s.sizes(), [int(data.y[part].sum()) for part in (s.train, s.val, s.test)]
    ({'train': 70, 'val': 10, 'test': 20}, [7, 1, 2])
    """
    labels = stratification_labels(data)
    sizes = split_sizes(len(labels), train, val, test)
    generator = torch.Generator().manual_seed(seed)
    train_rows, val_rows, test_rows, _unused = stratified_parts(labels, [*sizes, len(labels) - sum(sizes)], generator)
    return Splits(data, train_rows, val_rows, test_rows, seed)


def kfold_splits(
    data: Data, folds: int = 5, repetitions: int = 1, val: float = 0.0, seed: int = 0, stratify: bool = False
) -> list:
    """`repetitions` x `folds` splits as (repetition, fold, Splits): each fold is the test part once.

    Repetition r shuffles the rows with seed `seed + r` (its Splits carry that seed); of the
    rows outside the test fold, a fraction `val` goes to validation and the rest to training.
    With `stratify`, folds and validation parts keep the class proportions (class-index y).

    >>> data = Data(torch.zeros(10, 1), torch.zeros(10, 1))
    >>> [(r, k, s.sizes()["test"]) for r, k, s in kfold_splits(data, folds=3, repetitions=2)][:4]
    [(0, 0, 4), (0, 1, 3), (0, 2, 3), (1, 0, 4)]
    """
    n = len(data)
    if not isinstance(folds, numbers.Integral) or not 2 <= folds <= n:
        raise RiskminError(
            f"folds={folds!r} is not allowed; k-fold needs an integer number of folds from 2 to the {n} rows"
        )
    if not isinstance(repetitions, numbers.Integral) or repetitions < 1:
        raise RiskminError(f"repetitions={repetitions!r} is not allowed; give a whole number of at least 1")
    if not 0 <= val < 1:
        raise RiskminError(
            f"val={val!r} is not allowed; the validation fraction of the training folds must be at least 0 and below 1"
        )
    labels = stratification_labels(data) if stratify else None
    result = []
    for repetition in range(repetitions):
        generator = torch.Generator().manual_seed(seed + repetition)
        order = torch.randperm(n, generator=generator)
        # classes in contiguous blocks, so that dealing row i to fold i % K gives each fold its share of each
        if stratify:
            order = order[torch.sort(labels[order], stable=True).indices]
        fold_of_position = torch.arange(n) % folds
        for fold in range(folds):
            test_rows, rest = order[fold_of_position == fold], order[fold_of_position != fold]
            train_rows, val_rows = training_and_validation(rest, val, labels, generator)
            result.append((repetition, fold, Splits(data, train_rows, val_rows, test_rows, seed + repetition)))
    return result


def training_and_validation(rest: torch.Tensor, val: float, labels: Optional[torch.Tensor], generator) -> tuple:
    """The rows outside a test fold cut into training and round(val x their number) validation rows."""
    n_val = round(val * len(rest))
    if n_val >= len(rest):
        raise RiskminError(
            f"val={val:g} of the {len(rest)} rows outside a test fold leaves no training row; lower val "
            "or use fewer folds"
        )
    if labels is None:
        shuffled = rest[torch.randperm(len(rest), generator=generator)]
        return shuffled[n_val:], shuffled[:n_val]
    train_positions, val_positions = stratified_parts(labels[rest], [len(rest) - n_val, n_val], generator)
    return rest[train_positions], rest[val_positions]


def stratification_labels(data) -> torch.Tensor:
    """The class index of each row; only class-index targets can be stratified."""
    y = getattr(data, "y", None)
    if y is None or y.is_floating_point() or y.ndim != 1:
        shape = (
            "no targets"
            if y is None
            else f"{'float' if y.is_floating_point() else 'integer'} targets of shape {tuple(y.shape)}"
        )
        raise RiskminError(
            "stratified splits need class-index targets (integer y, one per row), but the data has "
            f"{shape}; split without stratifying"
        )
    if len(y) and int(y.min()) < 0:
        raise RiskminError(
            f"stratified splits need class indices from 0, but y holds {int(y.min())}; number the classes 0, 1, 2, ..."
        )
    return y


def stratified_parts(labels: torch.Tensor, sizes: list, generator: torch.Generator) -> list:
    """Positions 0..len(labels)-1 cut into parts of `sizes` rows, each holding its proportional share of every class."""
    order = torch.randperm(len(labels), generator=generator)
    order = order[torch.sort(labels[order], stable=True).indices]  # class by class, rows shuffled within a class
    counts = torch.bincount(labels).tolist()
    table = class_counts([c for c in counts if c], sizes, generator)
    pieces = [[] for _ in sizes]
    start = 0
    for row in table:
        for part, count in enumerate(row):
            pieces[part].append(order[start : start + count])
            start += count
    # each part shuffled as a whole, so that its rows do not come class by class
    return [part[torch.randperm(len(part), generator=generator)] for part in (torch.cat(p) for p in pieces)]


def class_counts(counts: list, sizes: list, generator: torch.Generator) -> list:
    """table[c][p]: rows of class c in part p, floor or ceil of counts[c] x sizes[p] / n, with rows summing to
    counts and columns to sizes.

    Such a rounding always exists (Bacharach 1966); it is found as a flow: every class starts
    at its floors, and each extra row it needs goes to a part with room, through a chain of
    classes that give up one of their extra rows to another part when no part with room is
    directly open to it. Which classes get their extra rows first is drawn from `generator`.
    """
    n = sum(counts)
    table = [[count * size // n for size in sizes] for count in counts]
    can_round_up = [[count * size % n > 0 for size in sizes] for count in counts]
    extra = [[False] * len(sizes) for _ in counts]
    room = [size - sum(row[part] for row in table) for part, size in enumerate(sizes)]
    for c in torch.randperm(len(counts), generator=generator).tolist():
        for _ in range(counts[c] - sum(table[c])):
            part = give_extra_row(c, can_round_up, extra, room)
            room[part] -= 1
    return [[base + added for base, added in zip(row, flags)] for row, flags in zip(table, extra)]


def give_extra_row(start: int, can_round_up: list, extra: list, room: list) -> int:
    """Round class `start` up in one more part, moving other classes' extra rows along a shortest chain; the part that
    fills."""
    parts = range(len(room))
    came_from: dict = {}  # part -> (class that enters it, the part that class leaves, or None for `start`)
    queue = [p for p in parts if can_round_up[start][p] and not extra[start][p]]
    for p in queue:
        came_from[p] = (start, None)
    while queue:
        part = queue.pop(0)
        if room[part] > 0:
            filled = part
            while part is not None:  # each class on the chain enters its part and leaves the previous one
                c, previous = came_from[part]
                extra[c][part] = True
                if previous is not None:
                    extra[c][previous] = False
                part = previous
            return filled
        for c, flags in enumerate(extra):
            if flags[part]:
                for other in parts:
                    if other not in came_from and can_round_up[c][other] and not flags[other]:
                        came_from[other] = (c, part)
                        queue.append(other)
    raise AssertionError("no proportional rounding found; it always exists, so this is a bug in riskmin")


def read_splits(path, n_rows: int) -> list:
    """The splits of a file, as (train, val, test) int64 index tensors into `n_rows` rows, one triple per split.

    Two formats:

    - `.npz` (numpy.savez): integer arrays `train_0`, `val_0` (optional), `test_0`,
      `train_1`, ... for splits 0, 1, ... numbered without gaps. Read with
      allow_pickle=False: an object array or a pickle is refused, never loaded.
    - `.csv`: a header naming the columns `train`, `test`, optionally `val` and `split` (a
      label, ignored), then one line per split whose cells list row indices separated by
      spaces; an empty `val` cell is no validation rows. Example:

          split,train,val,test
          0,0 1 2 3 4 5,6,7 8 9
          1,9 8 7 6 5 4,3,2 1 0

    Every split needs training and test rows; row indices count from 0 and must be below
    `n_rows`, appear at most once in a part and in only one part of a split. Any breach is
    refused in one sentence that names the split and the part.

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "splits.csv")
    >>> _ = open(path, "w").write("train,test\\n0 1 2,3\\n")
    >>> read_splits(path, n_rows=4)
    [(tensor([0, 1, 2]), tensor([], dtype=torch.int64), tensor([3]))]
    """
    path = Path(path)
    if not path.is_file():
        raise RiskminError(f"splits file {path} does not exist; give an .npz or .csv file of row indices")
    if path.suffix.lower() not in (".npz", ".csv"):
        raise RiskminError(
            f"splits file {path.name} must be .npz or .csv (see the README for both formats), not '{path.suffix}'"
        )
    splits = read_npz_parts(path) if path.suffix.lower() == ".npz" else read_csv_parts(path, n_rows)
    if not splits:
        raise RiskminError(f"splits file {path.name} holds no split; give at least one with train and test rows")
    return [checked_split(path.name, number, parts, n_rows) for number, parts in enumerate(splits)]


def read_npz_parts(path: Path) -> list:
    """The arrays of each split, by part name, from an .npz archive, without unpickling anything."""
    with open(path, "rb") as file:
        start = file.read(4)
    if not start.startswith(b"PK"):  # what numpy would otherwise try to unpickle
        kind = "a pickle, which riskmin never loads" if start[:1] == b"\x80" else "not an .npz (zip) archive"
        raise RiskminError(f"splits file {path.name} is {kind}; save the index arrays with numpy.savez")
    splits = {}
    with np.load(path, allow_pickle=False) as archive:
        for name in archive.files:
            match = re.fullmatch(r"(train|val|test)_(\d+)", name)
            if not match:
                raise RiskminError(
                    f"splits file {path.name} holds an array named '{name}'; name them train_0, val_0, "
                    "test_0, train_1, ..."
                )
            try:
                rows = archive[name]
            except ValueError:  # numpy refuses an object array when allow_pickle is False
                raise RiskminError(
                    f"splits file {path.name} holds an object (pickled) array, which riskmin never "
                    "loads; save integer arrays"
                ) from None
            splits.setdefault(int(match.group(2)), {})[match.group(1)] = rows
    missing = sorted(set(range(len(splits))) - set(splits))
    if missing:
        raise RiskminError(
            f"splits file {path.name} has no arrays for split {missing[0]}; number the splits 0, 1, 2, ... without gaps"
        )
    return [splits[number] for number in range(len(splits))]


def read_csv_parts(path: Path, n_rows: int) -> list:
    """The row indices of each split, by part name, from a CSV file of one line per split (`n_rows`: the data's
    rows)."""
    with open(path, newline="") as file:
        lines = list(csv.reader(file))
    header = [name.strip() for name in lines[0]] if lines else []
    unknown = [name for name in header if name not in (*PARTS, "split")]
    if unknown or "train" not in header or "test" not in header or len(set(header)) < len(header):
        raise RiskminError(
            f"splits file {path.name} has columns {header}; its header must name train and test once, "
            "and may name val and split"
        )
    splits = []
    for line_number, cells in enumerate(lines[1:], start=2):
        if not any(cell.strip() for cell in cells):
            continue  # a blank line, as editors leave at the end
        if len(cells) != len(header):
            raise RiskminError(
                f"splits file {path.name} line {line_number} has {len(cells)} cells for the "
                f"{len(header)} columns of its header"
            )
        parts = {}
        for name, cell in zip(header, cells):
            if name in PARTS:
                parts[name] = indices_of_cell(
                    cell, f"splits file {path.name} line {line_number}, column {name},", n_rows
                )
        splits.append(parts)
    return splits


def indices_of_cell(cell: str, where: str, n_rows: int) -> np.ndarray:
    tokens = cell.split()
    try:
        return np.array(tokens, dtype=np.int64)
    except ValueError:
        bad = next(token for token in tokens if not re.fullmatch(r"[+-]?\d+", token))
        raise RiskminError(
            f"{where} holds '{bad}', which is not a row index; list whole numbers separated by spaces"
        ) from None
    except OverflowError:  # a whole number beyond int64, so beyond any row
        bad = next(int(token) for token in tokens if not -(2**63) <= int(token) < 2**63)
        if bad < 0:
            raise RiskminError(f"{where} holds the negative row index {bad}; row indices count from 0") from None
        raise RiskminError(f"{where} holds row {bad}, but the data has {n_rows} rows (0 to {n_rows - 1})") from None


def checked_split(name: str, number: int, parts: dict, n_rows: int) -> tuple:
    """(train, val, test) int64 tensors of one split, after checking every index."""
    where = f"splits file {name}: split {number}"
    for part in ("train", "test"):
        if part not in parts or np.size(parts[part]) == 0:
            raise RiskminError(f"{where} has no {part} rows; every split needs training and test rows")
    parts = check_parts(parts, n_rows, where)
    for part, rows in parts.items():
        unique, counts = np.unique(rows.numpy(), return_counts=True)
        if (counts > 1).any():  # a file lists its rows: one listed twice is a slip, not a bootstrap
            raise RiskminError(
                f"{part} of {where} lists row {unique[counts > 1][0]} more than once; list each row once"
            )
    return tuple(parts.get(part, torch.empty(0, dtype=torch.long)) for part in PARTS)
