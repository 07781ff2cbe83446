"""DataFrames and NumPy arrays where data goes in: fit, evaluate, predict, montecarlo and compare.

A pandas or polars DataFrame, or a pyarrow Table, becomes a pyarrow Table and goes through the
very column handling a CSV file does (_readers.table_data: identifier columns left out, text
one-hot encoded, missing values, the task guessed from the target column); `target=` names the
column to predict. A DataFrame is told by its type's module, so riskmin never imports pandas.
(x, y) NumPy arrays become tensors; a y of text or true/false values holds class names.

>>> import numpy as np
>>> data = as_pair(np.array([[0.0], [1.0], [2.0]]), np.array(["no", "yes", "yes"]))
>>> data.classes, data.y.tolist()
(['no', 'yes'], [0, 1, 1])
"""

from __future__ import annotations

import re

from pathlib import Path

import numpy as np
import torch

from ..config import Config, RiskminError, RiskminNote, quoted, warn
from ..data import Data, check_finite
from ._inputs import each_input

FRAME = Path("DataFrame")  # what the messages of the column code call a DataFrame, where they would name a file
FRAME_TYPES = {("pandas", "DataFrame"), ("polars", "DataFrame"), ("pyarrow", "Table")}


def is_frame(data) -> bool:
    """Whether `data` is a pandas or polars DataFrame or a pyarrow Table."""
    kind = type(data)
    return (kind.__module__.partition(".")[0], kind.__name__) in FRAME_TYPES


def arrow_table(frame):
    """A DataFrame as a pyarrow Table, its real-valued columns float32: pandas through Table.from_pandas (its index
    left out), polars through to_arrow, both without a copy of the numbers where their types allow."""
    import pyarrow

    from ._readers import check_unique, slim

    module = type(frame).__module__.partition(".")[0]
    try:
        if module == "pandas":
            check_unique([str(name) for name in frame.columns], FRAME)
            frame = pandas_table(frame)
        elif module == "polars":
            frame = frame.to_arrow()
    except pyarrow.ArrowException as error:
        reason = str(error).splitlines()[0][:160]
        raise RiskminError(
            f"the DataFrame cannot be read as columns ({reason}); give every column one type: numbers, "
            "text, true/false or dates"
        ) from None
    check_unique(frame.column_names, FRAME)
    return slim(frame)


def pandas_table(frame):
    """A pandas DataFrame as a pyarrow Table, its index left out. A column of Python objects that pyarrow cannot read
    as one type (text and numbers mixed: ["a", 3.0]) becomes text, cell by cell, its empty cells left empty, as a CSV
    file holds it: the column code then reads it as a CSV's (a number column with a few text cells is numbers, and at
    prediction any text cell of a number column is a missing value)."""
    import pyarrow

    try:
        return pyarrow.Table.from_pandas(frame, preserve_index=False)
    except (pyarrow.ArrowInvalid, pyarrow.ArrowTypeError):
        mixed = [label for label in frame.columns if frame[label].dtype == object and not one_type(frame[label])]
        if not mixed:
            raise
    frame = frame.copy(deep=False)  # the caller's frame keeps its cells: each column below is replaced, not written
    for label in mixed:
        frame[label] = frame[label].map(str, na_action="ignore")
    return pyarrow.Table.from_pandas(frame, preserve_index=False)


def one_type(column) -> bool:
    """Whether pyarrow reads a pandas column of Python objects as one type."""
    import pyarrow

    try:
        pyarrow.array(column, from_pandas=True)
    except (pyarrow.ArrowInvalid, pyarrow.ArrowTypeError):
        return False
    return True


def row_index(frame):
    """The labels of a pandas DataFrame's rows, its index, by which messages name its rows (see _columns.row_list);
    None for a polars DataFrame or a pyarrow Table, which have no index: their rows are named by position."""
    return frame.index if type(frame).__module__.partition(".")[0] == "pandas" else None


def frame_data(frame, config: Config, index=None) -> Data:
    """A DataFrame with its target column (config.target) as Data, as `riskmin.load` reads a CSV file; its rows named
    by `index` in messages, by default its own (see row_index)."""
    from ._readers import table_data

    index = row_index(frame) if index is None else index
    table = arrow_table(frame)
    if not config.target:
        raise RiskminError(
            f"a DataFrame needs target= naming the column to predict; its columns are {', '.join(table.column_names)}"
        )
    args = (table, [], FRAME, config.target, config.features, config.task, config.missing, config.loss)
    return table_data(*args, name="dataframe", voice=in_python, index=index)  # only Python passes a DataFrame


