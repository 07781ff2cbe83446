"""A table's columns made into tensors: which are features (not row identifiers), the feature layout,
missing values, and the target's task (guessed by one stated rule, `guessed_task`) and classes.

A table's feature columns are described by a layout, fitted once on the file that trains a
run and stored with it, so that `predict` and `evaluate` encode new rows the same way:

    {"name": "rooms", "kind": "numeric"}                                one input
    {"name": "city", "kind": "categorical", "categories": ["a", "b"]}   one input per category
    {"name": "town", "kind": "categorical", "categories": ["a", "b", OTHER], "other": True}

A column with more categories than `category_bound` allows keeps its most frequent ones and
one input, OTHER, for all the rest. A categorical value the layout does not list becomes
all zeros (and is counted), or OTHER where the layout has it; a missing numeric value stays
NaN until the run's preprocessing fills it with a training-split mean.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from ..config import RiskminError
from ..data import check_finite

MAX_CATEGORIES = 50  # a text column expands to at most this many inputs (with OTHER), and to at most 10% of the rows
MIN_CATEGORIES = 10  # ...but the 10% never bounds a small file below this many
OTHER = "(other)"  # the one input that stands for every category beyond the bound
MAX_LABELS = 3  # a whole-number target with at most this many distinct values is class labels: 0/1, -1/1, -1/0/1
MAX_CLASSES = 20  # ...and so is one that holds the class codes 0, 1, ..., k-1 for k up to this many
ID_ROWS = 20  # a column is judged an identifier by its values only in a table of at least this many rows
ID_SHARE = 0.95  # a text column with a different value in at least this share of its rows is an identifier
ID_NAMES = re.compile(r"(^|[_\-\s.])(id|uuid|guid)$|^(index|idx|row|rowid|rownum|row_?number|rownames)$", re.IGNORECASE)
CAMEL_ID = re.compile(r"[a-z](Id|ID)$")  # PassengerId, customerID
PANDAS_INDEX = re.compile(r"__index_level_\d+__")  # the name pandas gives an unnamed index it writes to a Parquet file


def as_numpy(column) -> np.ndarray:
    """A pyarrow column as one NumPy array, empty cells of a number column as NaN (without pandas, which
    pyarrow would import to convert a chunked column)."""
    column = real_valued(column) if is_numeric(column) else column
    chunks = [array_numpy(chunk) for chunk in column.chunks]
    if len(chunks) == 1:
        return chunks[0]
    return np.concatenate(chunks) if chunks else np.empty(0, dtype=column.type.to_pandas_dtype())


def array_numpy(chunk) -> np.ndarray:
    """One pyarrow array as NumPy. Numbers and booleans without empty cells go through DLPack, a public protocol
    pyarrow serves without pandas: its to_numpy imports pandas where it is installed (a large part of a `predict`,
    benchmarks/startup.py) to convert even a float column. Text, dates and empty cells still go through to_numpy.

    >>> import pyarrow
    >>> array_numpy(pyarrow.chunked_array([[1.5, 2.0]]).chunks[0]), array_numpy(pyarrow.array([True, False]))
    (array([1.5, 2. ]), array([ True, False]))
    """
    import pyarrow
    import pyarrow.compute as pc

    kind = chunk.type
    if chunk.null_count == 0:
        if pyarrow.types.is_boolean(kind):  # DLPack holds no bits: one byte per cell first
            return np.from_dlpack(pc.cast(chunk, pyarrow.uint8())).astype(bool)
        if pyarrow.types.is_integer(kind) or pyarrow.types.is_floating(kind):
            return np.from_dlpack(chunk)
    return chunk.to_numpy(zero_copy_only=False)


def real_valued(column):
    """A number column with its empty cells as NaN (whole numbers become float64 when some are empty)."""
    import pyarrow
    import pyarrow.compute as pc

    if not column.null_count:
        return column
    return pc.fill_null(
        column if pyarrow.types.is_floating(column.type) else column.cast(pyarrow.float64()), float("nan")
    )


def has_holes(column) -> bool:
    """Whether a column has an empty cell, or a NaN in a real-valued one."""
    import pyarrow
    import pyarrow.compute as pc

    return bool(column.null_count) or (
        pyarrow.types.is_floating(column.type) and bool(pc.any(pc.is_nan(column)).as_py())
    )


FLOAT32_MAX = float(np.finfo(np.float32).max)
COARSE = 1e-3  # float32 must resolve a thousandth of a column's spread; a column it cannot is centred in float64 first


def offset(column, name: str = "") -> tuple:
    """(the float64 mean to subtract from a number column before it becomes float32, or None; a note, or None).

    float32 keeps 24 bits: a column of values like 1e9 + 100 z (a Unix time) comes out in steps
    of 64, and training on it is training on noise. Such a column is centred in float64 on the
    mean of the file's values and then cast, so its spread keeps its digits; standardizing on the
    training split comes after, as for any column. A column even float64 cannot resolve is named.

    >>> import pyarrow
    >>> offset(pyarrow.chunked_array([[1e9, 1e9 + 100.0]]))[0], offset(pyarrow.chunked_array([[1.0, 2.0]]))[0]
    (1000000050.0, None)
    """
    import pyarrow
    import pyarrow.compute as pc

    if pyarrow.types.is_float32(column.type) or pyarrow.types.is_boolean(column.type) or len(column) < 2:
        return None, None
    values = pc.cast(column, pyarrow.float64())
    largest, spread, mean = pc.max(pc.abs(values)).as_py(), pc.stddev(values, ddof=1).as_py(), pc.mean(values).as_py()
    if (
        not all(v is not None and math.isfinite(v) for v in (largest, spread, mean))
        or spread == 0
        or largest > FLOAT32_MAX
    ):
        return None, None  # beyond float32 altogether: refused by name where the inputs are checked
    if np.spacing(np.float32(largest)) <= COARSE * spread:
        return None, None
    if np.spacing(largest) > COARSE * spread:
        return mean, (
            f"column {name} varies by about {spread:.3g} around {mean:.10g}, finer than even float64 holds "
            f"values of that size (steps of {np.spacing(largest):.2g}): subtract a constant from it before "
            "saving the file"
        )
    return mean, None


def is_numeric(column) -> bool:
    import pyarrow

    kind = column.type
    return pyarrow.types.is_integer(kind) or pyarrow.types.is_floating(kind) or pyarrow.types.is_boolean(kind)


def missing_mask(column) -> np.ndarray:
    """True where a cell is empty, or NaN in a float column."""
    import pyarrow
    import pyarrow.compute as pc

    return as_numpy(pc.is_null(column, nan_is_null=pyarrow.types.is_floating(column.type)))


def without_identifiers(table, names: list) -> tuple:
    """(the names that are not row identifiers, a note naming those left out or None).

    An identifier is named like one (id, *_id, PassengerId, uuid, index, row_number, an empty
    name or pandas' "Unnamed: 0"), or holds text that differs in ID_SHARE of the rows, or is
    the table's first column and holds the row numbers: whole numbers from 0 or 1, all
    distinct, spanning fewer than twice as many values as there are rows (a year column
    elsewhere in the table is a feature). When every feature looks like an identifier, all stay.
    """
    indexes = pandas_index(table)
    reasons = {
        name: "the index pandas wrote with the table"
        if name in indexes
        else identifier(table.column(name), name, first=name == table.column_names[0])
        for name in names
    }
    left_out = [f"{name or repr(name)} ({why})" for name, why in reasons.items() if why]
    if not left_out or all(reasons.values()):
        return names, None
    return (
        [name for name in names if not reasons[name]],
        f"left out of the features as row identifiers: {', '.join(left_out)}; name a column in --features to keep it",
    )


def pandas_index(table) -> set:
    """The columns that hold the index of the DataFrame a Parquet file was saved from (pandas' metadata in the file
    names them; pd.read_parquet makes them the index again, which riskmin leaves out of a DataFrame's features)."""
    try:
        written = table.schema.pandas_metadata
    except (ValueError, TypeError):  # metadata that is not JSON
        written = None
    listed = written.get("index_columns") if isinstance(written, dict) else None  # another writer's may be any JSON
    return {name for name in listed if isinstance(name, str)} if isinstance(listed, list) else set()


def identifier(column, name: str, first: bool) -> str:
    """Why a column is a row identifier, or "" when it is not."""
    import pyarrow
    import pyarrow.compute as pc

    if not name.strip() and column.null_count == len(column):  # a separator that ends (or begins) every line
        return f"no name and no value: a separator {'begins' if first else 'ends'} every line"
    if not name.strip() or name.lower().startswith("unnamed:") or PANDAS_INDEX.fullmatch(name):
        return "no name: an index written with the table"
    if ID_NAMES.search(name.strip()) or CAMEL_ID.search(name.strip()):
        return "named like one"
    present = len(column) - column.null_count
    text = not is_numeric(column)
    if present < ID_ROWS or pyarrow.types.is_boolean(column.type) or not (text or first):
        return ""
    if text:
        return "a different text in almost every row" if pc.count_distinct(column).as_py() >= ID_SHARE * present else ""
    bounds = pc.min_max(column).as_py()  # first the checks that allocate nothing: most columns stop here
    if (
        bounds["min"] not in (0, 1)
        or bounds["max"] - bounds["min"] >= 2 * present
        or pc.count_distinct(column).as_py() < present
    ):
        return ""
    values = as_numpy(pc.drop_null(column))
    return "row numbers" if np.all(values == np.round(values)) else ""


class FileRows(np.ndarray):
    """The numbers in its file (from 0) of a table's rows once some were dropped (handle_missing), by which a message
    names a row, where a DataFrame's rows are named by the labels of its index (any other array of them)."""


def row_list(rows, index=None) -> str:
    """Rows of a table as a message names them: counted from 0, as Python and pandas count them, the header no row; or
    the rows of a pandas DataFrame by its `index`, the labels of its rows: once a frame is shuffled, filtered or indexed
    by a column (df.iloc[::2], train_test_split, set_index), a position names another row than df.loc does; or, as
    FileRows, the file's own numbers of the rows left once `handle_missing` dropped some.

    >>> row_list([3]), row_list([1, 2]), row_list([1], index=["a", "b"]), row_list([0, 1], index=[6, 8])
    ('row 3 (counting from 0)', 'rows 1, 2 (counting from 0)', "the row with index 'b'", 'the rows with index 6, 8')
    >>> row_list([1], index=np.array([0, 2, 3]).view(FileRows)), row_list([1], index=np.array([0, 2, 3]))
    ('row 2 (counting from 0)', 'the row with index 2')
    """
    rows = [int(row) for row in rows]
    if isinstance(index, FileRows):  # a file's rows after a drop: named by their numbers in the file
        rows, index = [int(index[row]) for row in rows], None
    if index is not None:
        return f"the row{'s' * (len(rows) > 1)} with index {', '.join(label_text(index[row]) for row in rows)}"
    return f"row{'s' * (len(rows) > 1)} {', '.join(map(str, rows))} (counting from 0)"


def label_text(label) -> str:
    """An index label as a message writes it: text quoted, so that 'b' reads as a label, anything else as it prints; a
    MultiIndex's tuple of labels each so, a NumPy number as the number.

    >>> label_text("b"), label_text(np.int64(6)), label_text((np.int64(128), "x"))
    ("'b'", '6', "(128, 'x')")
    """
    if isinstance(label, tuple):
        return f"({', '.join(label_text(each) for each in label)})"
    label = label.item() if isinstance(label, np.generic) else label
    return repr(label) if isinstance(label, str) else str(label)


def handle_missing(
    table, features: list, targets: list, missing: str, path: Path, strays: dict = None, index=None
) -> tuple:
    """(the table with the rows `missing` drops, notes saying what was done, `index` with the same rows dropped).

    `strays` are the text cells of number columns already made missing ({column: (count,
    rows, texts)}); the error names them, as the user may not call a '?' empty. `index`: a DataFrame's row labels, by
    which the error names its rows (see row_list), or None for a file's; once rows are dropped from a file, the index
    given back holds the file's numbers of the rows left, by which a later message names them.
    """
    import pyarrow

    holes = {name: missing_mask(table.column(name)) for name in [*features, *targets] if has_holes(table.column(name))}
    if not holes:
        return table, [], index
    empty = [name for name in features if name in holes and holes[name].all()]
    if empty:  # neither dropping its rows nor a mean can mend it
        raise RiskminError(
            f"column {empty[0]} of {path.name} is empty in every row, so it holds nothing to learn from; leave it out "
            "of the features (--features names the columns to use)"
        )
    if missing == "error":
        summary = ", ".join(f"{name} ({int(mask.sum())})" for name, mask in holes.items())
        rows = np.flatnonzero(np.logical_or.reduce(list(holes.values())))[:5]
        texts = "; ".join(
            f"{name} holds text in {count} number cell{'s' * (count > 1)} "
            f"({', '.join(map(repr, dict.fromkeys(found)))})"
            for name, (count, _, found) in (strays or {}).items()
        )
        raise RiskminError(
            f"{path.name} has missing values, empty or NaN, in column{'s' * (len(holes) > 1)} {summary}, first at "
            f"{row_list(rows, index)}"
            f"{'; ' + texts + ', taken as missing' if texts else ''}; "
            "pass --missing drop to drop those rows or --missing mean to fill features with "
            "training-split means"
        )
    drop = [name for name in holes if missing == "drop" or name in targets]  # a missing target can never be filled
    filled = filled_note(table, [name for name in holes if name not in drop])
    if not drop:
        return table, filled, index
    keep = ~np.logical_or.reduce([holes[name] for name in drop])
    if not keep.any():
        raise RiskminError(
            f"every row of {path.name} has a missing value in {', '.join(drop)}; no row is left to train on"
        )
    notes = [f"dropped {int((~keep).sum())} of {len(keep)} rows with missing values in {', '.join(drop)}"]
    left = np.flatnonzero(keep).view(FileRows) if index is None else index[keep]
    return table.filter(pyarrow.array(keep)), notes + filled, left


def filled_note(table, names: list) -> list:
    """What --missing mean does to the columns `names`: numbers get a mean, text no category at all."""
    numbers = [name for name in names if is_numeric(table.column(name))]
    texts = [name for name in names if name not in numbers]
    said = (
        [f"missing feature values are filled with training-split means ({', '.join(numbers)})"] if numbers else []
    ) + ([f"empty text cells get no category, all their inputs 0 ({', '.join(texts)})"] if texts else [])
    return ["; ".join(said)] if said else []


def category_bound(rows: int) -> int:
    """How many inputs one text column may become: MAX_CATEGORIES, and 10% of the rows but never under
    MIN_CATEGORIES."""
    return min(MAX_CATEGORIES, max(MIN_CATEGORIES, rows // 10))


def column_layout(column, name: str, rows: int = 0) -> tuple:
    """(the layout entry of one feature column, a note when its categories were capped, else None).

    A text column is categorical with its sorted categories; past `category_bound(rows)` only
    the most frequent ones keep an input and OTHER takes the rest (ties go to the first name).
    """
    import pyarrow
    import pyarrow.compute as pc

    if is_numeric(column):
        centre, note = offset(column, name)
        return {"name": name, "kind": "numeric", **({"offset": centre} if centre is not None else {})}, note
    counts = pc.value_counts(pc.cast(column, pyarrow.string())).to_pylist()
    counts = sorted(
        ((c["counts"], c["values"]) for c in counts if c["values"] is not None), key=lambda pair: (-pair[0], pair[1])
    )
    bound = category_bound(rows or len(column))
    if len(counts) <= bound:
        return {"name": name, "kind": "categorical", "categories": sorted(value for _, value in counts)}, None
    kept = sorted(value for _, value in counts[: bound - 1])
    others = sum(count for count, _ in counts[bound - 1 :])
    note = (
        f"column {name} has {len(counts)} categories, more than the {bound} inputs a text column may become "
        f"(at most {MAX_CATEGORIES}, and 10% of the rows): its {bound - 1} most frequent each get an input and the "
        f"other {len(counts) - bound + 1} ({others} rows) share {name}={OTHER}"
    )
    return {"name": name, "kind": "categorical", "categories": [*kept, OTHER], "other": True}, note


def text_values(column) -> list:
    import pyarrow
    import pyarrow.compute as pc

    if pyarrow.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    return pc.cast(column, pyarrow.string()).to_pylist()


def input_names(layout: list) -> list:
    """The model's input columns: a numeric feature's name, or name=category for each category."""
    return [
        f"{c['name']}={v}" if c["kind"] == "categorical" else c["name"]
        for c in layout
        for v in c.get("categories", [None])
    ]


def input_centres(layout: list) -> torch.Tensor:
    """Per model input, the float64 centre its column is read with (see `offset`), 0 for the others."""
    return torch.tensor(
        [c.get("offset") or 0.0 for c in layout for _ in c.get("categories", [None])], dtype=torch.float64
    )


def encode(table, layout: list, path: Path, missing: str, index=None) -> tuple:
    """(float32 inputs, {column: values not among its categories}) of a table's rows, by `layout`; `index`: a
    DataFrame's row labels, by which a missing value's row is named (see row_list), or None for a file's."""

    x = np.zeros((table.num_rows, len(input_names(layout))), dtype=np.float32)
    unseen, at = {}, 0
    for spec in layout:
        column = table.column(spec["name"])
        if spec["kind"] == "numeric":
            if not is_numeric(column):
                example = column.slice(0, 1).to_pylist()[0]
                raise RiskminError(
                    f"column {spec['name']} of {path.name} holds {column.type} values such as "
                    f"{example!r} but the run was trained on numbers there"
                )
            if missing != "mean" and has_holes(column):
                rows = np.flatnonzero(missing_mask(column))[:5]
                raise RiskminError(
                    f"column {spec['name']} of {path.name} has missing values, first at {row_list(rows, index)}; fill "
                    "them: the run was trained without --missing mean"
                )
            row, centre = 0, spec.get("offset")
            for chunk in real_valued(column).chunks:  # chunk by chunk into x: no whole-column copy on the way
                values = array_numpy(chunk)
                # see offset()
                x[row : row + len(chunk), at] = values if centre is None else values.astype(np.float64) - centre
                row += len(chunk)
            at += 1
            continue
        categories = spec["categories"]
        lookup = {value: i for i, value in enumerate(categories)}
        beyond = len(categories) - 1 if spec.get("other") else -1  # a category past the bound is OTHER, not unseen
        values = text_values(column)
        codes = np.array([-1 if v is None else lookup.get(v, beyond) for v in values], dtype=np.int64)
        found = codes >= 0
        x[np.flatnonzero(found), at + codes[found]] = 1.0
        strangers = sum(1 for v, hit in zip(values, found) if not hit and v is not None)
        if strangers:
            unseen[spec["name"]] = strangers
        at += len(categories)
    return x, unseen


def target_values(table, targets: list, task: str, loss: str, path: Path, index=None) -> tuple:
    """(task, y, class labels or None, a note saying what was guessed and why) for the target columns; `index`: the
    labels of the table's rows, by which an infinite target value's row is named (see row_list)."""
    check_finite_targets(table, targets, index)
    columns = [table.column(name) for name in targets]
    numeric = all(is_numeric(c) for c in columns)
    how, why = "as asked", ""
    if task == "auto":
        how = "guessed"
        task, why, either = auto_task(columns, loss, numeric)
    reason = (f"; {why}" if why else "") + override_hint(task, how == "guessed" and either)
    if task == "regression":
        y = regression_target(columns, targets, numeric, path)
        return task, y, None, f"task: regression ({how}) on {', '.join(targets)}{reason}"
    if len(columns) > 1 and loss == "bce":  # several yes/no targets, one output each
        held = f"{len(targets)} yes/no targets ({', '.join(targets)})"
        return task, yes_no_targets(columns, targets, path), None, f"task: classification ({how}): {held}{reason}"
    y, classes = classification_target(columns, targets, loss, path)
    note = f"task: classification ({how}): {targets[0]} has {len(classes)} classes ({classes_text(classes, 6)}){reason}"
    return task, y, classes, note


# the words a yes/no target column may hold in place of 1 and 0, whatever their case
YES, NO = ("yes", "y", "true", "t"), ("no", "n", "false", "f")


def yes_no_targets(columns: list, targets: list, path: Path) -> torch.Tensor:
    """Several target columns of 0 and 1, true and false, or yes and no (y and n) side by side as float32, the yes/no
    targets loss bce fits (yes is 1); a column holding anything else is refused, naming a value it holds."""
    found = []
    for name, column in zip(targets, columns):
        values = yes_no_values(column)
        if values is None:
            if is_numeric(column):
                numbers = as_numpy(column).astype(np.float64)
                held, remedy = (
                    f"{numbers[~np.isin(numbers, (0.0, 1.0))][0]:g}",
                    "use --loss mse to fit the columns as numbers",
                )
            else:
                words = [value for value in text_values(column) if value.strip().lower() not in YES + NO]
                held, remedy = repr(words[0]), "write it as 0/1, yes/no or true/false"
            raise RiskminError(
                f"target column {name} of {path.name} holds {held}, not 0 or 1, which loss bce cannot fit as a "
                f"yes/no target; {remedy}, or name a column of classes alone with --target"
            )
        found.append(values)
    return torch.from_numpy(np.column_stack(found).astype(np.float32, copy=False))


def yes_no_values(column) -> Optional[np.ndarray]:
    """A target column of 0 and 1, true and false, or yes and no (y and n, any case) as 0.0 and 1.0; None for any
    other."""
    if is_numeric(column):
        values = as_numpy(column).astype(np.float64)
        return values if bool(np.isin(values, (0.0, 1.0)).all()) else None
    words = np.array([value.strip().lower() for value in text_values(column)])
    return np.isin(words, YES).astype(np.float64) if bool(np.isin(words, YES + NO).all()) else None


def check_finite_targets(table, targets: list, index=None) -> None:
    """Refuse an infinite value (or NaN) in a target column of real numbers, in the words Data refuses it in a
    regression target (data.check_finite), before the task is guessed or classes are coded: both read every value as a
    finite number, and an infinity among whole numbers is neither a class nor a score. `index`: see row_list."""
    import pyarrow

    names = [name for name in targets if pyarrow.types.is_floating(table.column(name).type)]
    if names:
        y = torch.from_numpy(np.column_stack([as_numpy(table.column(name)) for name in names]))
        check_finite(y, y, "y", names, labels=index)


def auto_task(columns: list, loss: str, numeric: bool) -> tuple:
    """(task, the rule that decided it, whether the other task could take the target) for --task auto: the number of
    targets, then the loss, then the values."""
    if len(columns) > 1 and loss == "bce":
        return "classification", "--loss bce takes yes/no targets", False
    if len(columns) > 1:
        return "regression", "several targets are regression", False
    if loss in ("cross_entropy", "bce"):
        return "classification", f"--loss {loss} takes classes", False
    if loss != "auto" and numeric:
        return "regression", f"--loss {loss} takes numbers", False
    return guessed_task(as_numpy(columns[0]) if numeric else None)


def override_hint(task: str, either: bool) -> str:
    """The end of the task note: the other task, where the values alone decided and it could take them (`either`);
    none where the task was asked for, or a rule left no other (several targets, the loss, text, fractions)."""
    other = "regression" if task == "classification" else "classification"
    return f"; override with --task {other}" if either else ""


def regression_target(columns: list, targets: list, numeric: bool, path: Path) -> torch.Tensor:
    """The target columns side by side as float64, one column each; a text column is refused."""
    if not numeric:
        bad = next(name for name, c in zip(targets, columns) if not is_numeric(c))
        remedy = (
            "several target columns are fitted as numbers side by side, so name it alone with --target to classify it"
            if len(targets) > 1
            else "use --task classification"
        )
        raise RiskminError(f"target column {bad} of {path.name} holds text, which regression cannot fit; {remedy}")
    # float64, made float32 by Data once it has checked what float32 does to it (check_float32)
    y = np.column_stack([as_numpy(c) for c in columns]).astype(np.float64, copy=False)
    return torch.from_numpy(y)


def classification_target(columns: list, targets: list, loss: str, path: Path) -> tuple:
    """(y, class labels) of the one target column: int64 class indices, or for loss bce a float column of 0/1."""
    if len(columns) != 1:
        raise RiskminError(
            f"classification takes one target column but {len(columns)} were given "
            f"({', '.join(targets)}); name one with --target, or, for several yes/no targets, use --loss bce"
        )
    classes, codes = column_classes(columns[0], targets[0], path)
    if len(classes) == 1:
        raise RiskminError(
            f"target column {targets[0]} of {path.name} holds one class, {class_text(classes[0])}, in every row; "
            "classification needs rows of at least two classes"
        )
    y = torch.from_numpy(codes)
    if loss == "bce":
        if len(classes) != 2:
            raise RiskminError(
                f"loss bce needs two classes but {targets[0]} has {len(classes)}; use --loss cross_entropy"
            )
        y = y.float()[:, None]
    return y, classes


def guessed_task(values) -> tuple:
    """(task, the rule that decided it, whether the other task could take the values) for one target column: its values
    as numbers, or None for text.

    Text and true/false are classes (true/false regress as 1 and 0, text not). Real numbers are regression (and not
    class labels). Whole numbers are class
    labels when they take at most MAX_LABELS values (0/1, -1/1, -1/0/1) or are exactly the
    codes 0..k-1 for k up to MAX_CLASSES (as iris, wine and digits write theirs); any other
    whole numbers are scores or counts (wine quality 3..8, ratings 1..5, ages): regression.
    """
    if values is None:
        return "classification", "text values are class names", False
    if values.dtype == bool:
        return "classification", "true/false values are two classes", True
    if np.issubdtype(values.dtype, np.floating) and not np.all(values == np.round(values)):
        return "regression", "its values are real numbers", False
    found = np.unique(values)
    if len(found) <= MAX_LABELS:
        return "classification", f"{len(found)} distinct whole numbers are class labels", True
    low, high = int(found[0]), int(found[-1])
    if len(found) <= MAX_CLASSES and low == 0 and high == len(found) - 1:
        return "classification", f"whole numbers 0..{high} are class codes", True
    return (
        "regression",
        f"{len(found)} distinct whole numbers, {low}..{high}, are scores or counts, not class codes",
        True,
    )


def column_classes(column, name: str, path: Path) -> tuple:
    """(class labels, int64 codes) of a target column (see class_codes); fractions are refused."""
    if not is_numeric(column):
        return class_codes(np.array(text_values(column), dtype=object))
    values = as_numpy(column)
    if np.issubdtype(values.dtype, np.floating) and not np.all(values == np.round(values)):
        raise RiskminError(
            f"target column {name} of {path.name} holds fractions, which are not class labels; use --task regression"
        )
    return class_codes(values)


def class_codes(values: np.ndarray) -> tuple:
    """(class labels, int64 codes 0..k-1): numbers sorted as numbers (-1, 0, 1), text sorted as text.

    The labels keep the type the target held them in, as plain Python values that preprocessing.json holds as they
    are: whole numbers as int, true/false as bool, anything else as str. `predict` gives a class back as its label, so
    a prediction compares equal to the target it predicts (0, not "0").
    """
    found, codes = np.unique(values, return_inverse=True)
    if values.dtype == bool:
        classes = [bool(v) for v in found]
    elif np.issubdtype(values.dtype, np.number):
        classes = [int(v) for v in found]
    else:
        classes = [str(v) for v in found]
    return classes, codes.astype(np.int64).reshape(-1)


def class_text(label) -> str:
    """A class label as text, as a CSV file writes it and a message names it: true/false for booleans, as a CSV file
    spells them; a label read from a run written before riskmin kept labels' types is text already."""
    return str(label).lower() if isinstance(label, (bool, np.bool_)) else str(label)


def classes_text(classes: list, most: int = 0) -> str:
    """The class labels as a message lists them, `most` of them (0: all) and "..." for the rest."""
    shown = classes[:most] if most else classes
    return ", ".join(class_text(label) for label in shown) + (", ..." if len(classes) > len(shown) else "")


def target_for_run(table, names: dict, path: Path, index=None, subject: str = "") -> torch.Tensor:
    """A file's target columns encoded as the run's were: class indices by its class labels, matched as text (a run
    written before riskmin kept labels' types holds them as text), or real numbers; an infinite value is refused,
    its row named by `index` (see row_list). `subject`: what holds the targets, in a message about a label the run
    does not know (by default the file's target column; "y" for an (x, y) pair)."""
    columns = [table.column(name) for name in names["targets"]]
    for name, column in zip(names["targets"], columns):
        if missing_mask(column).any():
            raise RiskminError(f"target column {name} of {path.name} has missing values; drop those rows to evaluate")
    check_finite_targets(table, names["targets"], index)
    classes = names.get("classes")
    if not classes and names.get("loss") == "bce":  # yes/no targets, read as training read them
        return yes_no_targets(columns, names["targets"], path)
    if not classes:
        return torch.from_numpy(np.column_stack([as_numpy(c) for c in columns]).astype(np.float32, copy=False))
    lookup = {class_text(label): i for i, label in enumerate(classes)}
    found, codes = column_classes(columns[0], names["targets"][0], path)
    found = [class_text(label) for label in found]
    strangers = [label for label in found if label not in lookup]
    if strangers:
        numbers = all(type(label) is int for label in classes)  # 4, as the run's classes 1, 2, 3 are written
        subject = subject or f"target column {names['targets'][0]} of {path.name}"
        raise RiskminError(
            f"{subject} holds {strangers[0] if numbers else repr(strangers[0])}, which is not one of the run's "
            f"classes ({classes_text(classes)})"
        )
    y = torch.tensor([lookup[label] for label in found], dtype=torch.int64)[torch.from_numpy(codes)]
    return y.float()[:, None] if names.get("loss") == "bce" else y
