"""A table's columns made into tensors: the feature layout, missing values, and the target's task and classes.

A table's feature columns are described by a layout, fitted once on the file that trains a
run and stored with it, so that `predict` and `evaluate` encode new rows the same way:

    {"name": "rooms", "kind": "numeric"}                                one input
    {"name": "city", "kind": "categorical", "categories": ["a", "b"]}   one input per category

A categorical value the layout does not list becomes all zeros (and is counted); a missing
numeric value stays NaN until the run's preprocessing fills it with a training-split mean.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .config import RiskminError

MAX_CLASSES = 20  # a whole-number target with at most this many distinct values is taken for class labels


def as_numpy(column) -> np.ndarray:
    """A pyarrow column as one NumPy array, empty cells of a number column as NaN (without pandas, which
    pyarrow would import to convert a chunked column)."""
    column = real_valued(column) if is_numeric(column) else column
    chunks = [chunk.to_numpy(zero_copy_only=False) for chunk in column.chunks]
    if len(chunks) == 1:
        return chunks[0]
    return np.concatenate(chunks) if chunks else np.empty(0, dtype=column.type.to_pandas_dtype())


def real_valued(column):
    """A number column with its empty cells as NaN (whole numbers become float64 when some are empty)."""
    import pyarrow
    import pyarrow.compute as pc

    if not column.null_count:
        return column
    return pc.fill_null(column if pyarrow.types.is_floating(column.type) else column.cast(pyarrow.float64()), float("nan"))


def has_holes(column) -> bool:
    """Whether a column has an empty cell, or a NaN in a real-valued one."""
    import pyarrow
    import pyarrow.compute as pc

    return bool(column.null_count) or (pyarrow.types.is_floating(column.type) and bool(pc.any(pc.is_nan(column)).as_py()))


def is_numeric(column) -> bool:
    import pyarrow

    kind = column.type
    return pyarrow.types.is_integer(kind) or pyarrow.types.is_floating(kind) or pyarrow.types.is_boolean(kind)


def missing_mask(column) -> np.ndarray:
    """True where a cell is empty, or NaN in a float column."""
    import pyarrow
    import pyarrow.compute as pc

    return as_numpy(pc.is_null(column, nan_is_null=pyarrow.types.is_floating(column.type)))


def handle_missing(table, features: list, targets: list, missing: str, path: Path) -> tuple:
    """The table with the rows `missing` drops, and notes saying what was done."""
    import pyarrow

    holes = {name: missing_mask(table.column(name)) for name in [*features, *targets] if has_holes(table.column(name))}
    if not holes:
        return table, []
    if missing == "error":
        summary = ", ".join(f"{name} ({int(mask.sum())})" for name, mask in holes.items())
        rows = np.flatnonzero(np.logical_or.reduce(list(holes.values())))[:5]
        raise RiskminError(f"{path.name} has missing values, empty or NaN, in columns {summary}, first at rows {', '.join(map(str, rows))}; "
                           "pass --missing drop to drop those rows or --missing mean to fill features with training-split means")
    drop = [name for name in holes if missing == "drop" or name in targets]  # a missing target can never be filled
    if not drop:
        return table, [f"missing feature values are filled with training-split means ({', '.join(holes)})"]
    keep = ~np.logical_or.reduce([holes[name] for name in drop])
    if not keep.any():
        raise RiskminError(f"every row of {path.name} has a missing value in {', '.join(drop)}; no row is left to train on")
    notes = [f"dropped {int((~keep).sum())} of {len(keep)} rows with missing values in {', '.join(drop)}"]
    filled = [name for name in holes if name not in drop]
    if filled:
        notes.append(f"missing feature values are filled with training-split means ({', '.join(filled)})")
    return table.filter(pyarrow.array(keep)), notes


def describe(column, name: str) -> dict:
    """The layout entry of one feature column: numeric, or categorical with its sorted categories."""
    if is_numeric(column):
        return {"name": name, "kind": "numeric"}
    return {"name": name, "kind": "categorical", "categories": sorted(set(text_values(column)) - {None})}


def text_values(column) -> list:
    import pyarrow
    import pyarrow.compute as pc

    if pyarrow.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    return pc.cast(column, pyarrow.string()).to_pylist()


def input_names(layout: list) -> list:
    """The model's input columns: a numeric feature's name, or name=category for each category."""
    return [f"{c['name']}={v}" if c["kind"] == "categorical" else c["name"] for c in layout for v in c.get("categories", [None])]


def encode(table, layout: list, path: Path, missing: str) -> tuple:
    """(float32 inputs, {column: values not among its categories}) of a table's rows, by `layout`."""

    x = np.zeros((table.num_rows, len(input_names(layout))), dtype=np.float32)
    unseen, at = {}, 0
    for spec in layout:
        column = table.column(spec["name"])
        if spec["kind"] == "numeric":
            if not is_numeric(column):
                example = column.slice(0, 1).to_pylist()[0]
                raise RiskminError(f"column {spec['name']} of {path.name} holds {column.type} values such as {example!r} "
                                   "but the run was trained on numbers there")
            if missing != "mean" and has_holes(column):
                rows = np.flatnonzero(missing_mask(column))[:5]
                raise RiskminError(f"column {spec['name']} of {path.name} has missing values (first at rows {', '.join(map(str, rows))}); "
                                   "fill them: the run was trained without --missing mean")
            row = 0
            for chunk in real_valued(column).chunks:  # chunk by chunk into x: no whole-column copy on the way
                x[row:row + len(chunk), at] = chunk.to_numpy(zero_copy_only=False)
                row += len(chunk)
            at += 1
            continue
        lookup = {value: i for i, value in enumerate(spec["categories"])}
        values = text_values(column)
        codes = np.array([lookup.get(v, -1) for v in values], dtype=np.int64)
        found = codes >= 0
        x[np.flatnonzero(found), at + codes[found]] = 1.0
        strangers = sum(1 for v, hit in zip(values, found) if not hit and v is not None)
        if strangers:
            unseen[spec["name"]] = strangers
        at += len(spec["categories"])
    return x, unseen


