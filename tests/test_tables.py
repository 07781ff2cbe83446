"""Real-world columns: text categories, missing values, the task guess, class names, and what predict writes."""

import csv
import json
import warnings

import numpy as np
import pytest
import torch

import riskmin
from riskmin._cli._main import main
from riskmin import montecarlo
from said import unwrapped

FAST = ["--epochs", "40", "--lr", "0.05", "--progress", "off"]


def write_rows(path, header, rows):
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture
def pets(tmp_path):
    """Price from size and a text column, with one missing size; 'kiwi' occurs in a single row only."""
    rng = np.random.default_rng(0)
    kinds = ["cat", "dog", "fish"]
    rows = []
    for i in range(240):
        kind = kinds[i % 3]
        size = rng.uniform(1, 5)
        price = 2 * size + {"cat": 1.0, "dog": 3.0, "fish": -2.0}[kind] + 0.05 * rng.standard_normal()
        rows.append([f"p{i}", "" if i == 7 else f"{size:.5f}", kind, f"{price:.5f}"])
    rows[11][2] = "kiwi"
    return write_rows(tmp_path / "pets.csv", ["id", "size", "kind", "price"], rows)


def read_csv(path):
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


def test_a_text_column_is_one_hot_encoded_with_the_categories_of_the_training_split(pets):
    data = riskmin.load(str(pets), riskmin.Config(target="price", features="size,kind", missing="mean"))
    assert data.feature_names == ["size", "kind=cat", "kind=dog", "kind=fish", "kind=kiwi"]
    assert data.x[0, 1:].tolist() == [1, 0, 0, 0] and data.x[1, 1:].tolist() == [0, 1, 0, 0]
    splits = riskmin.split(data, seed=0)
    kiwi_in_training = bool((splits.train == 11).any())
    scaler = riskmin.data.Standardizer.fit(data.x[splits.train], data.onehot())
    assert scaler.std[1:4].tolist() == [1, 1, 1] and scaler.mean[1:].tolist() == [0, 0, 0, 0]
    assert (scaler.std[4] == 1) == kiwi_in_training  # a category no training row has is zeroed: std inf
    sizes = data.x[splits.train, 0]
    assert scaler.fill[0] == pytest.approx(float(sizes[~sizes.isnan()].mean()), rel=1e-6)  # the training-split mean


def test_missing_values_are_an_error_by_default_dropped_or_filled_with_training_means(pets, tmp_path, capsys):
    out = ["--out", str(tmp_path / "runs")]
    assert main(["train", str(pets), "--target", "price", "--features", "size,kind", *FAST, *out]) == 2
    assert "pets.csv has missing values, empty or NaN, in column size (1), first at row 7 (counting from 0)" in capsys.readouterr().err
    assert main(["train", str(pets), "--target", "price", "--features", "size,kind", "--missing", "drop", "--name", "d", *FAST, *out]) == 0
    assert "dropped 1 of 240 rows with missing values in size" in capsys.readouterr().out
    summary = json.loads((tmp_path / "runs" / "d" / "summary.json").read_text())
    assert summary["n_train"] + summary["n_val"] + summary["n_test"] == 239
    assert main(["train", str(pets), "--target", "price", "--features", "size,kind", "--missing", "mean", "--name", "m", *FAST, *out]) == 0
    assert "missing feature values are filled with training-split means (size)" in capsys.readouterr().out
    stored = json.loads((tmp_path / "runs" / "m" / "preprocessing.json").read_text())
    assert stored["missing"] == "mean" and stored["standardizer"]["fill"][0] == pytest.approx(stored["standardizer"]["mean"][0])
    assert stored["layout"] == [{"name": "size", "kind": "numeric"},
                                {"name": "kind", "kind": "categorical", "categories": ["cat", "dog", "fish", "kiwi"]}]
    assert json.loads((tmp_path / "runs" / "m" / "summary.json").read_text())["test_r2"] > 0.9


