import json
from pathlib import Path

import numpy as np
import pyarrow
from pyarrow import csv as arrow_csv, parquet
import pytest
import torch

import riskmin
from riskmin import RiskminError
from riskmin._cli._main import main
from riskmin import montecarlo
from said import unwrapped


@pytest.fixture
def houses(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 3))
    price = x @ [1.0, -2.0, 0.5] + 3 + 0.1 * rng.standard_normal(200)
    lines = ["id,size,age,rooms,price"] + [f"{1001 + i}," + ",".join(f"{v:.6f}" for v in (*row, p)) for i, (row, p) in enumerate(zip(x, price))]
    path = tmp_path / "houses.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_csv_columns_become_features_and_targets(houses):
    data = riskmin.load(str(houses), riskmin.Config(target="price"))
    assert (data.feature_names, data.target_names, data.name) == (["size", "age", "rooms"], ["price"], "houses")
    assert "left out of the features as row identifiers: id (named like one); name a column in features= to keep it" in data.notes
    assert data.x.dtype == torch.float32 and data.x.shape == (200, 3) and data.y.shape == (200, 1)
    first = houses.read_text().splitlines()[1].split(",")[1:]
    assert data.x[0].tolist() == pytest.approx([float(v) for v in first[:3]])
    chosen = riskmin.load(str(houses), riskmin.Config(target="price", features="rooms,size"))
    assert chosen.feature_names == ["rooms", "size"] and chosen.x[0].tolist() == pytest.approx([float(first[2]), float(first[0])])


def test_train_on_a_csv_reaches_least_squares(houses, tmp_path):
    assert main(["train", str(houses), "--target", "price", "--model", "linear", "--optimizer", "sgd", "--lr", "0.3",
                 "--batch-size", "0", "--epochs", "300", "--progress", "off", "--out", str(tmp_path / "runs")]) == 0
    summary = json.loads((tmp_path / "runs" / "houses-linear" / "summary.json").read_text())
    assert summary["test_loss"] == pytest.approx(summary["closed_form_test_loss"], rel=1e-2)


def test_montecarlo_on_a_csv(houses):
    mc = montecarlo("linear", riskmin.load(str(houses), riskmin.Config(target="price")), runs=4, epochs=5, progress=False)
    assert mc.summary["engine"] == "vectorized" and len(mc.table) == 4


def test_parquet_and_npz_read_the_same_numbers(houses, tmp_path):
    parquet.write_table(arrow_csv.read_csv(houses), tmp_path / "houses.parquet")
    from_csv = riskmin.load(str(houses), riskmin.Config(target="price"))
    from_parquet = riskmin.load(str(tmp_path / "houses.parquet"), riskmin.Config(target="price"))
    assert torch.equal(from_csv.x, from_parquet.x) and torch.equal(from_csv.y, from_parquet.y)
    np.savez(tmp_path / "arrays.npz", x=from_csv.x.numpy(), y=from_csv.y.numpy())
    from_npz = riskmin.load(str(tmp_path / "arrays.npz"))
    assert torch.equal(from_npz.x, from_csv.x) and torch.equal(from_npz.y, from_csv.y)


def test_the_index_pandas_writes_to_a_parquet_file_is_left_out_as_the_dataframe_leaves_it(houses, tmp_path):
    import pandas as pd

    frame = pd.read_csv(houses).drop(columns="id").sort_values("price")  # sorted: its index ranks the target
    kept = frame[frame["size"] > -1]  # a filtered frame keeps an index of its own, which to_parquet writes as a column
    kept.to_parquet(tmp_path / "kept.parquet")
    assert "__index_level_0__" in parquet.read_schema(tmp_path / "kept.parquet").names
    data = riskmin.load(str(tmp_path / "kept.parquet"), riskmin.Config(target="price"))
    assert data.feature_names == ["size", "age", "rooms"]  # it was a feature: the rank of each row's price
    assert ("left out of the features as row identifiers: __index_level_0__ (the index pandas wrote with the table); "
            "name a column in features= to keep it") in data.notes
    kept.to_csv(tmp_path / "kept.csv", index=False)  # the same rows, as a CSV without the index holds them
    assert torch.equal(data.x, riskmin.load(str(tmp_path / "kept.csv"), riskmin.Config(target="price")).x)
    kept.set_index("age").to_parquet(tmp_path / "named.parquet")  # a named index too
    assert riskmin.load(str(tmp_path / "named.parquet"), riskmin.Config(target="price")).feature_names == ["size", "rooms"]
    chosen = riskmin.Config(target="price", features="size,age")  # named in features, it is kept
    assert riskmin.load(str(tmp_path / "named.parquet"), chosen).feature_names == ["size", "age"]


@pytest.mark.parametrize("written", [b"[1]", b'"x"', b'{"index_columns": null}', b'{"index_columns": "ab"}', b"not json"])
def test_a_parquet_file_whose_pandas_metadata_is_another_writers_reads_as_it_did(houses, tmp_path, written):
    table = arrow_csv.read_csv(houses)
    parquet.write_table(table.replace_schema_metadata({b"pandas": written}), tmp_path / "odd.parquet")
    data = riskmin.load(str(tmp_path / "odd.parquet"), riskmin.Config(target="price"))  # an AttributeError, before
    assert data.feature_names == ["size", "age", "rooms"]


