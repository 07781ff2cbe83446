"""DataFrames and NumPy arrays in fit, evaluate, predict, montecarlo and compare, read as a CSV file is."""

import json

import numpy as np
import pytest
import torch

import riskmin
from riskmin import RiskminError

pd = pytest.importorskip("pandas")


@pytest.fixture
def shop(tmp_path):
    """A table with an identifier, a text column, a missing number, and its CSV file."""
    rng = np.random.default_rng(0)
    n = 120
    size = rng.standard_normal(n)
    town = rng.choice(["north", "south", "west"], n)
    price = 2 * size + (town == "south") * 1.5 + 3 + 0.05 * rng.standard_normal(n)
    frame = pd.DataFrame({"id": np.arange(1000, 1000 + n), "size": size, "town": town, "price": price})
    frame.loc[5, "size"] = np.nan
    path = tmp_path / "shop.csv"
    frame.to_csv(path, index=False)
    return frame, path


SETTINGS = dict(target="price", missing="mean", epochs=5, progress=False)


def test_a_dataframe_trains_exactly_as_its_csv_file(shop):
    frame, path = shop
    from_frame, from_file = riskmin.fit("linear", frame, **SETTINGS), riskmin.fit("linear", str(path), **SETTINGS)
    assert from_frame.data_names["layout"] == from_file.data_names["layout"]
    assert from_frame.data_names["features"] == ["size", "town=north", "town=south", "town=west"]  # id left out
    assert from_frame.history == [{**row, "seconds": pytest.approx(row["seconds"], abs=100)} for row in from_file.history]
    for a, b in zip(from_frame.model.parameters(), from_file.model.parameters()):
        assert torch.equal(a, b)


def test_predict_and_evaluate_read_a_dataframe_by_column_names(shop):
    frame, path = shop
    run = riskmin.fit("linear", frame, **{**SETTINGS, "epochs": 60})
    shuffled = frame[["town", "price", "size"]]  # any order, extra columns ignored, the identifier not needed
    from riskmin._data._readers import read_columns

    x, y, _ = read_columns(path, run.data_names, targets=True)
    assert torch.equal(torch.tensor(riskmin.predict(run, shuffled)["price"].to_numpy()), riskmin.predict(run, x)[:, 0])
    assert riskmin.evaluate(run, shuffled) == riskmin.evaluate(run, riskmin.Data(x, y, missing="mean"))
    assert riskmin.evaluate(run, shuffled)["r2"] > 0.9


def test_a_classifier_on_a_dataframe_predicts_class_names(shop):
    frame, _ = shop
    run = riskmin.fit("linear", frame.drop(columns="price"), target="town", missing="mean", epochs=3, progress=False)
    assert run.data_names["classes"] == ["north", "south", "west"]
    assert set(riskmin.predict(run, frame, kind="class")["town"]) <= {"north", "south", "west"}


def test_a_dataframe_beside_its_target_and_numpy_arrays(shop):
    frame, _ = shop
    alone = riskmin.fit("linear", frame, **SETTINGS)
    beside = riskmin.fit("linear", (frame.drop(columns="price"), frame["price"]), **{**SETTINGS, "target": ""})
    assert all(torch.equal(a, b) for a, b in zip(alone.model.parameters(), beside.model.parameters()))
    x, labels = np.random.default_rng(1).standard_normal((50, 2)), np.array(["a", "b"] * 25)
    run = riskmin.fit("linear", (x, labels), epochs=2, progress=False)
    assert run.data_names["classes"] == ["a", "b"] and riskmin.predict(run, x, kind="class").shape == (50,)
    assert riskmin.evaluate(run, (x, labels))["accuracy"] == riskmin.evaluate(run, (x, torch.tensor([0, 1] * 25)))["accuracy"]
    with pytest.raises(RiskminError, match="holds 'c', which is not one of the run's classes"):
        riskmin.evaluate(run, (x[:2], np.array(["a", "c"])))