def test_predict_counts_unseen_categories_in_one_warning_and_fills_missing_values(pets, tmp_path, capsys):
    assert main(["train", str(pets), "--target", "price", "--features", "kind,size", "--missing", "mean", "--model", "linear",
                 "--name", "m", "--out", str(tmp_path / "runs"), *FAST]) == 0
    new = write_rows(tmp_path / "new.csv", ["price", "size", "id", "kind"],  # another column order, and an extra column
                     [[0, 2.0, "a", "cat"], [0, 2.0, "b", "horse"], [0, "", "c", "dog"], [0, 3.0, "d", "emu"], [0, 3.0, "e", ""]])
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "runs" / "m"), str(new), "--out", str(tmp_path / "p.csv"), "--keep", "id"]) == 0
    err = unwrapped(capsys.readouterr().err).strip().splitlines()
    assert err == ["warning: 2 values of new.csv are categories the run never saw in training (kind: 2); they were encoded as all zeros"]
    rows = read_csv(tmp_path / "p.csv")
    assert [row["id"] for row in rows] == ["a", "b", "c", "d", "e"]
    run = riskmin.Run.load(tmp_path / "runs" / "m")
    mean_size = run.preprocessing.fill[-1].item()
    nan = float("nan")
    expected = riskmin.predict(run, torch.tensor([[1, 0, 0, 0, 2.0], [0, 0, 0, 0, 2.0], [0, 1, 0, 0, nan], [0, 0, 0, 0, 3.0], [0, 0, 0, 0, 3.0]]))
    # written with a float32's digits, read back as a float32, the very values
    assert torch.equal(torch.tensor([float(row["predicted_price"]) for row in rows], dtype=torch.float32), expected[:, 0])
    filled = riskmin.predict(run, torch.tensor([[0, 1, 0, 0, mean_size]]))
    assert float(rows[2]["predicted_price"]) == pytest.approx(filled.item(), abs=1e-5)


def test_a_run_without_missing_mean_refuses_rows_with_holes_at_prediction(pets, tmp_path, capsys):
    assert main(["train", str(pets), "--target", "price", "--features", "kind,size", "--missing", "drop", "--name", "d",
                 "--out", str(tmp_path / "runs"), *FAST]) == 0
    new = write_rows(tmp_path / "new.csv", ["size", "kind"], [[2.0, "cat"], ["", "dog"]])
    assert main(["predict", str(tmp_path / "runs" / "d"), str(new), "--out", str(tmp_path / "q.csv")]) == 2
    assert "column size of new.csv has missing values, first at row 1 (counting from 0); fill them" in capsys.readouterr().err
    assert not (tmp_path / "p.csv").exists()


@pytest.fixture
def flowers(tmp_path):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((300, 2))
    names = np.array(["setosa", "versicolor", "virginica"])
    label = names[(x[:, 0] > 0).astype(int) + (x[:, 1] > 0.5).astype(int)]
    return write_rows(tmp_path / "flowers.csv", ["a", "b", "species", "const"], [[f"{p:.5f}", f"{q:.5f}", k, 1] for (p, q), k in zip(x, label)])


def test_a_text_target_is_classification_with_its_class_names_printed_stored_and_predicted(flowers, tmp_path, capsys):
    assert main(["train", str(flowers), "--target", "species", "--features", "a,b", "--name", "f", "--out", str(tmp_path / "runs"), *FAST]) == 0
    out = unwrapped(capsys.readouterr().out)
    # no --task regression offered: text cannot be regressed on
    assert ("task: classification (guessed): species has 3 classes (setosa, versicolor, virginica); text values are class "
            "names\n") in out
    run_dir = tmp_path / "runs" / "f"
    stored = json.loads((run_dir / "preprocessing.json").read_text())
    assert stored["classes"] == ["setosa", "versicolor", "virginica"] and stored["task"] == "classification"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["test_accuracy"] > 0.9 and {"test_f1", "test_log_loss"} <= set(summary)
    assert main(["predict", str(run_dir), str(flowers), "--out", str(tmp_path / "p.csv")]) == 0
    rows = read_csv(tmp_path / "p.csv")
    assert list(rows[0]) == ["predicted_species", "probability_setosa", "probability_versicolor", "probability_virginica"]
    assert all(row["predicted_species"] == max(("setosa", "versicolor", "virginica"), key=lambda k: float(row[f"probability_{k}"])) for row in rows)
    truth = [row["species"] for row in read_csv(flowers)]
    accuracy = np.mean([row["predicted_species"] == t for row, t in zip(rows, truth)])
    capsys.readouterr()
    assert main(["evaluate", str(run_dir), str(flowers)]) == 0
    reported = dict(line.split() for line in capsys.readouterr().out.splitlines())
    assert float(reported["accuracy"]) == pytest.approx(accuracy, abs=1e-6)