def for_python(read) -> Data:
    """The Data `read()` gives, for a Python caller, its notes said in keywords (`read` passes in_python as their
    voice): a mistake of the column code, which speaks in flags, is said in keywords too (target=, not --target), and
    what reading guessed or did (the task, the classes, columns left out) is told as RiskminNote warnings, where the
    command line prints it beside its results."""
    try:
        data = read()
    except RiskminError as error:
        raise RiskminError(in_python(str(error))) from None
    for note in data.notes:
        warn(note, RiskminNote)
    return data


def in_python(text: str) -> str:
    """A message of the column code as the Python API says it: --missing drop as missing="drop", --features as
    features=.

    >>> in_python("pass --missing drop to drop those rows; name a column in --features to keep it")
    'pass missing="drop" to drop those rows; name a column in features= to keep it'
    """
    text = re.sub(r"--(missing|task|loss) ([a-z_]+)", r'\1="\2"', text)
    return re.sub(r"--([a-z]+)\b", r"\1=", text)


def as_pair(x, y, config: Config | None = None) -> Data:
    """(x, y) as Data: tensors or NumPy arrays; a DataFrame x with its target y beside it (a Series or an array), as if
    y were one more column of it; a y of text or true/false as class names. config.task, where it is not "auto", reads
    y as a table's target column is read: "regression" as amounts (`amounts`), "classification" real numbers as
    class labels (`pair_classes`)."""
    config = config or Config()
    if is_frame(x):
        from ._readers import column_names

        named = column_names(config.target)
        if len(named) > 1:  # y beside x is the target: target= can name it, not choose among columns
            raise RiskminError(
                f"target= names {len(named)} columns ({', '.join(named)}), but y beside a DataFrame x is one target, "
                "which target= may only name; pass one DataFrame holding them all, with target="
            )
        name = next(iter(named), None) or target_name(y)  # as target= names it, quoted if need be
        return frame_data(joined(arrow_table(x), y, name), config.replace(target=quoted(name)), row_index(x))
    several = given_as_several(x)  # several inputs, model(*x) or model(**x): as they are
    x = each_input(lambda part: torch.as_tensor(writable(part)), x) if several else numbers_of(array_of(x))
    y = writable(numbers_of(array_of(y)))
    if isinstance(x, np.ndarray) and x.dtype.kind not in "biufc":  # complex numbers: Data says why it refuses them
        raise RiskminError(
            f"x holds {x.dtype} values, not numbers; pass a DataFrame with target= to have its text "
            "columns one-hot encoded"
        )
    x = x if several else torch.as_tensor(writable(x))
    # NaN in x filled with training-split means, as a table's empty cells are (drop takes out a table's rows: NaN in
    # arrays are refused, with their row)
    missing = "mean" if config.missing == "mean" else "error"
    if config.task == "regression":
        return Data(x, amounts(y), missing=missing)
    if config.loss == "bce" and yes_no(y):  # 0/1 as whole numbers: bce fits them as 0.0/1.0
        return Data(x, torch.as_tensor(y).double(), task="classification", missing=missing)
    if isinstance(y, np.ndarray) and y.dtype.kind in "bOUS" or labels_asked(y, config) or labels_not_indices(y):
        classes, codes = pair_classes(y)
        return Data(x, torch.from_numpy(codes), classes=classes, task="classification", missing=missing)
    columns = y.shape[1] if getattr(y, "ndim", 1) == 2 else 1
    if config.task == "classification" and config.loss != "bce" and columns > 1:
        raise RiskminError(
            f"classification takes one column of class labels but y has {columns}; give one, or, for several yes/no "
            'targets, y as 0.0/1.0 floats with loss="bce"'
        )
    # 0/1 labels as they are, for bce
    data = Data(x, y, task="" if config.task == "auto" else config.task, missing=missing)
    guessed = config.task == "auto" and config.loss == "auto" and data.task == "regression"
    if guessed and bool(((data.y == 0) | (data.y == 1)).all()):  # 0.0/1.0 alone: labels, maybe
        data.notes.append(
            'task: regression on y, real numbers that are all 0 or 1; for yes/no labels pass loss="bce", or y as '
            "whole numbers (classes)"
        )
    elif guessed and data.y.shape[1] == 1 and whole_labels(data.y[:, 0].numpy()):
        found = np.unique(data.y.numpy())  # whole numbers a table's target would take for class labels
        shown = ", ".join(f"{value:g}" for value in found[:3]) + (", ..." if len(found) > 3 else "")
        data.notes.append(
            f"task: regression on y, real numbers that are all whole ({shown}), which a table would read as class "
            "labels; for classes pass y as whole numbers (y.astype(int), y.long())"
        )
    if isinstance(x, torch.Tensor) and not x.is_floating_point() and x.dtype != torch.bool:
        data.notes.append(
            f"x holds whole numbers ({str(x.dtype).removeprefix('torch.')}), read as features in float32 and "
            "standardized; for indices a model looks up (an embedding), give x as ((x,), y): several inputs reach the "
            "model as they are"
        )
    return data


