"""Reading data files: CSV and Parquet tables through pyarrow, NPZ arrays through NumPy.

pyarrow was chosen by measurement (benchmarks/ingest.py): it reads a large numeric CSV at least as fast as pandas,
imports in a fraction of pandas' time, and reads Parquet too.
How columns become inputs and targets is in _columns.py.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import torch

from ..config import RiskminError, RiskminNote, quoted, warn
from .._paths import checked
from ._columns import (
    as_numpy,
    class_codes,
    class_text,
    classes_text,
    column_layout,
    encode,
    offset,
    guessed_task,
    handle_missing,
    input_names,
    is_numeric,
    override_hint,
    row_list,
    target_for_run,
    target_values,
    without_identifiers,
)
from ..data import FLOAT32_TINY, Data, check_finite, too_small

STRAY_SHARE = 0.05  # a number column may hold text in at most this share of its non-empty cells
NUMBER = r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$"
DATE = r"^\s*\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}([ T]\d{1,2}:\d{2}(:\d{2}(\.\d*)?)?)?\s*(Z|[-+]\d{2}:?\d{2})?\s*$"
# a date with a time and a time zone, which Arrow reads into UTC, and not in one column with dates that have none
ZONED = r"\d:\d{2}(:\d{2}(\.\d*)?)?\s*(Z|[-+]\d{2}:?\d{2})\s*$"
# the dates Arrow reads: ISO 8601's order and separators
ISO_DATE = r"^\s*\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d*)?)?)?\s*(Z|[-+]\d{2}:?\d{2})?\s*$"


def read(
    path,
    target: str = "",
    features: str = "",
    task: str = "auto",
    missing: str = "error",
    loss: str = "auto",
    voice: Optional[Callable[[str], str]] = None,
) -> Data:
    """A data file as Data, its features encoded by a layout fitted on the file.

    Tables need `target` (comma-separated column names); NPZ files hold arrays x and y.
    `task` "auto" guesses regression or classification from the target column; `missing`
    says what to do with empty cells: "error", "drop" their rows, or keep them for "mean".
    Without `features`, every other column is a feature but those that look like row
    identifiers; the notes of the result say what was guessed, converted or left out, in the command line's words, or
    as `voice` says them (a Python caller's keywords).
    """
    path, suffix = checked(path)
    if suffix == ".npz":
        return read_npz(path, task, loss, voice)
    table, notes, form = read_table(path, suffix)
    return table_data(table, notes, path, target, features, task, missing, loss, voice=voice, csv_form=form)


def table_data(
    table,
    notes: list,
    path: Path,
    target: str = "",
    features: str = "",
    task: str = "auto",
    missing: str = "error",
    loss: str = "auto",
    name: str = "",
    voice: Optional[Callable[[str], str]] = None,
    csv_form: tuple = (),
    index=None,
) -> Data:
    """`read` of a pyarrow Table, read from `path` (or a DataFrame, named by a Path of its own: its name is in every
    message); the Data is called `name`, by default the file's. `index`: a DataFrame's row labels, by which messages
    name its rows (see _columns.row_list), or None for a file's, named by position."""
    names = table.column_names
    targets = choose(target, names, path, "target")
    if not targets:
        raise RiskminError(
            f"{path} is a table: name the column to predict with --target; its columns are {', '.join(names)}"
        )
    named = choose(features, names, path, "feature")
    chosen = named or [n for n in names if n not in targets]
    overlap = sorted(set(chosen) & set(targets))
    if overlap:
        raise RiskminError(f"column {overlap[0]} is both a feature and a target; leave it out of --features")
    table, typing_notes, strays, units = typed(table, [*chosen, *targets], path, index=index)
    notes += typing_notes
    if not named:  # columns the user names are kept whatever they look like
        chosen, note = without_identifiers(table, chosen)
        notes += [note] if note else []
    if not chosen:
        raise RiskminError(f"{path} has no feature columns besides the target; a model needs at least one")
    refuse_tiny(table, [*chosen, *targets])
    table, missing_notes, index = handle_missing(table, chosen, targets, missing, path, strays, index)
    layout, capped = zip(*(column_layout(table.column(name), name, table.num_rows) for name in chosen))
    # what a date counts
    layout = [{**entry, "unit": units[entry["name"]]} if entry["name"] in units else entry for entry in layout]
    release_unused_memory()  # what parsing and typing the columns took, so that the tensors reuse it
    x, _ = encode(table, layout, path, missing, index)
    if table.num_rows < 2:  # said before a target of one row reads as one class
        left = " left once those with missing values were dropped" if missing == "drop" else ""
        raise RiskminError(
            f"{path.name} has {table.num_rows} row{'s' * (table.num_rows != 1)}{left}; training needs at least 2"
        )
    task, y, classes, note = target_values(table, targets, task, loss, path, index)
    notes = said([note, *notes, *missing_notes, *(c for c in capped if c)], voice)
    return Data(
        torch.from_numpy(x),
        y,
        input_names(layout),
        targets,
        name=name or path.stem,
        layout=list(layout),
        classes=classes,
        task=task,
        missing=missing,
        csv_form=csv_form,
        notes=notes,
        row_labels=index,  # with the rows `missing` dropped, as x's
    )


def check_not_utf16(path: Path) -> None:
    """Refuse a CSV in UTF-16, by the mark it begins with (as a spreadsheet's "Unicode text" saves one), in one
    sentence, where its zero bytes read as binary content."""
    with open(path, "rb") as file:
        start = file.read(2)
    if start in (b"\xff\xfe", b"\xfe\xff"):
        raise RiskminError(f"{path} is UTF-16 text; save it as UTF-8 (a spreadsheet's CSV UTF-8) and give that file")


def binary(path: Path) -> bool:
    """Whether the file at `path` is binary, not text: a control character other than a tab or a line's end among
    its first 4 KiB (a text file in any encoding has none)."""
    try:
        with open(path, "rb") as file:
            start = file.read(4096)
    except OSError:
        return False
    return any(byte < 32 and byte not in b"\t\n\r\f" for byte in start)


def read_table(path: Path, suffix: str, wide=(), trained: Sequence = ()) -> tuple:
    """(the file as a pyarrow Table whose real-valued columns are float32, notes on how it was read, the (separator,
    decimal mark) it was read with, () for Parquet): but for those float32 cannot hold (too small, or too coarse for
    their spread, see _columns.offset) and those named in `wide`. `trained`: the (separator, decimal mark) of a run's
    training CSV; a CSV separated as it was, not by commas, is read with its mark, where its own lines may show too
    little to tell (points alone, 3.504, read as decimals).

    A CSV that is not valid UTF-8 is read again as Latin-1, which decodes any byte, and a note
    says so. A table with two columns of one name is refused, as no name could pick either.
    """
    import pyarrow

    notes, form = [], ()
    try:
        if suffix == ".csv":
            check_not_utf16(path)
            form = csv_format(path, trained)
            if form == (",", ","):
                notes.append(f'{path.name} quotes numbers with decimal commas ("0,125"); they were read so')
            elif form != (",", "."):
                mark = ", with decimal commas" if form[1] == "," else ""
                notes.append(f"{path.name} separates its columns by {DELIMITERS[form[0]]}{mark}; it was read so")
            table = read_csv(path, wide=wide, form=form)
            if not utf8(table):
                table = read_csv(path, encoding="latin-1", wide=wide, form=form)
                notes.append(
                    f"{path.name} is not UTF-8; it was read as Latin-1 (ISO-8859-1): save it as UTF-8 if its "
                    "text looks wrong"
                )
            # a column the reader took for text whose numbers group their thousands ("3,504" quoted in a CSV)
            numbers = [name for name in table.column_names if re.fullmatch(r"[-+]?\d*[.,]?\d+([eE][-+]?\d+)?", name)]
            if numbers and len(numbers) == len(table.column_names):  # a file without a header line, maybe
                notes.append(
                    f"the first line of {path.name} holds numbers alone ({', '.join(numbers[:3])}"
                    f"{', ...' if len(numbers) > 3 else ''}), read as its column names; if it is a row of data, add a "
                    "header line that names the columns, or that row is left out"
                )
            table, grouped = ungrouped(table, form[1])
            if grouped:
                example = "commas (1,200)" if form[1] == "." else "points (3.504)"
                notes.append(
                    f"{path.name} writes the thousands of {'columns' if len(grouped) > 1 else 'column'} "
                    f"{', '.join(grouped)} with {example}; read as numbers"
                )
        else:
            import pyarrow.parquet

            check_unique(pyarrow.parquet.read_schema(path).names, path)
            table = slim(pyarrow.parquet.read_table(path), wide)
    except (pyarrow.ArrowException, OSError) as error:
        reason = str(error).splitlines()[0][:160]
        if suffix != ".parquet" and binary(path):  # its bytes, which the reason may quote, would garble a terminal
            reason = "it holds binary content, not text"
        counts = re.match(r"CSV parse error: Expected (\d+) columns?, got (\d+): (.*)", reason)
        if counts:
            header, found, row = counts.groups()
            fix = (
                "a title or note above the header line, or a row with cells the header does not name, does that: "
                "remove it"
                if int(found) > int(header)
                else "give every row a cell for each column, an empty one where a value is missing"
            )
            raise RiskminError(
                f"{path} cannot be read as CSV: its first line has {header} column{'s' * (header != '1')} and a later "
                f"one {found} ({row[:60]}); {fix}"
            ) from None
        raise RiskminError(
            f"{path} cannot be read as {suffix[1:].upper()} ({reason}); check that the file is what its name says"
        ) from None
    check_unique(table.column_names, path)
    return table, notes, form


# what separates the columns of a CSV that does not use commas: spreadsheets in many languages write semicolons
DELIMITERS = {";": "semicolons", "\t": "tabs", "|": "vertical bars"}


def csv_format(path: Path, trained: Sequence = ()) -> tuple:
    """(the character between columns, the decimal mark) of the CSV at `path`: a comma and a point, unless its first
    line holds no comma and one of DELIMITERS (the most frequent there), as a file saved where the comma marks
    decimals does; then the decimal mark its first lines show (decimal_mark), or where they leave it open, that of
    `trained`, a run's training CSV separated the same way.
    """
    with open(path, "rb") as file:
        lines = [file.readline(1 << 16).decode("latin-1").rstrip("\r\n") for _ in range(50)]
    counts = {delimiter: lines[0].count(delimiter) for delimiter in DELIMITERS}
    best = max(counts, key=counts.__getitem__)
    if "," in lines[0] or not counts[best]:
        best, cells = ",", quoted_numbers(lines[1:])
    else:
        cells = [cell.strip() for line in lines[1:] for cell in line.split(best)]
    return best, decimal_mark(cells, best == ";", trained[1] if len(trained) == 2 and trained[0] == best else "")


def quoted_numbers(lines: list) -> list:
    """The cells of comma-separated `lines` that are numbers holding a comma, which only quotes let such a file hold
    ("0,125", "1,200"): what tells its decimal mark, as decimal_mark reads them. Text in quotes ("Smith, J") is none.

    >>> quoted_numbers(['"0,125",2,"Smith, J"', '3,"1.5"'])
    ['0,125']
    """
    import csv

    if not any('"' in line for line in lines):
        return []
    return [cell for row in csv.reader(lines) for cell in row if "," in cell and re.fullmatch(r"[-+]?[\d.,]+", cell)]


# digits whose thousands are grouped by commas (1,200) or by points (3.504): a group of thousands never begins with 0,
# so 0,125 and 0.076 are decimals
GROUPED = {",": r"[1-9]\d{0,2}(,\d{3})+", ".": r"[1-9]\d{0,2}(\.\d{3})+"}
# a number whose points group its thousands (3.504, 1.234.567,5), as a file with decimal commas writes them
POINT_GROUPED = rf"[-+]?{GROUPED['.']}(,\d+)?"


def decimal_mark(cells: list, semicolons: bool = False, trained: str = "") -> str:
    """ "," where the number cells among `cells` are written with a decimal comma, else ".". A point that stands
    elsewhere than before each group of three digits (1.5, 0.076) is a decimal point. A comma is then the decimal mark
    where one stands in a number (1,5; 1.234,5), its points grouping thousands. Cells that leave it open (commas that
    each stand before three digits, 1,250, points that may group thousands, 3.504, or no mark at all) take the mark a
    run `trained` on, where there is one; else a comma before three digits groups thousands, unless the file is
    separated by `semicolons`, as a spreadsheet saves one where the comma marks decimals, and points alone are
    decimal points (2.186), as a program writes them, whatever separates the columns.

    >>> decimal_mark(["x", "1,5", "-0,25"]), decimal_mark(["1,200", "1,850"]), decimal_mark(["1,5", "2.5"])
    (',', '.', '.')
    >>> decimal_mark(["18,0", "3.504"]), decimal_mark(["1,200"], semicolons=True), decimal_mark(["2.186", "950"], True)
    (',', ',', '.')
    >>> decimal_mark(["1,250"], trained=","), decimal_mark(["1,250"], True, "."), decimal_mark(["1.5"], True, ",")
    (',', '.', '.')
    """
    points = [cell for cell in cells if re.fullmatch(r"[-+]?\d*\.\d+", cell)]
    if any(not re.fullmatch(POINT_GROUPED, cell) for cell in points):  # 1.5: the point is the decimal mark
        return "."
    commas = [
        cell
        for cell in cells
        if re.fullmatch(r"[-+]?\d+,\d+", cell) or "," in cell and re.fullmatch(POINT_GROUPED, cell)
    ]
    if not all(re.fullmatch(rf"[-+]?{GROUPED[',']}", cell) for cell in commas):  # 1,5 or 0,125: the comma is
        return ","
    if trained:  # the cells leave it open
        return trained
    return "," if commas and semicolons else "."


def ungrouped(table, decimal: str) -> tuple:
    """(`table` with its text columns whose every cell is a number whose thousands are grouped, read as numbers; their
    names): by commas where the point is the decimal mark (1,200; -12,345.5), by points where the comma is (3.504;
    1.234,5)."""
    import pyarrow
    import pyarrow.compute as pc

    grouped = []
    separator = "," if decimal == "." else "."
    number = rf"^[-+]?({GROUPED[separator]}|\d+)([{decimal}]\d+)?$"
    for i, name in enumerate(table.column_names):
        column = table.column(i)
        if not pyarrow.types.is_string(column.type) or column.null_count == len(column):
            continue
        cells = pc.drop_null(column)
        if (
            pc.all(pc.match_substring_regex(cells, number)).as_py()
            and pc.any(pc.match_substring(cells, separator)).as_py()
        ):
            plain = pc.replace_substring(column, separator, "")
            values = pc.cast(plain if decimal == "." else pc.replace_substring(plain, ",", "."), pyarrow.float64())
            table = table.set_column(i, name, values)
            grouped.append(name)
    return table, grouped


def read_csv(path: Path, encoding: str = "utf8", wide=(), form: tuple = (",", ".")):
    """A CSV in one multi-threaded pass with the real-valued columns of its first block parsed straight to
    float32, which halves the memory a float64 table would take; should a later block disagree with the
    first, the file is read again with every type inferred."""
    import pyarrow
    import pyarrow.csv

    # an empty text cell is missing, not ""; `form`: the column separator and the decimal mark (csv_format)
    convert = {"strings_can_be_null": True, "decimal_point": form[1]}
    reading = pyarrow.csv.ReadOptions(encoding=encoding)
    parsing = pyarrow.csv.ParseOptions(delimiter=form[0])
    with pyarrow.csv.open_csv(
        path, read_options=reading, parse_options=parsing, convert_options=pyarrow.csv.ConvertOptions(**convert)
    ) as stream:
        try:  # the first block, parsed as float64: a column too small for float32 there is parsed as float64 (see slim)
            small = float64_columns(stream.read_next_batch(), wide)
        # empty, not UTF-8, or ragged: the read below says
        except (StopIteration, UnicodeDecodeError, pyarrow.ArrowInvalid):
            small = set(wide)
        reals = {
            f.name: pyarrow.float32()
            for f in stream.schema
            if pyarrow.types.is_floating(f.type) and f.name not in small
        }
    try:
        options = pyarrow.csv.ConvertOptions(column_types=reals, **convert)
        return slim(
            pyarrow.csv.read_csv(path, read_options=reading, parse_options=parsing, convert_options=options), wide
        )
    except pyarrow.ArrowInvalid:
        inferred = pyarrow.csv.ConvertOptions(**convert)
        return slim(
            pyarrow.csv.read_csv(path, read_options=reading, parse_options=parsing, convert_options=inferred), wide
        )


def utf8(table) -> bool:
    """Whether pyarrow found the CSV to be UTF-8: it reads other bytes as binary columns and replacement characters in
    names."""
    import pyarrow

    return not any(pyarrow.types.is_binary(f.type) or "\ufffd" in f.name for f in table.schema)


def check_unique(names: list, path: Path) -> None:
    seen = {}
    for i, name in enumerate(names):
        if name in seen:
            raise RiskminError(
                f"{path.name} has two columns named {name!r} (columns {seen[name] + 1} and {i + 1}); "
                "rename one so that each column has its own name"
            )
        seen[name] = i


def release_unused_memory() -> None:
    """Hand the memory pyarrow kept from parsing back to the system, so that the tensors built next reuse it."""
    import pyarrow

    pool = pyarrow.default_memory_pool()
    if hasattr(pool, "release_unused"):  # pyarrow 9 and later
        pool.release_unused()


def slim(table, wide=()):
    """`table` with float64 columns cast to float32, the precision riskmin trains in, but those too small for it, which
    stay float64 so that `refuse_tiny` can name them if they are used, those too coarse in float32 for their spread,
    which
    are centred in float64 before they are cast (see _columns.offset), and those named in `wide`."""
    import pyarrow

    small = float64_columns(table, wide)
    for i, f in enumerate(table.schema):
        if pyarrow.types.is_float64(f.type) and f.name not in small:
            table = table.set_column(i, f.name, table.column(i).cast(pyarrow.float32()))
    return table


def float64_columns(table, wide=()) -> set:
    """The names of the float64 columns of a pyarrow Table or RecordBatch that float32 cannot hold: too small, too
    coarse for their spread, or named in `wide`."""
    import pyarrow

    coarse = {
        table.schema.field(i).name
        for i, kind in enumerate(table.schema.types)
        if pyarrow.types.is_float64(kind) and offset(table.column(i))[0] is not None
    }
    return set(tiny_columns(table)) | coarse | set(wide)


def tiny_columns(table) -> dict:
    """{name: largest size} of the float64 columns of a pyarrow Table or RecordBatch whose every value float32 would
    make 0 or strip of its digits."""
    import pyarrow
    import pyarrow.compute

    small = {}
    for i, kind in enumerate(table.schema.types):  # names only when needed: a Latin-1 one is not read as UTF-8 yet
        if pyarrow.types.is_float64(kind):
            largest = pyarrow.compute.max(pyarrow.compute.abs(table.column(i))).as_py()
            if largest and largest < FLOAT32_TINY:
                small[table.schema.field(i).name] = largest
    return small


def refuse_tiny(table, names: list) -> None:
    """Refuse the first of the columns `names` that is too small for float32 (left float64 by slim)."""
    small = tiny_columns(table.select(names))
    if small:
        name = next(iter(small))
        raise RiskminError(too_small(f"column {name}", small[name]))


def typed(table, names: list, path: Path, stray_share: float = STRAY_SHARE, index=None, known=None) -> tuple:
    """(table, notes, stray cells, units) with the named columns made into what riskmin can encode.

    Numbers, true/false and text stay as they are. Decimals become real numbers; dates,
    timestamps, times of day and durations become seconds (since 1970-01-01 UTC, midnight,
    or zero). A text column whose cells are numbers but for at most `stray_share` of them
    (a '?' or '-' typed into a number column) becomes numbers, its other cells missing;
    they are listed in `strays` as {column: (count, first rows, first texts)}. Text dates
    in ISO 8601 form become seconds; others, and lists, structs or bytes, are an error.
    `units` names what a column that became seconds counts: {column: "seconds since 1970-01-01 UTC"}. `index`: a
    DataFrame's row labels, by which the notes name the rows of stray cells (see _columns.row_list). `known`: for the
    columns a run was trained on, which it needs (where a mistake may otherwise be left out, --features), the units
    its layout records ({column: unit}), whose columns it says no more of (said in training); None for new data.
    """
    notes, strays, units = [], {}, {}
    for name in names:
        column, note, stray, unit = typed_column(table.column(name), name, path, stray_share, index, known is not None)
        if column is not table.column(name):
            table = table.set_column(table.column_names.index(name), name, column)
        notes += [note] if note and not (unit and unit == (known or {}).get(name)) else []
        if stray:
            strays[name] = stray
        if unit:
            units[name] = unit
    return table, notes, strays, units


def typed_column(column, name: str, path: Path, stray_share: float, index=None, run: bool = False) -> tuple:
    """(column, note or None, stray cells or None, unit or None): one column of `typed`."""
    import pyarrow

    kind = column.type
    if pyarrow.types.is_dictionary(kind):  # a category column (a pandas Categorical, a Parquet category)
        column, kind = column.cast(kind.value_type), kind.value_type
        numbers = pyarrow.types.is_integer(kind) or pyarrow.types.is_floating(kind)
        if numbers and not run:  # numbers declared categories: as such (a run that read them as numbers reads numbers)
            note = f"column {name} is a category column of numbers; each category is one input, as text's are"
            return column.cast(pyarrow.string()), note, None, None
    if is_numeric(column):
        return column, None, None, None
    if pyarrow.types.is_decimal(kind) or pyarrow.types.is_null(kind):  # a column of empty cells holds missing numbers
        return column.cast(pyarrow.float64()), None, None, None
    if pyarrow.types.is_temporal(kind):
        since = (
            "midnight"
            if pyarrow.types.is_time(kind)
            else "zero"
            if pyarrow.types.is_duration(kind)
            else "1970-01-01 UTC"
        )
        return (
            seconds(column),
            f"column {name} holds {kind} values; they become seconds since {since}",
            None,
            f"seconds since {since}",
        )
    if not (pyarrow.types.is_string(kind) or pyarrow.types.is_large_string(kind)):
        raise RiskminError(
            f"column {name} of {path.name} holds {kind} values, which cannot be model inputs or "
            "targets; leave it out with --features"
        )
    return text_column(column, name, path, stray_share, index, run)


def text_column(column, name: str, path: Path, stray_share: float, index=None, run: bool = False) -> tuple:
    """(column, note or None, stray cells or None, unit or None) of a text column: numbers, dates, or text as it is;
    the note names the rows of stray cells by `index`, a DataFrame's row labels, where there is one."""
    import pyarrow
    import pyarrow.compute as pc

    numbers, stray = numbers_but_for_a_few(column, stray_share)
    if numbers is not None:
        if not stray:
            return numbers, None, None, None
        count, rows, texts = stray
        if index is None:
            cells = ", ".join(f"{text!r} at row {row}" for text, row in zip(texts, rows))
        else:
            cells = ", ".join(f"{text!r} at {row_list([row], index)}" for text, row in zip(texts, rows))
        cells += (", ..." if count > len(rows) else "") + (" (rows counting from 0)" if index is None else "")
        return (
            numbers,
            f"column {name} holds numbers but for {count} cell{'s' * (count > 1)}, taken as missing values: {cells}",
            stray,
            None,
        )
    present = len(column) - column.null_count
    if not present or pc.sum(pc.match_substring_regex(column, DATE)).as_py() < (1 - STRAY_SHARE) * present:
        return column, mostly_numbers(column, name, present), None, None
    for zone in (None, "UTC"):  # dates without a time zone, or every one with its own
        try:
            since = "seconds since 1970-01-01 UTC"
            return (
                seconds(pc.cast(column, pyarrow.timestamp("us", tz=zone))),
                f"column {name} holds dates; they become {since}",
                None,
                since,
            )
        except pyarrow.ArrowInvalid:
            pass
    remedy = ", as the run read them in training" if run else ", or leave the column out with --features"
    zoned = as_numpy(pc.fill_null(pc.match_substring_regex(column, ZONED), False))
    plain = as_numpy(pc.fill_null(pc.match_substring_regex(column, ISO_DATE), False)) & ~zoned
    if zoned.any() and plain.any():  # each form reads, but not both in one column
        first, other = int(np.flatnonzero(zoned)[0]), int(np.flatnonzero(plain)[0])
        raise RiskminError(
            f"column {name} of {path.name} holds dates with a time zone, such as {column[first].as_py()!r} at "
            f"{row_list([first], index)}, and dates without one, such as {column[other].as_py()!r} at "
            f"{row_list([other], index)}; give every date a time zone, or none{remedy}"
        )
    row = unread_date(column)
    raise RiskminError(
        f"column {name} of {path.name} holds dates such as {column[row].as_py()!r} at {row_list([row], index)}, which "
        f"riskmin reads only in ISO 8601 form (2021-04-03 or 2021-04-03 10:00:00); rewrite them{remedy}"
    )


def unread_date(column) -> int:
    """The first row of a text column of dates that is not one in ISO 8601 form, which the message quotes: the first
    not shaped like one (2021/04/03, 03.04.2021), else the first that Arrow cannot read as one (2021-13-03), found by
    halving the rows that hold it (a cast of a column's first rows fails once they hold it), in as many casts as the
    rows' count has bits. Its dates have a time zone each, or none (mixed ones are said apart)."""
    import pyarrow.compute as pc

    shaped = as_numpy(pc.fill_null(pc.match_substring_regex(column, ISO_DATE), True))
    if not shaped.all():
        return int(np.flatnonzero(~shaped)[0])
    zone = "UTC" if pc.any(pc.match_substring_regex(column, ZONED)).as_py() else None
    low, high = 0, len(column)  # the first `high` rows hold it; the first `low` do not
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if readable(column.slice(0, middle), zone) else (low, middle)
    return low


def readable(cells, zone) -> bool:
    """Whether Arrow reads the text `cells` as dates, without a time zone (None) or each with its own ("UTC")."""
    import pyarrow
    import pyarrow.compute as pc

    try:
        pc.cast(cells, pyarrow.timestamp("us", tz=zone))
    except pyarrow.ArrowInvalid:
        return False
    return True


def mostly_numbers(column, name: str, present: int) -> Optional[str]:
    """A note on a text column of `present` non-empty cells that holds numbers in half of them or more, too few for the
    others to be missing values: read as text, one input per value, which a '?' typed in many cells causes."""
    import pyarrow.compute as pc

    cells = pc.drop_null(column)
    number = pc.match_substring_regex(cells, NUMBER)
    count = pc.sum(number).as_py() or 0
    if count < present / 2:
        return None
    others = pc.unique(pc.filter(cells, pc.invert(number))).to_pylist()
    shown = ", ".join(map(repr, others[:3])) + (", ..." if len(others) > 3 else "")
    return (
        f"column {name} holds numbers but for {present - count} of its {present} cells ({shown}), more than the "
        f"{STRAY_SHARE:.0%} taken as missing values: it is read as text, one input per value; empty those cells to "
        "have it read as numbers"
    )


def numbers_but_for_a_few(column, stray_share: float) -> tuple:
    """(float64 column, stray cells or None) when a text column is numbers in all but `stray_share` of its
    non-empty cells, the others made missing; (None, None) when it is text."""
    import pyarrow
    import pyarrow.compute as pc

    number = pc.match_substring_regex(column, NUMBER)  # missing where the cell is empty
    present = len(column) - column.null_count
    count = pc.sum(number).as_py() or 0
    if count == 0 or present - count > stray_share * present:
        return None, None
    values = pc.cast(pc.if_else(number, pc.utf8_trim_whitespace(column), None), pyarrow.float64())
    if count == present:
        return values, None
    rows = np.flatnonzero(as_numpy(pc.fill_null(pc.invert(number), False)))
    texts = [column[int(row)].as_py() for row in rows[:5]]
    return values, (len(rows), rows[:5].tolist(), texts)


def seconds(column):
    """A date, time or duration column as float64 seconds, counted in microseconds on the way."""
    import pyarrow
    import pyarrow.compute as pc

    kind = column.type
    if pyarrow.types.is_date(kind):
        column = column.cast(pyarrow.timestamp("us"))
    elif pyarrow.types.is_timestamp(kind):
        column = pc.cast(column, pyarrow.timestamp("us", tz=kind.tz), safe=False)
    elif pyarrow.types.is_time(kind):
        column = pc.cast(column, pyarrow.time64("us"), safe=False)
    else:
        column = pc.cast(column, pyarrow.duration("us"), safe=False)
    return pc.divide(pc.cast(pc.cast(column, pyarrow.int64()), pyarrow.float64()), 1e6)


def choose(text: str, names: list, path: Path, what: str) -> list:
    """The columns `text` names (see `column_names`), each one of the table's `names`."""
    chosen = column_names(text)
    for name in chosen:
        if name not in names:
            raise RiskminError(
                f"{what} column {quoted(name)} does not exist in {path.name}; {column_hint(name, names)}"
            )
    twice = next((name for i, name in enumerate(chosen) if name in chosen[:i]), None)
    if twice is not None:
        flag = "--target" if what == "target" else "--features"
        raise RiskminError(f"{what} column {quoted(twice)} is named twice; name each column once in {flag}")
    return chosen


# one name of a list, quoted or not, and what ends it
NAME = re.compile(r'\s*(?:"((?:[^"]|"")*)"|([^,"][^,]*|))\s*(,|$)')


def column_names(text: str) -> list:
    """The column names of a comma-separated list such as --target and --features take, as a CSV header writes them:
    each without spaces at its edges, but a name in double quotes kept exactly, commas and edge spaces included ("" in
    it is one quote). Empty names are left out.

    >>> column_names('price, "rooms, total", " id "')
    ['price', 'rooms, total', ' id ']
    """
    names, position = [], 0
    while position < len(text):
        match = NAME.match(text, position)
        if match is None:
            raise RiskminError(
                f"{text!r} is not a list of column names: separate them by commas and put a name that "
                "holds a "
                'comma, a quote or spaces at its edges in double quotes, as "a, b" (a quote in it '
                'doubled: "")'
            )
        inside, plain, end = match.groups()
        name = plain.strip() if inside is None else inside.replace('""', '"')
        if name:
            names.append(name)
        position = match.end()
        if not end:
            break
    return names


def said(notes: list, voice: Optional[Callable[[str], str]]) -> list:
    """`notes` in the words of `voice`, or of the command line without one."""
    return [voice(note) for note in notes] if voice else notes


def read_npz(path: Path, task: str = "auto", loss: str = "auto", voice: Optional[Callable[[str], str]] = None) -> Data:
    """Arrays x and y of an .npz file; a one-column whole-number y may be class labels, guessed as for tables."""
    check_npz_header(path)
    x, y = npz_arrays(path)
    if not (np.issubdtype(x.dtype, np.number) and (np.issubdtype(y.dtype, np.number) or y.dtype == bool)):
        raise RiskminError(f"{path} holds non-numeric arrays ({x.dtype}, {y.dtype}); x and y must be numbers")
    for name, array in (("x", x), ("y", y)):
        if np.iscomplexobj(array):
            raise RiskminError(
                f"{path}: {name} holds complex numbers ({array.dtype}), and riskmin trains on real "
                f"ones; save the real and imaginary parts as columns of their own, {name}.real and "
                f"{name}.imag"
            )
    if len(x) != len(y):  # said before y's values are read as classes
        raise RiskminError(f"{path}: x has {len(x)} rows but y has {len(y)}; they must match")
    x = torch.from_numpy(x.astype(np.float32))
    if np.issubdtype(y.dtype, np.floating):  # refused as Data refuses it, before the task is guessed or classes coded
        values = torch.from_numpy(y.astype(np.float64))
        check_finite(values, values, "y", [])
    how, why = "as asked", ""
    if task == "auto":
        how = "guessed"
        task, why, either = npz_task(y, loss)
    why = f"; {why}" if why else ""
    either = how == "guessed" and either
    if task == "classification":
        classes, codes = npz_classes(y, path)
        note = f"task: classification ({how}): y has {len(classes)} classes ({classes_text(classes, 6)}){why}"
        return Data(
            x,
            torch.from_numpy(codes),
            name=path.stem,
            classes=classes,
            task=task,
            notes=said([note + override_hint("classification", either)], voice),
        )
    note = f"task: regression ({how}){why}{override_hint('regression', either)}"
    return Data(x, torch.from_numpy(y.astype(np.float32)), name=path.stem, task="regression", notes=said([note], voice))


def check_npz_header(path: Path) -> None:
    """Refuse, before NumPy reads it, a file that is not a zip archive: most often one array saved by numpy.save."""
    with open(path, "rb") as file:
        head = file.read(6)
    if head == b"\x93NUMPY":
        raise RiskminError(
            f"{path} holds one array saved by numpy.save (an .npy file), not the arrays x and y of an "
            ".npz file; save them with numpy.savez(path, x=x, y=y)"
        )
    if not head.startswith(b"PK"):  # an .npz file is a zip archive
        raise RiskminError(
            f"{path} is not an .npz file (a zip archive of arrays); save x and y with numpy.savez(path, x=x, y=y)"
        )


def npz_arrays(path: Path) -> tuple:
    """The arrays x and y of an .npz file, as NumPy arrays; a missing one or an unreadable file is a RiskminError."""
    try:
        with np.load(path, allow_pickle=False) as arrays:  # never unpickle: object arrays are refused
            missing = [name for name in ("x", "y") if name not in arrays.files]
            if missing:
                raise RiskminError(
                    f"{path} has no array named {missing[0]}; an .npz file needs arrays x and y (it has "
                    f"{', '.join(arrays.files) or 'none'})"
                )
            return arrays["x"], arrays["y"]
    except RiskminError:
        raise
    except (ValueError, OSError, EOFError) as error:
        raise RiskminError(
            f"{path} cannot be read as NPZ ({str(error).splitlines()[0][:160]}); save it with "
            "numpy.savez and numeric arrays"
        ) from None


def npz_task(y: np.ndarray, loss: str) -> tuple:
    """(task, the rule that decided it, whether the other task could take y) of an .npz file's y for --task auto: its
    columns, then the loss, then its values."""
    if y.ndim != 1:
        return "regression", "a y of several columns is regression", False
    if loss in ("cross_entropy", "bce"):
        return "classification", f"--loss {loss} takes classes", False
    if loss != "auto":
        return "regression", f"--loss {loss} takes numbers", False
    return guessed_task(y)


def npz_classes(y: np.ndarray, path: Path) -> tuple:
    """(class labels, int64 codes) of an .npz file's y, which must be one column of whole numbers (or true/false)."""
    if y.ndim != 1 or not np.all(y == np.round(y)):
        raise RiskminError(
            f"{path}: classification needs y to be one column of whole-number class labels; use --task regression"
        )
    classes, codes = class_codes(y)
    if len(classes) == 1:
        raise RiskminError(
            f"{path}: y holds one class, {class_text(classes[0])}, in every row; classification needs rows of at least "
            "two classes"
        )
    return classes, codes


def read_columns(path, names: dict, targets: bool = False, keep: Sequence = ()) -> tuple:
    """For a trained run: (inputs, targets or None, kept columns) of a file, encoded as the run's were.

    `names` is what the run stored of its data (layout, targets, classes, missing). Columns
    are matched by name, in any order; one the run needs and the file lacks is an error.
    Kept columns are copied as they are, whatever they hold.
    """
    path, suffix = checked(path)
    if suffix == ".npz":
        return npz_columns(path, run_layout(names), targets)
    wide = [c["name"] for c in run_layout(names) if "offset" in c]
    table, notes, _ = read_table(path, suffix, wide=wide, trained=names.get("csv_form") or ())
    return table_columns(table, notes, path, names, targets, keep)


def run_layout(names: dict) -> list:
    """The feature layout a run stored; a run trained on tensors has numeric features alone."""
    return names.get("layout") or [{"name": name, "kind": "numeric"} for name in names["features"]]


def table_columns(
    table, notes: list, path: Path, names: dict, targets: bool = False, keep: Sequence = (), index=None
) -> tuple:
    """`read_columns` of a pyarrow Table, read from `path` (or a DataFrame, named by a Path of its own, and `index`,
    its row labels, by which messages name its rows: see _columns.row_list)."""
    layout = run_layout(names)
    target_names = names["targets"] if targets else []
    check_columns_present(table, layout, target_names, keep, path)
    kept = {name: table.column(name).to_pylist() for name in keep}
    numbers = [c["name"] for c in layout if c["kind"] == "numeric"] + ([] if names.get("classes") else target_names)
    # the run knows these are numbers: any text cell is a hole
    known = {c["name"]: c["unit"] for c in layout if c.get("unit")}
    table, typing_notes, _, _ = typed(table, numbers, path, stray_share=1.0, index=index, known=known)
    for note in [*notes, *typing_notes]:  # told apart from stdout, which may be the predictions themselves
        warn(note, RiskminNote)
    x, unseen = encode(table, layout, path, names.get("missing", "error"), index)
    if unseen:
        warn_unseen(unseen, path)
    y = None
    if targets:
        y = target_for_run(table, names, path, index)
    return torch.from_numpy(x), y, kept


def npz_columns(path: Path, layout: list, targets: bool) -> tuple:
    """read_columns of an .npz file: its x, which must have as many features as the run's layout, and y if asked for."""
    data = read_npz(path)
    if data.n_features != len(layout):
        raise RiskminError(f"{path} has {data.n_features} features but the run was trained on {len(layout)}")
    return data.x, (data.y if targets else None), {}


def column_hint(name: str, names: list) -> str:
    """What to say of a column `name` that is not among a table's `names`: the one it is but for spaces at its edges,
    the one it is likely a misspelling of, or them all."""
    edged = [n for n in names if n.strip() == name.strip()]
    lower = {n.lower(): n for n in reversed(names)}  # nme is near Name: matched whatever the case
    close = [lower[n] for n in difflib.get_close_matches(name.lower(), list(lower), n=1)]
    if edged:
        return f"its column {quoted(edged[0])} has spaces at its edges: name it in double quotes, {quoted(edged[0])}"
    return f"did you mean {quoted(close[0])}?" if close else f"its columns are {', '.join(map(quoted, names))}"


def check_columns_present(table, layout: list, target_names: list, keep, path: Path) -> None:
    """Raise RiskminError naming the first feature, target or kept column that the run needs and the table lacks; a
    column asked to be kept first, said as a column chosen by name is (a misspelling, for one)."""
    for name in keep:
        if name not in table.column_names:
            raise RiskminError(
                f"kept column {quoted(name)} does not exist in {path.name}; {column_hint(name, table.column_names)}"
            )
    wanted = [*(c["name"] for c in layout), *target_names]
    for name in wanted:
        if name not in table.column_names:
            role, needed = column_role(name, layout, target_names)
            raise RiskminError(
                f"{role} column {name} is missing from {path.name}; it needs the {role} columns {', '.join(needed)}"
            )


def column_role(name: str, layout: list, target_names: list) -> tuple:
    """(role, all the columns of that role) of a needed column."""
    if name in target_names:
        return "target", target_names
    return "feature", [c["name"] for c in layout]


def warn_unseen(unseen: dict, path: Path) -> None:
    """Tell how many values of each column were categories the run never saw, and so became all zeros."""
    counts = ", ".join(f"{name}: {count}" for name, count in unseen.items())
    warn(
        f"{sum(unseen.values())} values of {path.name} are categories the run never saw in training ({counts}); "
        "they were encoded as all zeros"
    )