def test_whole_number_targets_with_few_values_are_classes_and_task_overrides_the_guess(flowers, tmp_path):
    rows = read_csv(flowers)
    numbered = write_rows(tmp_path / "numbered.csv", ["a", "b", "label"],
                          [[r["a"], r["b"], ["setosa", "versicolor", "virginica"].index(r["species"])] for r in rows])
    guessed = riskmin.load(str(numbered), riskmin.Config(target="label"))
    assert guessed.task == "classification" and guessed.classes == [0, 1, 2] and guessed.y.dtype == torch.long
    asked = riskmin.load(str(numbered), riskmin.Config(target="label", task="regression"))
    assert asked.task == "regression" and asked.y.dtype == torch.float32
    assert asked.notes[0] == "task: regression (as asked) on label"  # asked for: no other task offered
    with_mse = riskmin.load(str(numbered), riskmin.Config(target="label", loss="mse"))
    assert with_mse.task == "regression"  # asking for a regression loss settles the guess


def test_bce_on_a_yes_no_target_predicts_its_class_names(tmp_path):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((200, 2))
    answer = np.where(x[:, 0] + x[:, 1] > 0, "yes", "no")
    path = write_rows(tmp_path / "yn.csv", ["a", "b", "answer"], [[f"{p:.5f}", f"{q:.5f}", k] for (p, q), k in zip(x, answer)])
    assert main(["train", str(path), "--target", "answer", "--loss", "bce", "--name", "b", "--out", str(tmp_path / "runs"), *FAST]) == 0
    assert main(["predict", str(tmp_path / "runs" / "b"), str(path), "--out", str(tmp_path / "p.csv")]) == 0
    rows = read_csv(tmp_path / "p.csv")
    assert list(rows[0]) == ["predicted_answer", "probability_no", "probability_yes"]
    assert np.mean([row["predicted_answer"] == k for row, k in zip(rows, answer)]) > 0.9
    assert all(abs(float(r["probability_no"]) + float(r["probability_yes"]) - 1) < 1e-6 for r in rows)


def test_a_constant_feature_is_reported(flowers, tmp_path, capsys):
    assert main(["train", str(flowers), "--target", "species", "--out", str(tmp_path / "runs"), *FAST]) == 0
    assert "warning: feature columns const are constant on the training split; they carry no information" in unwrapped(capsys.readouterr().err)


def test_target_may_be_repeated(tmp_path):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((100, 3))
    path = write_rows(tmp_path / "two.csv", ["a", "b", "c"], x.round(5).tolist())
    assert main(["train", str(path), "--target", "b", "--target", "c", "--name", "t", "--out", str(tmp_path / "runs"), *FAST]) == 0
    assert json.loads((tmp_path / "runs" / "t" / "preprocessing.json").read_text())["targets"] == ["b", "c"]


def test_montecarlo_fills_and_encodes_per_run_and_vectorized_equals_sequential(pets):
    data = riskmin.load(str(pets), riskmin.Config(target="price", features="size,kind", missing="mean"))
    settings = dict(runs=3, epochs=5, batch_size=16, patience=3, progress=False)
    vectorized = montecarlo("linear", data, engine="vectorized", **settings)
    sequential = montecarlo("linear", data, engine="sequential", **settings)
    for a, b in zip(vectorized.table, sequential.table):
        assert a["test_loss"] == pytest.approx(b["test_loss"], rel=1e-5)
        assert a["best_epoch"] == b["best_epoch"]