def whole_labels(values: np.ndarray) -> bool:
    """Whether real `values` are whole numbers that a table's target column would take for class labels."""
    from ._columns import guessed_task

    return guessed_task(values)[0] == "classification"


def array_of(values):
    """A list, a tuple, a pandas or polars Series or frame as a NumPy array, a SciPy sparse matrix as a dense one
    (riskmin trains on dense rows, as the scikit-learn wrapper does); anything else (a tensor, an array) as it is."""
    if isinstance(values, (list, tuple)) or type(values).__module__.partition(".")[0] in ("pandas", "polars"):
        return np.asarray(values)
    if is_sparse(values):
        return values.toarray()
    return values


def is_sparse(values) -> bool:
    """Whether `values` is a SciPy sparse matrix or array (told by its module, without importing SciPy)."""
    return type(values).__module__.startswith("scipy.sparse")


def numbers_of(values):
    """An array of Python objects that are all real numbers (what DataFrame.to_numpy() gives of mixed columns) as an
    array of numbers, read as numbers are; anything else as it is.

    >>> numbers_of(np.array([1, 2.5], dtype=object)).dtype, numbers_of(np.array([1, "a"], dtype=object)).dtype
    (dtype('float64'), dtype('O'))
    """
    if not isinstance(values, np.ndarray) or values.dtype != object or values.size == 0:
        return values
    real = (int, float, np.integer, np.floating)
    if all(isinstance(v, real) and not isinstance(v, (bool, np.bool_)) for v in values.flat):
        return np.array(values.tolist())
    return values


def labels_not_indices(y) -> bool:
    """Whether a NumPy y of whole numbers, one per row, holds class labels (10, 20, 30; 1, 2, 3; -1, 1) rather than
    the indices 0..k-1 of k classes, each there: read as labels, as a table's target column is, so that the model has
    one output per class and predictions are the labels given (and `labels` reads them so for evaluate). A tensor
    holds class indices, as predict gives them for tensors.

    >>> labels_not_indices(np.array([10, 30, 20])), labels_not_indices(np.array([2, 0, 1, 1]))
    (True, False)
    """
    if not isinstance(y, np.ndarray) or y.dtype.kind not in "iu" or y.ndim != 1 or len(y) == 0:  # (n, 1): refused
        return False
    values = np.unique(y)
    return not np.array_equal(values, np.arange(len(values)))


def yes_no(y) -> bool:
    """Whether y holds yes/no targets, one column or several: true/false, or whole numbers 0 and 1 alone."""
    values = y.cpu().numpy() if isinstance(y, torch.Tensor) else y
    if not isinstance(values, np.ndarray) or values.dtype.kind not in "biu" or len(values) == 0:
        return False
    return values.dtype == bool or bool(np.isin(np.unique(values), (0, 1)).all())


def labels_asked(y, config: Config) -> bool:
    """Whether task="classification" asks that a y of real numbers, one column, be read as class labels: not for
    loss="bce", which fits 0/1 targets as they are, nor for several columns (several yes/no targets)."""
    real = isinstance(y, torch.Tensor) and y.is_floating_point() or isinstance(y, np.ndarray) and y.dtype.kind == "f"
    one_column = real and (y.ndim == 1 or y.ndim == 2 and y.shape[1] == 1)
    return config.task == "classification" and config.loss != "bce" and one_column


