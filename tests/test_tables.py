"""Real-world columns: text categories, missing values, the task guess, class names, and what predict writes."""

import csv
import json

import numpy as np
import pytest
import torch

import riskmin
from riskmin.cli import main
from riskmin.montecarlo import montecarlo

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
    assert "pets.csv has missing values, empty or NaN, in columns size (1), first at rows 7" in capsys.readouterr().err
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
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["warning: 2 values of new.csv are categories the run never saw in training (kind: 2); they were encoded as all zeros"]
    rows = read_csv(tmp_path / "p.csv")
    assert [row["id"] for row in rows] == ["a", "b", "c", "d", "e"]
    run = riskmin.Run.load(tmp_path / "runs" / "m")
    mean_size = run.preprocessing.fill[-1].item()
    nan = float("nan")
    expected = riskmin.predict(run, torch.tensor([[1, 0, 0, 0, 2.0], [0, 0, 0, 0, 2.0], [0, 1, 0, 0, nan], [0, 0, 0, 0, 3.0], [0, 0, 0, 0, 3.0]]))
    assert [float(row["predicted_price"]) for row in rows] == expected[:, 0].tolist()
    filled = riskmin.predict(run, torch.tensor([[0, 1, 0, 0, mean_size]]))
    assert float(rows[2]["predicted_price"]) == pytest.approx(filled.item(), abs=1e-5)


def test_a_run_without_missing_mean_refuses_rows_with_holes_at_prediction(pets, tmp_path, capsys):
    assert main(["train", str(pets), "--target", "price", "--features", "kind,size", "--missing", "drop", "--name", "d",
                 "--out", str(tmp_path / "runs"), *FAST]) == 0
    new = write_rows(tmp_path / "new.csv", ["size", "kind"], [[2.0, "cat"], ["", "dog"]])
    assert main(["predict", str(tmp_path / "runs" / "d"), str(new), "--out", str(tmp_path / "p.csv")]) == 2
    assert "column size of new.csv has missing values (first at rows 1); fill them" in capsys.readouterr().err
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
    out = capsys.readouterr().out
    assert ("task: classification (guessed: text values are class names): species has 3 classes (setosa, versicolor, virginica); "
            "override with --task regression") in out
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
    assert guessed.task == "classification" and guessed.classes == ["0", "1", "2"] and guessed.y.dtype == torch.long
    asked = riskmin.load(str(numbered), riskmin.Config(target="label", task="regression"))
    assert asked.task == "regression" and asked.y.dtype == torch.float32
    assert asked.notes[0] == "task: regression (as asked) on label; override with --task"
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
    assert "warning: feature columns const are constant on the training split; they carry no information" in capsys.readouterr().err


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