def test_row_identifiers_are_left_out_with_one_note_and_kept_when_named(tmp_path):
    rng = np.random.default_rng(5)
    rows = [[i + 1, f"c{rng.integers(10**9)}", 1990 + i, f"{v:.5f}", f"{2 * v:.5f}"] for i, v in enumerate(rng.standard_normal(40))]
    path = write_rows(tmp_path / "ids.csv", ["row", "customer", "year", "x", "y"], rows)
    data = riskmin.load(str(path), riskmin.Config(target="y"))
    assert data.feature_names == ["year", "x"]  # a year column past the first is a feature, though its values are distinct
    assert data.notes[1:] == ["left out of the features as row identifiers: row (named like one), customer (a different text in almost "
                              "every row); name a column in features= to keep it"]
    assert riskmin.load(str(path), riskmin.Config(target="y", features="row,x")).feature_names == ["row", "x"]
    numbered = write_rows(tmp_path / "numbered.csv", ["n", "x", "y"], [[i, r[3], r[4]] for i, r in enumerate(rows)])
    assert riskmin.load(str(numbered), riskmin.Config(target="y")).notes[1] == (
        "left out of the features as row identifiers: n (row numbers); name a column in features= to keep it")
    for name in ("id", "ID", "Id", "house_id", "PassengerId", "customerID", "uuid", "index", "row_number", "Unnamed: 0", ""):
        named = write_rows(tmp_path / "named.csv", [name, "x", "y"], [[k % 3, r[3], r[4]] for k, r in enumerate(rows)])
        assert riskmin.load(str(named), riskmin.Config(target="y")).feature_names == ["x"], name
    for name in ("paid", "valid", "acid", "kidney", "width"):  # words that end in "id" are not identifiers
        named = write_rows(tmp_path / "named.csv", [name, "x", "y"], [[k % 3, r[3], r[4]] for k, r in enumerate(rows)])
        assert riskmin.load(str(named), riskmin.Config(target="y")).feature_names == [name, "x"], name


def test_a_lone_feature_is_kept_even_when_it_looks_like_row_numbers(tmp_path):
    path = write_rows(tmp_path / "line.csv", ["x", "y"], [[i, 1 + 2 * i] for i in range(50)])
    data = riskmin.load(str(path), riskmin.Config(target="y"))
    assert data.feature_names == ["x"] and data.task == "regression"


def test_houses_with_an_id_train_without_it_and_predict_keeps_it(tmp_path, capsys):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((120, 2))
    rows = [[1000 + i, f"{a:.5f}", f"{b:.5f}", f"{3 * a - b + 5:.5f}"] for i, (a, b) in enumerate(x)]
    houses = write_rows(tmp_path / "houses.csv", ["id", "size", "age", "price"], rows)
    assert main(["train", str(houses), "--target", "price", "--name", "h", "--out", str(tmp_path / "runs"), *FAST]) == 0
    assert "left out of the features as row identifiers: id (named like one); name a column in --features to keep it" in unwrapped(capsys.readouterr().out)
    assert json.loads((tmp_path / "runs" / "h" / "preprocessing.json").read_text())["features"] == ["size", "age"]
    assert main(["predict", str(tmp_path / "runs" / "h"), str(houses), "--out", str(tmp_path / "p.csv"), "--keep", "id"]) == 0
    assert [row["id"] for row in read_csv(tmp_path / "p.csv")] == [str(1000 + i) for i in range(120)]


def test_a_text_column_with_many_categories_keeps_the_most_frequent_and_an_other_input(tmp_path, capsys):
    rng = np.random.default_rng(7)
    towns = [f"t{min(int(rng.zipf(1.5)), 400):03d}" for _ in range(1000)]
    rows = [[town, f"{v:.4f}", f"{v + (town == 't001'):.4f}"] for town, v in zip(towns, rng.standard_normal(1000))]
    path = write_rows(tmp_path / "towns.csv", ["town", "x", "y"], rows)
    data = riskmin.load(str(path), riskmin.Config(target="y"))
    counts = {t: towns.count(t) for t in set(towns)}
    frequent = sorted(sorted(counts, key=lambda t: (-counts[t], t))[:49])
    assert data.layout[0] == {"name": "town", "kind": "categorical", "categories": [*frequent, "(other)"], "other": True}
    assert data.n_features == 51 and data.feature_names[49] == "town=(other)"
    rare = next(i for i, t in enumerate(towns) if t not in frequent)
    assert data.x[rare, :50].tolist() == [0.0] * 49 + [1.0]
    assert data.notes[-1] == (f"column town has {len(counts)} categories, more than the 50 inputs a text column may become (at most 50, "
                              f"and 10% of the rows): its 49 most frequent each get an input and the other {len(counts) - 49} "
                              f"({sum(counts[t] for t in counts if t not in frequent)} rows) share town=(other)")
    small = write_rows(tmp_path / "small.csv", ["town", "x", "y"], rows[:150])  # 10% of 150 rows would be 15 inputs
    assert len(riskmin.load(str(small), riskmin.Config(target="y")).layout[0]["categories"]) == 15
    assert main(["train", str(path), "--target", "y", "--name", "t", "--out", str(tmp_path / "runs"), *FAST]) == 0
    new = write_rows(tmp_path / "new.csv", ["town", "x"], [["t001", 0.5], ["never-seen", 0.5], [towns[rare], 0.5]])
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "runs" / "t"), str(new), "--out", str(tmp_path / "p.csv")]) == 0
    assert capsys.readouterr().err == ""  # a town past the bound is (other), not an unseen category
    predicted = [float(row["predicted_y"]) for row in read_csv(tmp_path / "p.csv")]
    assert predicted[1] == predicted[2]