def amounts(y):
    """A y that task="regression" fits, as a table's target column regresses: whole numbers and true/false (as 1 and 0)
    become real numbers, and so do numbers written as text; other text is refused, as no amount.

    >>> amounts(np.array([True, False])), amounts(np.array(["1.5", "2"]))
    (array([1., 0.]), array([1.5, 2. ]))
    """
    if isinstance(y, torch.Tensor):
        return y if y.is_floating_point() or y.is_complex() else y.double()
    if not isinstance(y, np.ndarray) or y.dtype.kind not in "biuOUS":
        return y
    if y.dtype.kind == "O":  # None is a missing value, refused by Data as a NaN is, in its row
        y = np.array([np.nan if value is None else value for value in y.ravel()], dtype=object).reshape(y.shape)
    try:
        return y.astype(np.float64)
    except (TypeError, ValueError):
        raise RiskminError('y holds text, which regression cannot fit; use task="classification"') from None


def pair_classes(y) -> tuple:
    """(class labels, int64 codes) of a y of class names, text or true/false, or of real numbers where
    task="classification", which must be whole numbers, as in a table's target column (see _columns.class_codes)."""
    from ._columns import class_codes

    values = y.detach().cpu().double().numpy() if isinstance(y, torch.Tensor) else y
    values = values[:, 0] if values.ndim == 2 and values.shape[1] == 1 else values  # one column: one label per row
    if values.ndim != 1:
        raise RiskminError(
            f"y of class labels must be a vector of one label per row but it has shape {values.shape}; pass one "
            "label per row"
        )
    if values.dtype.kind == "O" and any(label is None or label != label for label in values):  # None or NaN
        raise RiskminError("y has missing class names (None or NaN); drop those rows")
    if values.dtype.kind == "f":
        tensor = torch.from_numpy(values.astype(np.float64))
        check_finite(tensor, tensor, "y", [])  # as Data says it of a regression target
        if not np.all(values == np.round(values)):
            raise RiskminError('y holds fractions, which are not class labels; use task="regression"')
    return class_codes(values if values.dtype.kind != "O" else values.astype(str))


def given_as_several(x) -> bool:
    """Whether `x` is several inputs rather than rows of numbers: a dict of tensors or NumPy arrays, or a tuple or list
    of tensors, or of arrays of two or more axes each (a list of 1-D arrays is rows, as a list of lists is)."""
    if isinstance(x, dict):
        return all(isinstance(value, (torch.Tensor, np.ndarray)) for value in x.values())
    return isinstance(x, (tuple, list)) and (
        all(isinstance(value, torch.Tensor) for value in x)  # () too: none given
        or all(isinstance(value, np.ndarray) and value.ndim >= 2 for value in x)
    )


def target_name(y) -> str:
    name = getattr(y, "name", None)
    return str(name) if name is not None and str(name) else "target"


def joined(table, y, name: str):
    """`table` with the target values `y` as one more column, named `name`, y's own name, or "target"."""
    import pyarrow

    name = name or target_name(y)
    if name in table.column_names:
        raise RiskminError(
            f"the target is named {name}, like a column of x; rename it or pass one DataFrame with target={name!r}"
        )
    values = np.asarray(y)
    if values.ndim != 1 or len(values) != table.num_rows:
        raise RiskminError(
            f"y has shape {values.shape} but x has {table.num_rows} rows; pass one target value per row of x"
        )
    column = pyarrow.array(y, from_pandas=True) if type(y).__module__.startswith("pandas") else pyarrow.array(values)
    return table.append_column(name, column)


def frame_rows(frame, names: dict, targets: bool) -> tuple:
    """(inputs, targets or None) of a DataFrame for a trained run, encoded as its training data was (by column name)."""
    from ._readers import table_columns

    if not names:
        raise RiskminError(
            "a DataFrame is read by column names, which only a Run knows; pass the Run fit returned, or a tensor"
        )
    try:
        x, y, _ = table_columns(arrow_table(frame), [], FRAME, names, targets, index=row_index(frame))
    except RiskminError as error:  # only Python passes a DataFrame: said in keywords, as for_python does
        raise RiskminError(in_python(str(error))) from None
    return x, y