def target_values(table, targets: list, task: str, loss: str, path: Path) -> tuple:
    """(task, y, class names or None, a note saying what was guessed) for the target columns."""
    columns = [table.column(name) for name in targets]
    numeric = all(is_numeric(c) for c in columns)
    if task == "auto":
        task = "regression"
        if len(columns) == 1 and (not numeric or loss in ("cross_entropy", "bce") or (loss == "auto" and few_whole_numbers(columns[0]))):
            task = "classification"
        guessed = "guessed"
    else:
        guessed = "as asked"
    if task == "regression":
        if not numeric:
            bad = next(name for name, c in zip(targets, columns) if not is_numeric(c))
            raise RiskminError(f"target column {bad} of {path.name} holds text, which regression cannot fit; use --task classification")
        y = np.column_stack([as_numpy(c) for c in columns]).astype(np.float32, copy=False)
        return task, torch.from_numpy(y), None, f"task: regression ({guessed}) on {', '.join(targets)}; override with --task"
    if len(columns) != 1:
        raise RiskminError(f"classification takes one target column but {len(columns)} were given ({', '.join(targets)}); name one with --target")
    classes, codes = class_codes(columns[0], targets[0], path)
    note = (f"task: classification ({guessed}): {targets[0]} has {len(classes)} classes "
            f"({', '.join(classes[:6])}{', ...' if len(classes) > 6 else ''}); override with --task")
    y = torch.from_numpy(codes)
    if loss == "bce":
        if len(classes) != 2:
            raise RiskminError(f"loss bce needs two classes but {targets[0]} has {len(classes)}; use --loss cross_entropy")
        y = y.float()[:, None]
    return task, y, classes, note


def few_whole_numbers(column) -> bool:
    import pyarrow
    import pyarrow.compute as pc

    if not (pyarrow.types.is_integer(column.type) or pyarrow.types.is_boolean(column.type)):
        return False
    return len(pc.unique(column)) <= MAX_CLASSES


def class_codes(column, name: str, path: Path) -> tuple:
    """(class names, int64 codes): numbers sorted as numbers, text sorted as text."""
    if is_numeric(column):
        values = as_numpy(column)
        if np.issubdtype(values.dtype, np.floating) and not np.all(values == np.round(values)):
            raise RiskminError(f"target column {name} of {path.name} holds fractions, which are not class labels; use --task regression")
        found, codes = np.unique(values, return_inverse=True)
        classes = [str(int(v)) if not isinstance(v, (bool, np.bool_)) else str(v).lower() for v in found]
        return classes, codes.astype(np.int64)
    found, codes = np.unique(np.array(text_values(column), dtype=object), return_inverse=True)
    return [str(v) for v in found], codes.astype(np.int64)


def target_for_run(table, names: dict, path: Path) -> torch.Tensor:
    """A file's target columns encoded as the run's were: class indices by its class names, or real numbers."""
    columns = [table.column(name) for name in names["targets"]]
    for name, column in zip(names["targets"], columns):
        if missing_mask(column).any():
            raise RiskminError(f"target column {name} of {path.name} has missing values; drop those rows to evaluate")
    classes = names.get("classes")
    if not classes:
        return torch.from_numpy(np.column_stack([as_numpy(c) for c in columns]).astype(np.float32, copy=False))
    lookup = {label: i for i, label in enumerate(classes)}
    found, codes = class_codes(columns[0], names["targets"][0], path)
    strangers = [label for label in found if label not in lookup]
    if strangers:
        raise RiskminError(f"target column {names['targets'][0]} of {path.name} holds {strangers[0]!r}, which is not one of the run's classes "
                           f"({', '.join(classes)})")
    y = torch.tensor([lookup[label] for label in found], dtype=torch.int64)[torch.from_numpy(codes)]
    return y.float()[:, None] if names.get("loss") == "bce" else y