TARGETS = [  # values of the target column -> task, classes, the rule the note states
    ([3, 4, 5, 5, 6, 6, 6, 7, 8] * 4, "regression", None, "6 distinct whole numbers, 3..8, are scores or counts, not class codes"),
    ([1, 2, 3, 4, 5] * 8, "regression", None, "5 distinct whole numbers, 1..5, are scores or counts, not class codes"),
    ([-1, 0, 1] * 12, "classification", [-1, 0, 1], "3 distinct whole numbers are class labels"),
    ([0, 1] * 18, "classification", [0, 1], "2 distinct whole numbers are class labels"),
    (["1.0", "0.0"] * 18, "classification", [0, 1], "2 distinct whole numbers are class labels"),
    (list(range(10)) * 4, "classification", list(range(10)), "whole numbers 0..9 are class codes"),
    ([k * 7 for k in range(40)], "regression", None, "40 distinct whole numbers, 0..273, are scores or counts, not class codes"),
    (["true", "false"] * 18, "classification", [False, True], "true/false values are two classes"),
    (["0.5", "1.25", "2"] * 12, "regression", None, "its values are real numbers"),
]


@pytest.mark.parametrize("values, task, classes, rule", TARGETS, ids=[rule[:30] + str(v[0]) for v, _, _, rule in TARGETS])
def test_the_task_guess_follows_one_stated_rule(tmp_path, values, task, classes, rule):
    path = write_rows(tmp_path / "t.csv", ["x", "target"], [[i % 7, v] for i, v in enumerate(values)])
    data = riskmin.load(str(path), riskmin.Config(target="target"))
    assert (data.task, data.classes) == (task, classes)
    other = "regression" if task == "classification" else "classification"
    # the other task is offered where either can take the values (true/false regress as 1 and 0); text is no number
    # and a fraction no class label
    hint = "" if rule in ("text values are class names", "its values are real numbers") else f'; override with task="{other}"'
    assert data.notes[0].startswith(f"task: {task} (guessed)") and data.notes[0].endswith(f"; {rule}{hint}")
    if classes:
        assert data.y.tolist() == [[str(c).lower() for c in classes].index(str(v).replace(".0", "")) for v in values]


def test_scores_become_classes_when_asked_and_minus_one_zero_one_labels_train_and_predict(tmp_path):
    quality = write_rows(tmp_path / "quality.csv", ["x", "quality"], [[i % 5, 3 + i % 6] for i in range(60)])
    asked = riskmin.load(str(quality), riskmin.Config(target="quality", task="classification"))
    assert asked.classes == [3, 4, 5, 6, 7, 8] and asked.y.tolist()[:6] == [0, 1, 2, 3, 4, 5]
    rng = np.random.default_rng(8)
    x = rng.standard_normal(300)
    signs = write_rows(tmp_path / "signs.csv", ["x", "sign"], [[f"{v:.4f}", -1 if v < -0.4 else 1 if v > 0.4 else 0] for v in x])
    assert main(["train", str(signs), "--target", "sign", "--name", "s", "--out", str(tmp_path / "runs"), *FAST]) == 0
    assert main(["predict", str(tmp_path / "runs" / "s"), str(signs), "--out", str(tmp_path / "p.csv")]) == 0
    rows = read_csv(tmp_path / "p.csv")
    assert list(rows[0]) == ["predicted_sign", "probability_-1", "probability_0", "probability_1"]
    assert {row["predicted_sign"] for row in rows} == {"-1", "0", "1"}


def numbers_with_holes(tmp_path, rows=30_000):
    """A 30,000-row file whose column x holds '?' three times and '-' once among its numbers."""
    x = np.round(np.random.default_rng(9).standard_normal(rows), 4)
    lines = ["x,z,y", *(f"{v},{i % 4},{2 * v}" for i, v in enumerate(x))]
    for row, text in ((100, "?"), (20_000, "-"), (25_000, "?"), (29_999, "?")):
        lines[row + 1] = f"{text},1,0"
    (tmp_path / "holes.csv").write_text("\n".join(lines) + "\n")
    return tmp_path / "holes.csv"