def test_a_polars_dataframe_trains_as_its_pandas_twin(shop):
    polars = pytest.importorskip("polars")
    frame, _ = shop
    twin = polars.from_pandas(frame)
    from_polars, from_pandas = riskmin.fit("linear", twin, **SETTINGS), riskmin.fit("linear", frame, **SETTINGS)
    assert all(torch.equal(a, b) for a, b in zip(from_polars.model.parameters(), from_pandas.model.parameters()))
    assert riskmin.predict(from_polars, twin)["price"].to_list() == riskmin.predict(from_pandas, frame)["price"].to_list()


def test_montecarlo_and_compare_take_a_dataframe(shop):
    frame, _ = shop
    mc = riskmin.montecarlo("linear", frame, runs=3, target="price", missing="mean", epochs=2, progress=False)
    assert mc.summary["engine"] == "vectorized" and len(mc.table) == 3
    comparison = riskmin.compare({"a": {"lr": 0.01}, "b": {"lr": 0.1}}, frame, runs=2, model="linear", target="price",
                                 missing="mean", epochs=2, progress=False)
    assert len(comparison.table) == 4


@pytest.mark.parametrize("call, message", [
    (lambda f: riskmin.fit("linear", f, progress=False),
     "a DataFrame needs target= naming the column to predict; its columns are id, size, town, price"),
    (lambda f: riskmin.fit("linear", f, target="prize", progress=False), "target column prize does not exist in DataFrame; did you mean price?"),
    (lambda f: riskmin.fit("linear", f, target="price", progress=False), "DataFrame has missing values, empty or NaN, in column size (1)"),
    (lambda f: riskmin.predict(torch.nn.Linear(4, 1), f), "a DataFrame is read by column names, which only a Run knows"),
    (lambda f: riskmin.fit("linear", (f[["town"]].to_numpy(), f["price"].to_numpy()), progress=False),
     "x holds object values, not numbers; pass a DataFrame with target= to have its text columns one-hot encoded"),
    (lambda f: riskmin.fit("linear", (f.drop(columns="price"), f["price"][:10]), progress=False),
     "y has shape (10,) but x has 120 rows; pass one target value per row of x"),
])
def test_bad_frames_are_refused_in_one_sentence(shop, call, message):
    with pytest.raises(RiskminError) as error:
        call(shop[0])
    assert str(error.value).startswith(message)


def test_riskmin_imports_neither_pandas_nor_scikit_learn():
    import subprocess
    import sys

    code = ("import sys, numpy, riskmin; riskmin.fit('linear', (numpy.ones((10, 1)), numpy.ones(10)), batch_size=0, epochs=1, progress=False); "
            "print(sorted({'pandas', 'sklearn'} & set(sys.modules)))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"


def test_a_dataframe_mistake_is_told_in_the_python_api_words():
    frame = pd.DataFrame({"a": [float("nan"), *range(49)], "y": [float(i) for i in range(50)]})
    with pytest.raises(RiskminError, match='pass missing="drop" to drop those rows or missing="mean"'):
        riskmin.fit("linear", frame, target="y", epochs=1, progress=False)


# a text cell in a number column of a DataFrame: read as a CSV file's column would be

@pytest.fixture(scope="module")
def table():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=90), "b": rng.normal(size=90)})
    frame["y"] = 2 * frame.a + frame.b
    return frame


@pytest.fixture(scope="module")
def filled(table):
    """A run whose training rows have holes in a: missing="mean" fills them, at prediction too."""
    frame = table.copy()
    frame.loc[::6, "a"] = np.nan
    with pytest.warns(riskmin.RiskminNote):
        return riskmin.fit("linear", frame, target="y", missing="mean", epochs=2, progress=False, seed=0)


@pytest.mark.parametrize("cells", [["a", 3.0], ["a", 3]])
def test_a_text_cell_of_a_number_column_is_a_missing_value_at_prediction(filled, cells):
    rows = pd.DataFrame({"a": pd.Series(cells, dtype=object), "b": [0.5, -1.0]})
    with pytest.warns(riskmin.RiskminNote, match="column a holds numbers but for 1 cell, taken as missing values"):
        predicted = riskmin.predict(filled, rows)
    expected = riskmin.predict(filled, pd.DataFrame({"a": [np.nan, 3.0], "b": [0.5, -1.0]}))
    assert predicted.to_numpy().tolist() == expected.to_numpy().tolist()
    assert rows.a.tolist() == cells  # the caller's DataFrame as it was