def test_an_integer_target_with_cross_entropy_is_class_labels(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((150, 2))
    label = (x[:, 0] > 0).astype(int) + (x[:, 1] > 0).astype(int)
    (tmp_path / "c.csv").write_text("a,b,label\n" + "".join(f"{p:.4f},{q:.4f},{k}\n" for (p, q), k in zip(x, label)))
    data = riskmin.load(str(tmp_path / "c.csv"), riskmin.Config(target="label", loss="cross_entropy"))
    assert data.y.dtype == torch.long and data.n_targets == 3


def write(tmp_path, name, text):
    (tmp_path / name).write_text(text)
    return str(tmp_path / name)


BAD_FILES = [
    ("houses.csv", None, ["--target", "pricee"], "target column pricee does not exist in houses.csv; did you mean price?"),
    ("houses.csv", None, [], "houses.csv is a table: name the column to predict with --target; its columns are id, size, age, rooms, price"),
    ("houses.csv", None, ["--target", "price", "--features", "size,colour"], "feature column colour does not exist in houses.csv"),
    ("houses.csv", None, ["--target", "price,price"], "target column price is named twice; name each column once in --target"),
    ("houses.csv", None, ["--target", "price", "--features", "size,size"],
     "feature column size is named twice; name each column once in --features"),
    ("houses.csv", None, ["--target", "price", "--features", "size,price"], "column price is both a feature and a target"),
    ("text.csv", "a,city\n1,Paris\n2,Rome\n", ["--target", "city", "--task", "regression"],
     "target column city of text.csv holds text, which regression cannot fit; use --task classification"),
    ("fractions.csv", "a,y\n1,2.5\n2,3\n", ["--target", "y", "--task", "classification"],
     "target column y of fractions.csv holds fractions, which are not class labels; use --task regression"),
    ("three.csv", "a,y\n1,0\n2,1\n3,2\n", ["--target", "y", "--loss", "bce"], "loss bce needs two classes but y has 3; use --loss cross_entropy"),
    ("two.csv", "a,b,y\n1,2,0\n2,3,1\n", ["--target", "a,y", "--task", "classification"],
     "classification takes one target column but 2 were given (a, y); name one with --target, or, for several yes/no targets, use --loss bce"),
    ("two.csv", "a,b,y\n1,2,0\n2,3,1\n", ["--target", "b,y", "--loss", "bce"],
     "target column b of two.csv holds 2, not 0 or 1, which loss bce cannot fit as a yes/no target; use --loss mse to fit the columns "
     "as numbers, or name a column of classes alone with --target"),
    ("gaps.csv", "a,y\n1,2\n,3\n4,\n", ["--target", "y"],
     "gaps.csv has missing values, empty or NaN, in columns a (1), y (1), first at rows 1, 2 (counting from 0); pass --missing drop to drop those rows "
     "or --missing mean to fill features with training-split means"),
    ("nan.csv", "a,y\n1,2\nnan,3\n", ["--target", "y"], "nan.csv has missing values, empty or NaN, in column a (1), first at row 1 (counting from 0);"),
    ("holes.csv", "a,b,y\n,1,2\n1,,3\n", ["--target", "y", "--missing", "drop"], "every row of holes.csv has a missing value in a, b; no row is left"),
    ("empty.csv", "a,y\n,2\n,3\n", ["--target", "y", "--missing", "drop"], "column a of empty.csv is empty in every row, so it holds nothing to learn from"),
    ("lab1", None, ["--task", "classification"], "built-in data set 'lab1' is regression data; drop --task classification (task=\"auto\")"),
    ("inf.csv", "a,y\n1,2\ninf,3\n", ["--target", "y"], "x holds NaN or infinite values, first at row 1 (counting from 0)"),
    ("ragged.csv", "a,y\n1,2,3\n", ["--target", "y"], "cannot be read as CSV"),
    ("one.csv", "a,y\n1,151\n", ["--target", "y"], "one.csv has 1 row; training needs at least 2"),  # not "one class"
    ("missing.csv", "", ["--target", "y"], "data file missing.csv does not exist"),
    ("data.xlsx", "a,y\n1,2\n", ["--target", "y"], "riskmin reads .csv, .parquet, .npz files"),
    ("lab1", None, ["--target", "y"], "--target and --features (target=, features=) choose columns of a table"),
]


@pytest.mark.parametrize("name, content, flags, message", BAD_FILES, ids=[m[:40] for *_, m in BAD_FILES])
def test_bad_data_files_are_one_clear_line(tmp_path, houses, monkeypatch, capsys, name, content, flags, message):
    monkeypatch.chdir(tmp_path)
    if content:
        write(tmp_path, name, content)
    assert main(["train", name, *flags, "--progress", "off"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_a_binary_file_named_csv_is_said_so_without_its_bytes(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    riskmin.fit("linear", "line", epochs=1, progress=False, directory="run")
    (tmp_path / "weights.csv").write_bytes((tmp_path / "run" / "model.safetensors").read_bytes())  # a copy misnamed
    assert main(["train", "weights.csv", "--target", "y", "--progress", "off"]) == 2
    assert capsys.readouterr().err == ("error: weights.csv cannot be read as CSV (it holds binary content, not text); "
                                       "check that the file is what its name says\n")


def test_npz_files_need_x_and_y_and_are_never_unpickled(tmp_path):
    np.savez(tmp_path / "wrong.npz", features=np.zeros((3, 2)), y=np.zeros(3))
    with pytest.raises(RiskminError, match="has no array named x; an .npz file needs arrays x and y"):
        riskmin.load(str(tmp_path / "wrong.npz"))
    np.savez(tmp_path / "short.npz", x=np.zeros((10, 2)), y=np.zeros(7))
    with pytest.raises(RiskminError, match="short.npz: x has 10 rows but y has 7; they must match$"):  # not "one class"
        riskmin.load(str(tmp_path / "short.npz"))
    np.savez(tmp_path / "objects.npz", x=np.array([{"a": 1}, None], dtype=object), y=np.zeros(2))
    with pytest.raises(RiskminError, match="cannot be read as NPZ"):
        riskmin.load(str(tmp_path / "objects.npz"))


def test_predict_and_evaluate_a_file_with_shuffled_columns(houses, tmp_path):
    assert main(["train", str(houses), "--target", "price", "--model", "linear", "--epochs", "30", "--progress", "off",
                 "--out", str(tmp_path / "runs"), "--name", "h"]) == 0
    rows = houses.read_text().splitlines()
    header = rows[0].split(",")
    order = ["price", "rooms", "id", "size", "age"]  # not the training order
    shuffled = [",".join(order)] + [",".join(dict(zip(header, line.split(",")))[c] for c in order) for line in rows[1:21]]
    (tmp_path / "new.csv").write_text("\n".join(shuffled) + "\n")
    assert main(["predict", str(tmp_path / "runs" / "h"), str(tmp_path / "new.csv"), "--out", str(tmp_path / "p.csv"), "--keep", "id"]) == 0
    written = (tmp_path / "p.csv").read_text().splitlines()
    assert written[0] == "id,predicted_price" and [line.split(",")[0] for line in written[1:]] == [str(1001 + i) for i in range(20)]
    run = riskmin.Run.load(tmp_path / "runs" / "h")
    data = riskmin.load(str(houses), riskmin.Config(target="price"))
    expected = riskmin.predict(run, data.x[:20])[:, 0].tolist()
    assert [float(np.float32(line.split(",")[1])) for line in written[1:]] == expected  # a float32's digits, read so
    metrics = riskmin.evaluate(run, riskmin.Data(data.x[:20], data.y[:20]))
    (tmp_path / "few.csv").write_text("\n".join(rows[:21]) + "\n")
    import contextlib
    import io
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["evaluate", str(tmp_path / "runs" / "h"), str(tmp_path / "few.csv")]) == 0
    shown = dict(line.split() for line in out.getvalue().splitlines())  # "name value", the errors in units first
    assert list(shown)[:2] == ["rmse", "mae"] and float(shown["loss"]) == pytest.approx(metrics["loss"], rel=1e-5)


def test_predict_refuses_a_file_without_a_feature_column(houses, tmp_path, capsys):
    assert main(["train", str(houses), "--target", "price", "--model", "linear", "--epochs", "2", "--progress", "off",
                 "--out", str(tmp_path / "runs"), "--name", "h"]) == 0
    (tmp_path / "partial.csv").write_text("size,rooms\n1,2\n")
    assert main(["predict", str(tmp_path / "runs" / "h"), str(tmp_path / "partial.csv"), "--out", str(tmp_path / "p.csv")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: feature column age is missing from partial.csv; it needs the feature columns size, age, rooms"]
    assert not (tmp_path / "p.csv").exists()
    (tmp_path / "huge.csv").write_text("size,age,rooms\n1,2,3\n1,1e40,3\n")  # beyond float32: it would predict inf
    assert main(["predict", str(tmp_path / "runs" / "h"), str(tmp_path / "huge.csv"), "--out", str(tmp_path / "p.csv")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "first at row 1 (counting from 0), in column age" in err[0] and "beyond ±3.4e+38" in err[0]
    assert not (tmp_path / "p.csv").exists()
    run = riskmin.Run.load(tmp_path / "runs" / "h")
    with pytest.raises(RiskminError, match=r"x column rooms holds 5e\+39 at row 0 \(counting from 0\), beyond the float32 range"):
        riskmin.predict(run, np.array([[1.0, 2.0, 5e39]]))
    with pytest.raises(RiskminError, match="x holds NaN or infinite values"):
        riskmin.predict(run, np.array([[1.0, np.nan, 3.0]]))


@pytest.mark.parametrize("delimiter, decimal, note", [
    (";", ",", "separates its columns by semicolons, with decimal commas; it was read so"),
    (";", ".", "separates its columns by semicolons; it was read so"),
    ("\t", ".", "separates its columns by tabs; it was read so"),
])
def test_a_csv_saved_with_another_separator_reads_the_same_numbers_with_a_note(houses, tmp_path, delimiter, decimal, note):
    """As a spreadsheet saves a table where the comma marks decimals: semicolons between the columns, commas in the
    numbers; or tabs."""
    lines = houses.read_text().splitlines()
    other = tmp_path / "other.csv"
    other.write_text("\n".join(line.replace(",", "#").replace(".", decimal).replace("#", delimiter) for line in lines) + "\n")
    given, read = riskmin.load(str(houses), riskmin.Config(target="price")), riskmin.load(str(other), riskmin.Config(target="price"))
    assert torch.equal(read.x, given.x) and torch.equal(read.y, given.y) and read.feature_names == given.feature_names
    assert f"other.csv {note}" in read.notes and not any("separates" in n for n in given.notes)


def test_a_file_to_predict_is_said_to_have_the_decimal_mark_its_own_cells_show(houses, tmp_path, capsys):
    lines = houses.read_text().splitlines()
    with_commas, with_points = tmp_path / "commas.csv", tmp_path / "points.csv"
    with_commas.write_text("\n".join(line.replace(",", ";").replace(".", ",") for line in lines) + "\n")
    with_points.write_text("\n".join(line.replace(",", ";") for line in lines) + "\n")
    assert main(["train", str(with_commas), "--target", "price", "--epochs", "1", "--progress", "off", "--out", str(tmp_path / "runs"), "--name", "r"]) == 0
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "runs" / "r"), str(with_points), "--out", str(tmp_path / "p.csv")]) == 0
    # the run's mark was said of a file whose cells show points (1.5): "points.csv ... with decimal commas"
    said = capsys.readouterr()
    assert "note: points.csv separates its columns by semicolons; it was read so" in " ".join((said.out + said.err).split())
    assert main(["predict", str(tmp_path / "runs" / "r"), str(with_commas), "--out", str(tmp_path / "q.csv")]) == 0
    assert (tmp_path / "p.csv").read_text() == (tmp_path / "q.csv").read_text()
    # a row whose commas stand before three digits each leaves the mark open: the run's decides, decimals here
    # (read as 1250, a thousands comma, by a run of tabs and decimal commas)
    tabs = tmp_path / "tabs.csv"
    tabs.write_text(with_commas.read_text().replace(";", "\t"))
    assert main(["train", str(tabs), "--target", "price", "--epochs", "1", "--progress", "off", "--out", str(tmp_path / "runs"), "--name", "t"]) == 0
    for run, separator in (("r", ";"), ("t", "\t")):
        header, first = with_commas.read_text().replace(";", separator).splitlines()[:2]
        cells = ["1,250" if "," in cell else cell for cell in first.split(separator)]
        (tmp_path / "open.csv").write_text(header + "\n" + separator.join(cells) + "\n")
        (tmp_path / "shut.csv").write_text((tmp_path / "open.csv").read_text().replace("1,250", "1,25"))
        for name in ("open", "shut"):
            assert main(["predict", str(tmp_path / "runs" / run), str(tmp_path / f"{name}.csv"), "--out", str(tmp_path / f"{run}-{name}.csv")]) == 0
        assert (tmp_path / f"{run}-open.csv").read_text() == (tmp_path / f"{run}-shut.csv").read_text()


def test_a_latin_1_csv_is_read_with_a_note(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("prénom,x,y\n" .encode("latin-1") + "".join(f"{'Zoé' if i % 2 else 'André'},{i % 5},{i}\n" for i in range(30)).encode("latin-1"))
    data = riskmin.load(str(path), riskmin.Config(target="y"))
    assert data.feature_names[:2] == ["prénom=André", "prénom=Zoé"]
    assert "latin.csv is not UTF-8; it was read as Latin-1 (ISO-8859-1): save it as UTF-8 if its text looks wrong" in data.notes


FILE_ERRORS = [
    ("twice.csv", lambda p: p.write_text("a,b,a,y\n1,2,3,4\n5,6,7,8\n"),
     "twice.csv has two columns named 'a' (columns 1 and 3); rename one so that each column has its own name"),
    ("twice.parquet", lambda p: parquet.write_table(pyarrow.table([[1, 2], [3, 4], [5, 6]], names=["a", "y", "a"]), p),
     "twice.parquet has two columns named 'a' (columns 1 and 3); rename one"),
    ("array.npz", lambda p: p.write_bytes(npy_bytes()),
     "holds one array saved by numpy.save (an .npy file), not the arrays x and y of an .npz file; save them with numpy.savez(path, x=x, y=y)"),
    ("text.npz", lambda p: p.write_text("x,y\n1,2\n"), "is not an .npz file (a zip archive of arrays); save x and y with numpy.savez"),
    ("nested.parquet", lambda p: parquet.write_table(pyarrow.table({"tags": [[1, 2], [3]], "y": [1.0, 2.0]}), p),
     "column tags of nested.parquet holds list<element: int64> values, which cannot be model inputs or targets; leave it out with --features"),
    ("struct.parquet", lambda p: parquet.write_table(pyarrow.table({"a": [1.0, 2.0], "y": [{"k": 1}, {"k": 2}]}), p),
     "column y of struct.parquet holds struct<k: int64> values, which cannot be model inputs or targets"),
]


def npy_bytes():
    import io
    buffer = io.BytesIO()
    np.save(buffer, np.zeros((3, 2)))
    return buffer.getvalue()


@pytest.mark.parametrize("name, make, message", FILE_ERRORS, ids=[name for name, *_ in FILE_ERRORS])
def test_files_riskmin_cannot_use_are_one_clear_line(tmp_path, capsys, name, make, message):
    make(tmp_path / name)
    assert main(["train", str(tmp_path / name), "--target", "y", "--progress", "off", "--out", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err


def test_a_nested_column_left_out_and_a_decimal_column_are_fine(tmp_path):
    from decimal import Decimal

    table = pyarrow.table({"tags": [[1], [2], [3]], "price": pyarrow.array([Decimal("1.25"), Decimal("2.50"), Decimal("3.75")]), "y": [1.0, 2.0, 3.0]})
    parquet.write_table(table, tmp_path / "shop.parquet")
    data = riskmin.load(str(tmp_path / "shop.parquet"), riskmin.Config(target="y", features="price"))
    assert data.layout == [{"name": "price", "kind": "numeric"}] and data.x[:, 0].tolist() == [1.25, 2.5, 3.75]


def test_npz_labels_follow_the_task_rule_of_tables(tmp_path):
    x = np.zeros((40, 2), dtype=np.float32)
    np.savez(tmp_path / "signs.npz", x=x, y=np.array([-1, 0, 1, 1] * 10))
    signs = riskmin.load(str(tmp_path / "signs.npz"))
    assert signs.task == "classification" and signs.classes == [-1, 0, 1] and signs.y[:4].tolist() == [0, 1, 2, 2]
    assert signs.notes == ["task: classification (guessed): y has 3 classes (-1, 0, 1); 3 distinct whole numbers are class labels; "
                           'override with task="regression"']  # the other task, as a table's note names it
    np.savez(tmp_path / "counts.npz", x=x, y=np.arange(40) * 3)
    counts = riskmin.load(str(tmp_path / "counts.npz"))
    assert counts.task == "regression" and counts.y.dtype == torch.float32
    assert counts.notes == ['task: regression (guessed); 40 distinct whole numbers, 0..117, are scores or counts, not class codes; '
                            'override with task="classification"']
    asked = riskmin.load(str(tmp_path / "counts.npz"), riskmin.Config(task="classification"))
    assert asked.task == "classification" and len(asked.classes) == 40


def shifted_table(tmp_path, shift: float, name: str, suffix: str = ".csv"):
    """y = 2 z + w/2 + noise, with the feature t = shift + 100 z: at shift 1e9 (a Unix time) float32 holds t in steps of 64."""
    rng = np.random.default_rng(0)
    z, w = rng.standard_normal(2000), rng.standard_normal(2000)
    table = pyarrow.table({"t": shift + 100 * z, "w": w, "y": 2 * z + 0.5 * w + 0.05 * rng.standard_normal(2000)})
    path = tmp_path / f"{name}{suffix}"
    arrow_csv.write_csv(table, path) if suffix == ".csv" else parquet.write_table(table, path)
    return path


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_column_at_a_large_offset_keeps_its_digits(tmp_path, suffix):
    settings = dict(target="y", optimizer="adam", lr=0.05, epochs=60, progress=False)
    plain = riskmin.fit("linear", str(shifted_table(tmp_path, 0.0, "plain", suffix)), **settings)
    shifted = riskmin.fit("linear", str(shifted_table(tmp_path, 1e9, "shifted", suffix)), **settings)
    assert shifted.summary["test_mse"] == pytest.approx(plain.summary["test_mse"], rel=1e-3)  # quantized, it was 0.33 against 0.0025
    [t, w] = shifted.data_names["layout"]
    assert t["offset"] == pytest.approx(1e9, rel=1e-6) and "offset" not in w and "offset" not in plain.data_names["layout"][0]
    assert plain.summary["test_mse"] < 0.01


def test_a_column_at_an_offset_is_centred_alike_when_a_run_predicts_a_file(tmp_path, capsys):
    path = shifted_table(tmp_path, 1e9, "shifted")
    assert main(["train", str(path), "--target", "y", "--model", "linear", "--optimizer", "adam", "--lr", "0.05", "--epochs", "60",
                 "--progress", "off", "--out", str(tmp_path), "--name", "run"]) == 0
    few = tmp_path / "few.csv"
    few.write_text("\n".join(path.read_text().splitlines()[:4]) + "\n")  # three rows: too few to tell a column's spread
    assert main(["predict", str(tmp_path / "run"), str(few), "--out", str(tmp_path / "p.csv")]) == 0
    predicted = [float(line.split(",")[-1]) for line in (tmp_path / "p.csv").read_text().splitlines()[1:]]
    truth = [float(line.split(",")[-1]) for line in few.read_text().splitlines()[1:]]
    assert np.allclose(predicted, truth, atol=0.25)


def test_a_column_even_float64_cannot_resolve_is_named(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "huge.csv"
    arrow_csv.write_csv(pyarrow.table({"t": 1e15 + rng.standard_normal(50), "y": rng.standard_normal(50)}), path)
    data = riskmin.datasets.load(str(path), riskmin.Config(data=str(path), target="y"))
    assert any(note.startswith("column t varies by about") and "finer than even float64" in note for note in data.notes)


def test_a_run_with_a_centred_column_centres_numbers_it_predicts_as_it_centred_the_file(tmp_path):
    import pandas

    path = shifted_table(tmp_path, 1e9, "shifted")
    run = riskmin.fit("linear", str(path), target="y", optimizer="adam", lr=0.05, epochs=60, progress=False)
    frame = pandas.read_csv(path)
    rows = frame[["t", "w"]].to_numpy()  # float64, as read
    from_numbers = riskmin.predict(run, rows)[:, 0]
    from_frame = riskmin.predict(run, frame)["y"].to_numpy()
    assert np.allclose(from_numbers, from_frame, atol=1e-6)
    assert np.sqrt(np.mean((from_numbers - frame["y"].to_numpy()) ** 2)) < 0.1


@pytest.mark.parametrize("values, kind", [
    ([1.5, -2.0, 3.25], pyarrow.float64()), ([1.5, -2.0, 3.25], pyarrow.float32()), ([1.5, -2.0], pyarrow.float16()),
    ([1, -2, 3], pyarrow.int64()), ([1, 2, 3], pyarrow.uint8()), ([True, False, True], pyarrow.bool_()),
    ([1.5, None, 3.0], pyarrow.float64()), ([1, None], pyarrow.int32()), ([True, None], pyarrow.bool_()),
    (["a", None, "b"], pyarrow.string()), ([], pyarrow.float32()), ([0, 86_400_000_000], pyarrow.timestamp("us")),
])
def test_array_numpy_gives_what_pyarrow_to_numpy_gives(values, kind):
    # array_numpy stands in for to_numpy (which imports pandas) by DLPack; should pyarrow change either, this fails
    from riskmin._data._columns import array_numpy

    whole = pyarrow.array(values, type=kind)
    for chunk in (whole, whole.slice(1)):  # a slice starts inside its buffers
        ours, theirs = array_numpy(chunk), chunk.to_numpy(zero_copy_only=False)
        assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
        np.testing.assert_array_equal(ours, theirs)  # NaN where theirs has NaN


def test_training_on_and_predicting_from_a_csv_of_numbers_imports_no_pandas(tmp_path):
    import subprocess
    import sys

    rows = "".join(f"{i / 10},{i % 3},{'true' if i % 2 else 'false'},{i / 5 + 1}\n" for i in range(60))
    (tmp_path / "rows.csv").write_text("size,rooms,new,price\n" + rows)
    for command in (["train", "rows.csv", "--target", "price", "--epochs", "1", "--progress", "off", "--out", "runs"],
                    ["predict", "runs/rows-two_layer", "rows.csv", "--out", "p.csv"]):
        done = subprocess.run([sys.executable, "-X", "importtime", "-m", "riskmin", *command], capture_output=True, text=True,
                              timeout=120, cwd=tmp_path)
        imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
        assert done.returncode == 0 and "pyarrow" in imported and "pandas" not in imported, done.stderr[-2000:]
    assert len((tmp_path / "p.csv").read_text().splitlines()) == 61


def test_a_comma_is_read_as_a_decimal_mark_only_where_the_numbers_show_it(tmp_path):
    from riskmin._data._readers import csv_format

    cases = {  # file text -> (separator, decimal mark)
        "x;y\n1,5;2\n-0,25;3\n": (";", ","),
        "area\ty\n1,200\t1\n1,850\t2\n900\t3\n": ("\t", "."),  # commas that group thousands, not decimals
        "x;y\n1.5;2\n2,5;3\n": (";", "."),  # a point in a number: a comma elsewhere is no decimal mark
        "x;name\n1.5;p.3,4\n": (";", "."),  # a comma inside text
        "x,y\n1,2\n": (",", "."),
        "x;w\n18,0;3.504\n15,5;950\n": (";", ","),  # points that group thousands beside decimal commas
        "x;y\n18,000;5,031\n": (";", ","),  # three decimals in a file separated by semicolons: decimals, not thousands
        "area;y\n2.186;1\n950;2\n": (";", "."),  # points alone are decimal points, as a program writes them
        "w;y\n1.250;30\n2.500;41\n": (";", "."),  # three decimals each: still decimals, not a thousand times more
        "x;y\n0.076;2\n1.001;3\n": (";", "."),  # a point before other than three digits: decimal points throughout
        "x\ty\n2.186\t1\n": ("\t", "."),  # a tab-separated file presumes no decimal comma
    }
    for number, (text, form) in enumerate(cases.items()):
        path = tmp_path / f"t{number}.csv"
        path.write_text(text)
        assert csv_format(path) == form, text


def test_numbers_whose_thousands_are_grouped_by_commas_are_read_as_numbers(tmp_path):
    """A tab-separated table whose numbers group their thousands (1,200), as a spreadsheet may write them: a column of
    such numbers is numbers, not the text of 214 classes."""
    rows = [(i, 1000 + 37 * i, -12345.5 + i) for i in range(40)]
    plain, grouped = tmp_path / "plain.csv", tmp_path / "grouped.csv"
    plain.write_text("x\ty\tz\n" + "".join(f"{x}\t{y}\t{z}\n" for x, y, z in rows))
    grouped.write_text("x\ty\tz\n" + "".join(f"{x}\t{y:,}\t{z:,}\n" for x, y, z in rows))
    settings = riskmin.Config(target="y")
    given, read = riskmin.load(str(plain), settings), riskmin.load(str(grouped), settings)
    assert read.task == given.task == "regression" and torch.equal(read.y, given.y) and torch.equal(read.x, given.x)
    assert "grouped.csv writes the thousands of columns y, z with commas (1,200); read as numbers" in read.notes
    quoted = tmp_path / "quoted.csv"  # a comma-separated file quotes them: "1,037"
    quoted.write_text("x,y,z\n" + "".join(f'{x},"{y:,}","{z:,}"\n' for x, y, z in rows))
    read = riskmin.load(str(quoted), settings)
    assert read.task == "regression" and torch.equal(read.y, given.y) and torch.equal(read.x, given.x)


def test_a_first_line_of_numbers_alone_is_said_to_be_read_as_the_column_names(tmp_path):
    """A file without a header line lost its first row of data without a word."""
    path = tmp_path / "nohead.csv"
    path.write_text("".join(f"{i}.5,{-i}.25,{2 * i}\n" for i in range(1, 30)))
    read = riskmin.load(str(path), riskmin.Config(target="2"))
    assert len(read) == 28 and read.feature_names == ["1.5", "-1.25"]
    assert ("the first line of nohead.csv holds numbers alone (1.5, -1.25, 2), read as its column names; if it is a row "
            "of data, add a header line that names the columns, or that row is left out") in read.notes
    path.write_text("year,1990,2000\n" + "".join(f"{i},{i},{i}\n" for i in range(30)))  # a name among them: a header
    assert not any("numbers alone" in note for note in riskmin.load(str(path), riskmin.Config(target="2000")).notes)


def test_decimal_commas_after_a_zero_are_read_as_decimals_in_a_comma_separated_file(tmp_path):
    """A comma-separated export that quotes its decimal commas ("0,125") beside whole numbers: 0,125 was read as 125,
    a thousands comma, and a dose of 0.125 trained as 125 without a word."""
    doses = [0.125, 0.25, 0.5, 1, 2, 4] * 5
    path = tmp_path / "dose.csv"
    path.write_text("dose,y\n" + "".join(f'"{d:.3f}",{3 * d}\n'.replace(".", ",", 1) if d < 1 else f"{d},{3 * d}\n"
                                         for d in doses))
    read = riskmin.load(str(path), riskmin.Config(target="y"))
    assert read.x[:, 0].tolist() == doses and not any("thousands" in note for note in read.notes)
    assert 'dose.csv quotes numbers with decimal commas ("0,125"); they were read so' in read.notes
    # the file's mark, as a file of semicolons has one: a column of commas that could group thousands reads so too
    path.write_text('a,b,y\n"1,200","0,5",1\n"3,000","0,25",2\n"2,500","1,5",3\n')
    np.testing.assert_allclose(riskmin.load(str(path), riskmin.Config(target="y")).x, [[1.2, 0.5], [3.0, 0.25], [2.5, 1.5]],
                               rtol=1e-6)
    path.write_text('name,price,y\n"Smith, J","1,200",1\n"Ray, A","12,500",2\n')  # text in quotes: no mark shown
    assert riskmin.load(str(path), riskmin.Config(target="y", features=["price"])).x[:, 0].tolist() == [1200, 12500]


def test_a_run_on_quoted_decimal_commas_predicts_a_file_of_them_as_it_read_them(tmp_path, monkeypatch):
    """A prediction file whose cells leave the mark open ("1,250") read as thousands: 3750 predicted for 3.75."""
    from riskmin._cli._main import main

    monkeypatch.chdir(tmp_path)
    doses = [0.125, 0.25, 0.5, 1.25, 2.5] * 8
    Path("train.csv").write_text("dose,y\n" + "".join(f'"{d:g}",{3 * d}\n'.replace(".", ",", 1) for d in doses))
    assert main(["train", "train.csv", "--target", "y", "--model", "linear", "--epochs", "200", "--lr", "0.1",
                 "--progress", "off", "--name", "r"]) == 0
    Path("new.csv").write_text('dose\n"1,250"\n"2,500"\n')
    assert main(["predict", "runs/r", "new.csv", "--out", "p.csv"]) == 0
    predicted = [float(line) for line in Path("p.csv").read_text().splitlines()[1:]]
    assert predicted == pytest.approx([3.75, 7.5], abs=0.05)


def test_a_semicolon_file_of_decimal_commas_and_points_that_group_thousands_reads_the_same_numbers(tmp_path):
    """As a German spreadsheet saves a table: semicolons between columns, a comma before the decimals (18,0; 5,031,
    three of them), a point between the thousands (3.504; 226.412): the numbers the plain file holds, not text classes
    or values a thousand times too large."""
    rows = [(18.0 + i % 7, 5.031 + i / 8, 950 + 131 * i, 1000.5 + 2003 * i) for i in range(40)]
    plain, german = tmp_path / "plain.csv", tmp_path / "german.csv"
    plain.write_text("y,litres,w,price\n" + "".join(f"{y},{v:.3f},{w},{p}\n" for y, v, w, p in rows))
    german.write_text("y;litres;w;price\n" + "".join(
        f"{y:.1f};{v:.3f};{w:,};{p:,.1f}\n".replace(",", "#").replace(".", ",").replace("#", ".") for y, v, w, p in rows))
    settings = riskmin.Config(target="y")
    given, read = riskmin.load(str(plain), settings), riskmin.load(str(german), settings)
    assert read.task == given.task == "regression" and torch.equal(read.y, given.y) and torch.equal(read.x, given.x)
    assert "german.csv writes the thousands of columns w, price with points (3.504); read as numbers" in read.notes


def test_several_yes_no_columns_of_a_table_fit_bce_as_several_yes_no_targets(tmp_path):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((120, 2))
    rows = "".join(f"{p:.4f},{q:.4f},{int(p > 0)},{str(q > 0).lower()}\n" for p, q in x)
    (tmp_path / "two.csv").write_text("p,q,first,second\n" + rows)
    with pytest.warns(riskmin.RiskminNote, match=r"^task: classification \(guessed\): 2 yes/no targets \(first, second\); "
                                                 r"loss=\"bce\" takes yes/no targets$"):
        data = riskmin.load(str(tmp_path / "two.csv"), target="first,second", loss="bce")
    assert data.task == "classification" and data.y.dtype == torch.float32
    assert torch.equal(data.y, torch.tensor([[p > 0, q > 0] for p, q in x], dtype=torch.float32))
    # yes and no as words (any case, y and n too), as a survey's columns hold them: yes is 1, in training and evaluate
    words = "".join(f"{p:.4f},{q:.4f},{'Yes' if p > 0 else 'No'},{'y' if q > 0 else 'n'}\n" for p, q in x)
    (tmp_path / "words.csv").write_text("p,q,first,second\n" + words)
    run = riskmin.fit("linear", str(tmp_path / "words.csv"), target="first,second", loss="bce", epochs=5, progress=False)
    assert run.summary["n_outputs"] == 2
    # the same targets, in either form
    assert riskmin.evaluate(run, str(tmp_path / "two.csv")) == riskmin.evaluate(run, str(tmp_path / "words.csv"))
    mixed = "".join(f"{p:.4f},{q:.4f},{('Yes', 'y', 'TRUE')[i % 3] if p > 0 else ('no', ' N ', 'f')[i % 3]},0\n"
                    for i, (p, q) in enumerate(x))  # the words of both pairs, any case, with spaces: yes is 1
    (tmp_path / "mixed.csv").write_text("p,q,first,second\n" + mixed)
    read = riskmin.load(str(tmp_path / "mixed.csv"), target="first,second", loss="bce")
    assert torch.equal(read.y[:, 0], torch.tensor([p > 0 for p, _ in x], dtype=torch.float32))
    (tmp_path / "numbers.csv").write_text("p,q,first,second\n0,1,0,1\n1,0,1,0.5\n2,2,0,1\n")
    with pytest.raises(RiskminError, match="^target column second of numbers.csv holds 0.5, not 0 or 1"):
        riskmin.load(str(tmp_path / "numbers.csv"), target="first,second", loss="bce")  # the value that is neither
    (tmp_path / "maybe.csv").write_text("p,q,first,second\n" + words.replace(",n\n", ",maybe\n", 1))
    with pytest.raises(RiskminError, match="^target column second of maybe.csv holds 'maybe', not 0 or 1, which loss bce "
                                           "cannot fit as a yes/no target; write it as 0/1, yes/no or true/false, or name "
                                           "a column of classes alone with target=$"):
        riskmin.load(str(tmp_path / "maybe.csv"), target="first,second", loss="bce")


def test_files_a_spreadsheet_saves_another_way_are_each_one_sentence_that_says_what_to_do(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    rows = "".join(f"{i},{2 * i + 1},2021-01-{i % 28 + 1:02d}\n" for i in range(30))
    (tmp_path / "t.csv").write_text("Name,y,day\n" + rows)
    (tmp_path / "utf16.csv").write_bytes(("Name,y,day\n" + rows).encode("utf-16"))
    (tmp_path / "titled.csv").write_text("Sales, 2021\nName,y,day\n" + rows)
    (tmp_path / "us.csv").write_text("Name,y,day\n" + "".join(f"{i},{i},01/{i % 28 + 1:02d}/2021\n" for i in range(30)))
    assert main(["train", "utf16.csv", "--target", "y"]) == 2
    assert capsys.readouterr().err == ("error: utf16.csv is UTF-16 text; save it as UTF-8 (a spreadsheet's CSV UTF-8) "
                                       "and give that file\n")
    assert main(["train", "titled.csv", "--target", "y"]) == 2
    assert unwrapped(capsys.readouterr().err) == (
        "error: titled.csv cannot be read as CSV: its first line has 2 columns and a later one 3 (Name,y,day); a title "
        "or note above the header line, or a row with cells the header does not name, does that: remove it\n")
    (tmp_path / "short.csv").write_text("Name,y,day\n" + rows.replace("3,7,", "3,", 1))
    assert main(["train", "short.csv", "--target", "y"]) == 2
    assert unwrapped(capsys.readouterr().err) == (
        "error: short.csv cannot be read as CSV: its first line has 3 columns and a later one 2 (3,2021-01-04); give "
        "every row a cell for each column, an empty one where a value is missing\n")
    assert main(["train", "t.csv", "--target", "Y", "--model", "linear", "--epochs", "1"]) == 2
    assert capsys.readouterr().err.endswith("; did you mean y?\n")  # whatever the case
    assert main(["train", "t.csv", "--target", "y", "--model", "linear", "--epochs", "1"]) == 0
    capsys.readouterr()
    assert main(["predict", "runs/t-linear", "t.csv", "--keep", "nme", "--out", "p.csv"]) == 2
    assert capsys.readouterr().err == "error: kept column nme does not exist in t.csv; did you mean Name?\n"
    assert main(["predict", "runs/t-linear", "us.csv", "--out", "p.csv"]) == 2  # the run needs its day: no --features
    assert unwrapped(capsys.readouterr().err).endswith("holds dates such as '01/01/2021' at row 0 (counting from 0), which riskmin reads only in "
                                                       "ISO 8601 form (2021-04-03 or 2021-04-03 10:00:00); rewrite them, "
                                                       "as the run read them in training\n")
    assert not (tmp_path / "p.csv").exists()


def test_a_category_column_of_numbers_is_categories_and_predicts_from_plain_numbers_too():
    import pandas as pd

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=120), "grade": pd.Categorical(rng.choice([1, 2, 5], 120))})
    frame["y"] = frame["a"] + (frame["grade"].astype(int) == 2) * 3.0
    with pytest.warns(riskmin.RiskminNote, match="^column grade is a category column of numbers; each category is one "
                                                 "input, as text's are$"):
        run = riskmin.fit("linear", frame, target="y", epochs=20, progress=False)
    from riskmin._data._columns import input_names

    assert input_names(run.data_names["layout"]) == ["a", "grade=1", "grade=2", "grade=5"]  # not one number column
    plain = frame.head(5).assign(grade=frame["grade"].head(5).astype(int))
    assert np.array_equal(riskmin.predict(run, frame.head(5)), riskmin.predict(run, plain))
    # a run that read a plain column of numbers reads a category column of them as numbers too
    numbers = riskmin.fit("linear", frame.assign(grade=frame["grade"].astype(int)), target="y", epochs=2, progress=False)
    assert np.array_equal(riskmin.predict(numbers, frame.head(5)), riskmin.predict(numbers, plain))


def test_a_number_column_with_too_many_text_cells_says_why_it_is_read_as_text(tmp_path):
    cells = [str(10 + i) if i % 10 else "?" for i in range(60)]  # a '?' in one cell of ten: 10%, over the 5%
    (tmp_path / "q.csv").write_text("hp,name,y\n" + "".join(f"{c},car {i % 7},{i}\n" for i, c in enumerate(cells)))
    data = riskmin.load(str(tmp_path / "q.csv"), riskmin.Config(target="y"))
    said = [note for note in data.notes if note.startswith("column hp holds numbers")]
    assert said == ["column hp holds numbers but for 6 of its 60 cells ('?'), more than the 5% taken as missing values: "
                    "it is read as text, one input per value; empty those cells to have it read as numbers"]
    assert not [note for note in data.notes if "column name holds numbers" in note]  # text is text


def test_predict_reads_a_file_with_the_decimal_mark_its_run_was_trained_with(tmp_path, monkeypatch, capsys):
    """New rows in the training file's form whose own lines show too little to tell (points alone, 5.253, which
    group thousands where the comma marks decimals): read with the run's mark, not as 5.253."""
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    rows = [(int(rng.integers(1000, 6000)), round(float(rng.normal()), 1)) for _ in range(100)]

    def german(value) -> str:
        return f"{value:,}".replace(",", "#").replace(".", ",").replace("#", ".")

    (tmp_path / "train.csv").write_text("w;z;y\n" + "".join(f"{german(w)};{german(z)};{german(w / 1000 + z)}\n" for w, z in rows))
    (tmp_path / "new.csv").write_text("w;z\n" + "".join(f"{german(w)};0\n" for w, _ in rows[:5]))
    assert main(["train", "train.csv", "--target", "y", "--model", "linear", "--epochs", "100", "--optimizer", "sgd",
                 "--lr", "0.1"]) == 0
    assert json.loads((tmp_path / "runs/train-linear/preprocessing.json").read_text())["csv_form"] == [";", ","]
    assert main(["predict", "runs/train-linear", "new.csv", "--out", "p.csv"]) == 0
    predicted = [float(line) for line in (tmp_path / "p.csv").read_text().splitlines()[1:]]
    assert np.allclose(predicted, [w / 1000 for w, _ in rows[:5]], atol=0.1), predicted  # 5.253 thousand, not 5.253
    # a file separated otherwise is read by what its own lines show: tabs and decimal points, 5.253 as 5.253
    (tmp_path / "tabs.csv").write_text("w\tz\n" + "".join(f"{w / 1000}\t0\n" for w, _ in rows[:5]))
    tabs = riskmin.predict(riskmin.Run.load("runs/train-linear"), "tabs.csv")
    assert np.allclose(np.asarray(tabs).ravel(), [w / 1e6 for w, _ in rows[:5]], atol=0.1)
    # and a run trained on a comma-separated file reads a semicolon file of decimal commas as its lines show
    (tmp_path / "plain.csv").write_text("w,z,y\n" + "".join(f"{w},{z},{w / 1000 + z}\n" for w, z in rows))
    assert main(["train", "plain.csv", "--target", "y", "--model", "linear", "--epochs", "100", "--optimizer", "sgd",
                 "--lr", "0.1"]) == 0
    (tmp_path / "commas.csv").write_text("w;z\n" + "".join(f"{w};{german(z)}\n" for w, z in rows[:5]))
    semicolons = riskmin.predict(riskmin.Run.load("runs/plain-linear"), "commas.csv")
    assert np.allclose(np.asarray(semicolons).ravel(), [w / 1000 + z for w, z in rows[:5]], atol=0.1)


def test_an_empty_column_without_a_name_is_said_to_come_from_a_separator_that_begins_or_ends_each_line(tmp_path):
    rows = "".join(f"{i % 7},{i % 3}.5\n" for i in range(30))
    for where, text in (("begins", ",a,y\n" + "".join("," + row for row in rows.splitlines(True))),
                        ("ends", "a,y,\n" + "".join(row.rstrip("\n") + ",\n" for row in rows.splitlines(True)))):
        (tmp_path / "t.csv").write_text(text)
        data = riskmin.load(str(tmp_path / "t.csv"), riskmin.Config(target="y"))
        assert data.feature_names == ["a"]  # "(no name: an index written with the table)", before
        assert f"left out of the features as row identifiers: '' (no name and no value: a separator {where} every line); name a column in features= to keep it" in data.notes