def test_a_few_text_cells_in_a_number_column_are_missing_values_not_categories(tmp_path, capsys):
    path = numbers_with_holes(tmp_path)
    with pytest.raises(riskmin.RiskminError) as error:
        riskmin.load(str(path), riskmin.Config(target="y"))
    assert str(error.value) == ("holes.csv has missing values, empty or NaN, in column x (4), first at rows 100, 20000, 25000, 29999 (counting from 0); "
                                "x holds text in 4 number cells ('?', '-'), taken as missing; pass missing=\"drop\" to drop those rows "
                                "or missing=\"mean\" to fill features with training-split means")  # Python's words
    dropped = riskmin.load(str(path), riskmin.Config(target="y", missing="drop"))
    assert dropped.feature_names == ["x", "z"] and len(dropped) == 29_996
    assert dropped.notes[1:] == ["column x holds numbers but for 4 cells, taken as missing values: '?' at row 100, '-' at row 20000, "
                                 "'?' at row 25000, '?' at row 29999 (rows counting from 0)", "dropped 4 of 30000 rows with missing values in x"]
    filled = riskmin.load(str(path), riskmin.Config(target="y", missing="mean"))
    assert filled.n_features == 2 and torch.isnan(filled.x[[100, 20_000], 0]).all() and not torch.isnan(filled.x[:100]).any()
    mostly_text = write_rows(tmp_path / "text.csv", ["x", "y"], [["?" if i % 5 == 0 else i, i] for i in range(100)])
    assert riskmin.load(str(mostly_text), riskmin.Config(target="y", features="x")).layout[0]["kind"] == "categorical"  # 20% text


def test_predict_takes_text_cells_of_a_number_column_as_missing(pets, tmp_path, capsys):
    assert main(["train", str(pets), "--target", "price", "--features", "kind,size", "--missing", "mean", "--name", "m",
                 "--out", str(tmp_path / "runs"), *FAST]) == 0
    new = write_rows(tmp_path / "new.csv", ["size", "kind"], [[2.0, "cat"], ["?", "dog"]])
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "runs" / "m"), str(new), "--out", str(tmp_path / "p.csv")]) == 0
    assert unwrapped(capsys.readouterr().err) == "note: column size holds numbers but for 1 cell, taken as missing values: '?' at row 1 (rows counting from 0)\n"
    assert main(["train", str(pets), "--target", "price", "--features", "kind,size", "--missing", "drop", "--name", "d",
                 "--out", str(tmp_path / "runs"), *FAST]) == 0
    assert main(["predict", str(tmp_path / "runs" / "d"), str(new), "--out", str(tmp_path / "q.csv")]) == 2
    assert "column size of new.csv has missing values, first at row 1 (counting from 0); fill them" in capsys.readouterr().err