def test_a_text_cell_among_numbers_without_missing_mean_is_refused_naming_the_column(table):
    with pytest.warns(riskmin.RiskminNote):
        run = riskmin.fit("linear", table, target="y", epochs=2, progress=False)
    rows = table.drop(columns="y").head(3).astype(object)
    rows.loc[1, "a"] = "a"
    with pytest.warns(riskmin.RiskminNote, match="column a holds numbers"), pytest.raises(RiskminError) as caught:
        riskmin.predict(run, rows)
    assert str(caught.value) == (
        'column a of DataFrame has missing values, first at the row with index 1; fill them: the run was trained '
        'without missing="mean"'
    )


def test_a_number_column_with_a_stray_text_cell_trains_as_its_csv_file(table, tmp_path):
    frame = table.astype({"a": object})
    frame.loc[4, "a"] = "?"
    frame.to_csv(tmp_path / "table.csv", index=False)
    settings = dict(target="y", missing="mean", epochs=2, progress=False)
    with pytest.warns(riskmin.RiskminNote) as notes:
        from_frame = riskmin.fit("linear", frame, **settings)
    assert any("column a holds numbers but for 1 cell, taken as missing values" in str(n.message) for n in notes)
    with pytest.warns(riskmin.RiskminNote):
        from_file = riskmin.fit("linear", str(tmp_path / "table.csv"), **settings)
    assert json.dumps(from_frame.data_names["layout"]) == json.dumps(from_file.data_names["layout"])
    for a, b in zip(from_frame.model.parameters(), from_file.model.parameters()):
        assert torch.equal(a, b)


# a DataFrame whose index is not 0..n-1 (shuffled, filtered, indexed by a column): its rows named by their index labels