def inputs(x, names: dict) -> torch.Tensor:
    """The rows `predict` is given, as float32 inputs: a DataFrame encoded like the run's data, or numbers; a value
    beyond float32's range, or a NaN the run does not fill, is refused as in training."""
    from ._columns import input_names

    if is_frame(x):
        tensor = original = frame_rows(x, names, targets=False)[0]
    else:
        x = array_of(x)
        if isinstance(x, np.ndarray) and x.dtype.kind not in "biufc":  # complex numbers: Data says why it refuses them
            raise RiskminError(
                f"x holds {x.dtype} values, not numbers; pass a DataFrame to have text columns encoded "
                "as the run's were"
            )
        tensor = centred(torch.as_tensor(writable(x)), names.get("layout") or []).to(torch.float32)
        original = torch.as_tensor(writable(x)) if isinstance(x, (np.ndarray, torch.Tensor)) else tensor
    columns, allow_nan = input_names(names.get("layout") or []), names.get("missing") == "mean"
    check_finite(tensor, original, "x", columns, allow_nan, row_index(x) if is_frame(x) else None)
    return tensor


def centred(x: torch.Tensor, layout: list) -> torch.Tensor:
    """Rows of numbers with the centre each column had in training subtracted, in float64 (see _columns.offset), where
    they are in the file's units: a centre is far from zero for its column's spread, so values nearer the centre than
    zero are raw (a user's rows), and values nearer zero were centred already (rows read by `read_columns`)."""
    from ._columns import input_centres

    centres = input_centres(layout)
    if not centres.any() or x.ndim != 2 or x.shape[1] != len(centres) or not len(x):
        return x
    typical = x.double().nanmean(0)
    raw = (typical - centres).abs() < typical.abs()
    return x.double() - torch.where(raw, centres, 0.0)


def labels(y, names: dict):
    """Targets for a trained run: class labels (text, true/false, or whole numbers where the run's labels are whole
    numbers, as predict gives them: -1, 0, 1) as the run's class indices; anything else, a tensor of indices
    included, as it is."""
    listed = isinstance(y, (list, tuple)) or type(y).__module__.partition(".")[0] in ("pandas", "polars")
    values = np.asarray(y) if listed else y
    numbered = [type(label) is int for label in names.get("classes") or [None]]
    whole = isinstance(values, np.ndarray) and values.dtype.kind in "iu" and all(numbered)
    if not (isinstance(values, np.ndarray) and values.dtype.kind in "bOUS" or whole):
        return writable(values)
    if not names.get("classes") and values.dtype == bool:  # yes/no targets of a run that fit them under bce
        return writable(values)
    if not names.get("classes"):
        raise RiskminError("y holds class names but the run has none; pass the targets as numbers")
    import pyarrow

    from ._columns import target_for_run

    return target_for_run(
        pyarrow.table({names["targets"][0]: pyarrow.array(values.tolist())}), names, FRAME, subject="y"
    )


def writable(array):
    """A read-only NumPy array (pandas' copy-on-write views, memory maps) copied, as torch may write to a tensor;
    anything else as it is."""
    return array.copy() if isinstance(array, np.ndarray) and not array.flags.writeable else array


def rows(data, names: dict) -> Data:
    """The rows `evaluate` is given, as Data: a DataFrame holding the run's target columns, Data, or (x, y)."""
    if isinstance(data, Data):
        return data
    if is_frame(data):
        from ._columns import input_names

        x, y = frame_rows(data, names, targets=True)
        check_rows_to_evaluate(len(y), "the DataFrame")
        columns = input_names(names.get("layout") or [])  # a refused value named by its column, as in training
        return Data(x, y, columns, missing=names.get("missing", "error"), row_labels=row_index(data))
    if isinstance(data, (tuple, list)) and len(data) == 2:
        y = labels(data[1], names)
        check_rows_to_evaluate(len(y), "the data")
        return Data(data[0] if given_as_several(data[0]) else inputs(data[0], names), y)
    raise RiskminError(f"evaluate takes a DataFrame, Data, (x, y) or a data file's path, not {type(data).__name__}")


def check_rows_to_evaluate(count: int, what: str, where: str = "") -> None:
    """Refuse fewer rows than evaluation takes, 2, saying that `what` holds them (and `where` to add more)."""
    if count < 2:
        held = "no rows" if count == 0 else "only 1 row"
        raise RiskminError(f"{what} has {held} to evaluate; give at least 2 rows{where}")