def test_dates_and_timestamps_become_seconds_since_1970_and_other_date_forms_are_refused(tmp_path):
    path = write_rows(tmp_path / "dates.csv", ["day", "when", "y"],
                      [["2020-01-02", "2020-01-02 10:00:00", 1.5], ["2020-01-03", "2020-01-03 10:00:30", 2.5], ["1970-01-02", "1970-01-01 00:01:00", 0.5]])
    data = riskmin.load(str(path), riskmin.Config(target="y"))
    assert data.feature_names == ["day", "when"] and data.layout == [{"name": "day", "kind": "numeric", "unit": "seconds since 1970-01-01 UTC"},
                                                                   {"name": "when", "kind": "numeric", "unit": "seconds since 1970-01-01 UTC"}]
    assert data.x[2].tolist() == [86400.0, 60.0] and data.x[0, 0].item() == pytest.approx(1577923200, rel=1e-7)
    assert data.notes[1] == "column day holds date32[day] values; they become seconds since 1970-01-01 UTC"
    run = riskmin.fit("linear", str(path), target="y", epochs=1, val=0, test=0, progress=False)
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        riskmin.predict(run, str(path))  # the run knows its dates are seconds: said in training, not at every predict
    assert not [w for w in said if "they become seconds" in str(w.message)]
    numbers = write_rows(tmp_path / "numbers.csv", ["day", "when", "y"], [[1.5, 2.0, 1.5], [2.5, 3.0, 2.5], [0.5, 1.0, 0.5]])
    run = riskmin.fit("linear", str(numbers), target="y", epochs=1, val=0, test=0, progress=False)
    with pytest.warns(riskmin.RiskminNote, match="column day holds date32"):  # dates where the run read numbers: said
        riskmin.predict(run, str(path))
    zoned = write_rows(tmp_path / "zoned.csv", ["when", "y"], [["2020-01-02T10:00:00+01:00", 1.5], ["1970-01-01 00:01:00Z", 2.5]])
    assert riskmin.load(str(zoned), riskmin.Config(target="y")).x[:, 0].tolist() == [float(np.float32(1577955600)), 60.0]  # float32: 128 s apart
    slashed = write_rows(tmp_path / "slashed.csv", ["day", "y"], [["03/04/2021", 1.5], ["04/04/2021", 2.5]])
    with pytest.raises(riskmin.RiskminError, match=r"column day of slashed.csv holds dates such as '03/04/2021' at row 0 \(counting from 0\), which riskmin reads "
                                                   r"only in ISO 8601 form \(2021-04-03 or 2021-04-03 10:00:00\); rewrite them"):
        riskmin.load(str(slashed), riskmin.Config(target="y"))
    # one date of another form among many: the first was quoted, ISO and good, and the bad one was not named
    days = [f"2021-01-{d:02d}" for d in range(1, 29)]
    for cell, said in [("2021/01/06", r"holds dates such as '2021/01/06' at row 5 \(counting from 0\), which riskmin reads only in ISO"),
                       ("2021-13-06", r"holds dates such as '2021-13-06' at row 5 \(counting from 0\), which riskmin reads only in ISO"),
                       ("2021-01-06T10:00:00+02:00", r"holds dates with a time zone, such as '2021-01-06T10:00:00\+02:00' at row 5 "
                                                     r"\(counting from 0\), and dates without one, such as '2021-01-01' at row 0 "
                                                     r"\(counting from 0\); give every date a time zone, or none")]:
        one = write_rows(tmp_path / "one.csv", ["day", "y"], [[cell if i == 5 else day, i % 3] for i, day in enumerate(days)])
        with pytest.raises(riskmin.RiskminError, match="^column day of one.csv " + said):
            riskmin.load(str(one), riskmin.Config(target="y"))
    # a word among dates that each have a time zone was called a date without one
    zoned = [f"{day}T10:00:00+02:00" for day in days]
    one = write_rows(tmp_path / "one.csv", ["day", "y"], [["unknown" if i == 7 else day, i % 3] for i, day in enumerate(zoned)])
    with pytest.raises(riskmin.RiskminError, match=r"^column day of one.csv holds dates such as 'unknown' at row 7 \(counting from 0\), which"):
        riskmin.load(str(one), riskmin.Config(target="y"))
    one = write_rows(tmp_path / "one.csv", ["day", "y"], [["2021-02-30T10:00:00+02:00" if i == 27 else day, i % 3] for i, day in enumerate(zoned)])
    with pytest.raises(riskmin.RiskminError, match=r"^column day of one.csv holds dates such as '2021-02-30T10:00:00\+02:00' at row 27 "):
        riskmin.load(str(one), riskmin.Config(target="y"))


def test_missing_mean_says_numbers_get_means_and_empty_text_cells_no_category(tmp_path):
    path = write_rows(tmp_path / "gaps.csv", ["size", "kind", "y"], [["" if i == 3 else i % 7, "" if i == 5 else "ab"[i % 2], i] for i in range(30)])
    data = riskmin.load(str(path), riskmin.Config(target="y", missing="mean"))
    assert data.notes[1:] == ["missing feature values are filled with training-split means (size); "
                              "empty text cells get no category, all their inputs 0 (kind)"]
    assert data.x[5, 1:].tolist() == [0.0, 0.0] and torch.isnan(data.x[3, 0])


def test_missing_mean_fills_a_hole_in_new_rows_when_the_training_rows_had_none():
    x = torch.randn(60, 2, generator=torch.Generator().manual_seed(1))
    run = riskmin.fit("linear", riskmin.Data(x, x.sum(1, keepdim=True), missing="mean"), epochs=2, progress=False)
    holed = torch.tensor([[float("nan"), 0.5]])
    filled = torch.tensor([[float(run.preprocessing.fill[0]), 0.5]])  # the training mean of the first column
    assert torch.equal(riskmin.predict(run, holed), riskmin.predict(run, filled))