@pytest.fixture(scope="module")
def scrambled():
    """40 rows in reverse order, every other one: positions 0, 1, 2, ... hold the rows labelled 39, 37, 35, ..."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=40), "b": rng.normal(size=40)})
    frame["y"] = 2 * frame.a + frame.b
    return frame.iloc[::-2]


@pytest.fixture(scope="module")
def scrambled_run(scrambled):
    with pytest.warns(riskmin.RiskminNote):
        return riskmin.fit("linear", scrambled, target="y", epochs=1, progress=False)


def broken(frame, column, value, position=2):
    """A copy of `frame` with `value` in `column` at `position` (2: the row labelled 35 in `scrambled`)."""
    frame = frame.astype({column: object}) if isinstance(value, str) else frame.copy()
    frame.iloc[position, frame.columns.get_loc(column)] = value
    return frame


FIT = dict(target="y", epochs=1, progress=False)
TOO_FAR = "remove or fill them (a number in a file beyond ±3.4e+38, the float32 range riskmin trains in, reads as infinite)"


@pytest.mark.parametrize("call, message", [
    (lambda f, run: riskmin.fit("linear", broken(f, "a", np.nan), **FIT),
     'DataFrame has missing values, empty or NaN, in column a (1), first at the row with index 35; pass missing="drop"'),
    (lambda f, run: riskmin.fit("linear", broken(f, "y", np.nan), **FIT),
     "DataFrame has missing values, empty or NaN, in column y (1), first at the row with index 35; "),
    (lambda f, run: riskmin.fit("linear", broken(broken(f, "a", np.nan, 4), "b", np.nan, 7), **FIT),
     "DataFrame has missing values, empty or NaN, in columns a (1), b (1), first at the rows with index 31, 25; "),
    (lambda f, run: riskmin.fit("linear", broken(f, "a", "?"), **FIT),
     "DataFrame has missing values, empty or NaN, in column a (1), first at the row with index 35; a holds text in 1 "
     "number cell ('?'), taken as missing"),
    (lambda f, run: riskmin.fit("linear", broken(f, "a", np.inf), **FIT),
     f"x holds NaN or infinite values, first at the row with index 35, in column a; {TOO_FAR}"),
    (lambda f, run: riskmin.fit("linear", broken(f, "y", -np.inf), **FIT),
     f"y holds NaN or infinite values, first at the row with index 35, in column y; {TOO_FAR}"),
    # rows 37 and 35 dropped: the infinite value's row is named by its label, not by its place among the rows kept
    (lambda f, run: riskmin.fit("linear", broken(broken(f, "a", np.nan, 1), "a", np.inf), missing="drop", **FIT),
     "x holds NaN or infinite values, first at the row with index 35, in column a"),
    (lambda f, run: riskmin.fit("linear", broken(broken(f, "y", np.nan, 1), "a", np.inf), missing="mean", **FIT),
     "x holds NaN or infinite values, first at the row with index 35, in column a"),
    (lambda f, run: riskmin.fit("linear", (broken(f, "a", np.nan).drop(columns="y"), f.y), epochs=1, progress=False),
     "DataFrame has missing values, empty or NaN, in column a (1), first at the row with index 35; "),
    (lambda f, run: riskmin.fit("linear", (f.drop(columns="y"), broken(f, "y", np.inf).y), epochs=1, progress=False),
     "y holds NaN or infinite values, first at the row with index 35, in column y"),
    (lambda f, run: riskmin.predict(run, broken(f, "a", np.nan)),
     'column a of DataFrame has missing values, first at the row with index 35; fill them: the run was trained '
     'without missing="mean"'),
    (lambda f, run: riskmin.predict(run, broken(f, "b", np.inf)),
     f"x holds NaN or infinite values, first at the row with index 35, in column b; {TOO_FAR}"),
    (lambda f, run: riskmin.evaluate(run, broken(f, "a", np.nan)),
     "column a of DataFrame has missing values, first at the row with index 35; "),
    (lambda f, run: riskmin.evaluate(run, broken(f, "y", np.inf)), "y holds NaN or infinite values, first at the row "
                                                                   "with index 35, in column "),
])
def test_a_dataframe_row_is_named_by_its_index_label(scrambled, scrambled_run, call, message):
    with pytest.raises(RiskminError) as error:
        call(scrambled, scrambled_run)
    assert str(error.value).startswith(message)


def test_a_stray_text_cell_is_named_by_its_index_label_in_training_and_at_prediction(scrambled, scrambled_run):
    told = "column a holds numbers but for 1 cell, taken as missing values: '\\?' at the row with index 35$"
    with pytest.warns(riskmin.RiskminNote, match=told):
        riskmin.fit("linear", broken(scrambled, "a", "?"), missing="mean", **FIT)
    with pytest.warns(riskmin.RiskminNote, match=told), pytest.raises(RiskminError, match="first at the row with index 35;"):
        riskmin.predict(scrambled_run, broken(scrambled.drop(columns="y"), "a", "?"))


def test_a_text_index_label_is_quoted_and_a_table_without_index_names_positions(scrambled):
    named = broken(scrambled.set_index(pd.Index([f"id{i}" for i in range(20)], name="id")), "a", np.nan)
    with pytest.raises(RiskminError, match="first at the row with index 'id2'; "):
        riskmin.fit("linear", named, **FIT)
    pyarrow = pytest.importorskip("pyarrow")
    with pytest.raises(RiskminError, match=r"first at row 2 \(counting from 0\); "):  # a Table has no index
        riskmin.fit("linear", pyarrow.Table.from_pandas(broken(scrambled, "a", np.nan), preserve_index=False), **FIT)


def test_evaluate_names_a_refused_value_by_its_column_and_its_row_label():
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    table = pd.DataFrame({"a": rng.normal(size=80), "b": rng.normal(size=80)}, index=range(100, 180))
    table["y"] = table["a"] - table["b"]
    run = riskmin.fit("linear", table, target="y", epochs=1, progress=False)
    table.loc[150, "b"] = np.inf
    with pytest.raises(riskmin.RiskminError, match=r"^x holds NaN or infinite values, first at the row with index 150, "
                                                   r"in column b; "):
        riskmin.evaluate(run, table)


# (x, y) arrays read y as task= says, as a DataFrame's target column is read
def numbers_and(y):
    """Two number columns and the target `y`, as a DataFrame (target "y") and as NumPy arrays."""
    x = np.random.default_rng(2).standard_normal((len(y), 2))
    return pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "y": y}), x, np.asarray(y)


@pytest.mark.parametrize("y, task, read", [
    (np.array([True, False, False] * 20), "regression", ("regression", "mse", None)),  # true/false regress as 1 and 0
    (np.arange(60) % 5, "regression", ("regression", "mse", None)),  # whole numbers as amounts, not class indices
    (np.array([-1.0, 1.0] * 30), "classification", ("classification", "cross_entropy", [-1, 1])),
    (np.array([True, False, False] * 20), "auto", ("classification", "cross_entropy", [False, True])),
])
def test_arrays_read_their_target_as_task_says_and_train_as_the_dataframe(y, task, read):
    frame, x, y = numbers_and(y)
    settings = dict(task=task, epochs=2, progress=False)
    arrays, table = riskmin.fit("linear", (x, y), **settings), riskmin.fit("linear", frame, target="y", **settings)
    for run in (arrays, table):
        assert (run.data_names["task"], run.data_names["loss"], run.data_names["classes"]) == read
    assert all(torch.equal(a, b) for a, b in zip(arrays.model.parameters(), table.model.parameters()))


@pytest.mark.parametrize("y, task, message", [
    (np.array(["setosa", "versicolor", "virginica"] * 20), "regression",
     'y holds text, which regression cannot fit; use task="classification"'),
    (np.array(["setosa", "versicolor", None] * 20, dtype=object), "regression",
     'y holds text, which regression cannot fit; use task="classification"'),
    (np.linspace(0.0, 1.0, 60), "classification", 'y holds fractions, which are not class labels; use task="regression"'),
    (np.array([0.0, 1.0, np.inf] * 20), "classification", "y holds NaN or infinite values, first at row 2 (counting from 0), "
     "in column y0"),
])
@pytest.mark.parametrize("call", ["fit", "montecarlo"])
def test_arrays_whose_target_the_task_cannot_take_are_refused_in_one_sentence(y, task, message, call):
    x = np.random.default_rng(2).standard_normal((len(y), 2))
    train = riskmin.fit if call == "fit" else lambda *args, **settings: riskmin.montecarlo(*args, runs=2, **settings)
    with pytest.raises(RiskminError) as error:
        train("linear", (x, y), task=task, epochs=1, progress=False)
    assert str(error.value).startswith(message)


def test_text_that_regression_cannot_fit_is_refused_alike_in_arrays_and_in_a_dataframe():
    frame, x, y = numbers_and(np.array(["setosa", "versicolor", "virginica"] * 20))
    said = []
    for data in ((x, y), frame, (frame.drop(columns="y"), frame["y"])):
        with pytest.raises(RiskminError) as error:
            riskmin.fit("linear", data, target="y" if data is frame else "", task="regression", progress=False)
        said.append(str(error.value))
    assert said[0] == 'y holds text, which regression cannot fit; use task="classification"'
    assert said[1] == said[2] == ('target column y of DataFrame holds text, which regression cannot fit; '
                                  'use task="classification"')


def test_numbers_written_as_text_regress_as_a_dataframe_reads_them():
    frame, x, y = numbers_and(np.array(["1.5", "2", "-0.25"] * 20))
    arrays = riskmin.fit("linear", (x, y), task="regression", epochs=2, progress=False)
    table = riskmin.fit("linear", frame, target="y", task="regression", epochs=2, progress=False)
    assert arrays.data_names["task"] == table.data_names["task"] == "regression"
    assert all(torch.equal(a, b) for a, b in zip(arrays.model.parameters(), table.model.parameters()))


def test_arrays_of_yes_no_targets_still_train_with_bce_and_one_column_of_labels_reads_as_labels():
    x = np.random.default_rng(3).standard_normal((60, 2))
    one = (x[:, :1] > 0).astype(np.float32)
    run = riskmin.fit("linear", (x, one), task="classification", loss="bce", epochs=1, progress=False)
    assert run.data_names["loss"] == "bce" and not run.data_names["classes"]
    several = np.concatenate([one, (x[:, 1:] > 0).astype(np.float32)], axis=1)
    assert riskmin.fit("linear", (x, several), task="classification", loss="bce", epochs=1, progress=False).data_names["loss"] == "bce"
    labels = riskmin.fit("linear", (x, one * 2.0), task="classification", epochs=1, progress=False)  # 0 and 2, a column
    assert labels.data_names["loss"] == "cross_entropy" and labels.data_names["classes"] == [0, 2]
