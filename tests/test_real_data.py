"""Real data sets that scikit-learn ships inside its package, written out as CSV and trained through the command line.

On the same split: linear regression reaches the closed-form least-squares test MSE, logistic
regression reaches scikit-learn's LogisticRegression accuracy, and `predict` on the test rows
reproduces what `evaluate` reports. The metrics themselves are checked against scikit-learn's.
"""

import contextlib
import csv
import io
import json

import numpy as np
import pytest
import torch

sklearn_datasets = pytest.importorskip("sklearn.datasets")
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn import metrics  # noqa: E402

import riskmin  # noqa: E402
from riskmin._cli._main import main  # noqa: E402
from riskmin.metrics import finish_metrics, metric_sums  # noqa: E402
from said import unwrapped  # noqa: E402

VAL, TEST = 0.2, 0.4  # large test splits, so one row is a small step of accuracy


def to_csv(path, bunch, labels=None):
    """The data set as CSV; `labels` turns class numbers into text class names."""
    names = [str(name).replace(" ", "_") for name in bunch.feature_names] if hasattr(bunch, "feature_names") else None
    names = names or [f"pixel{i}" for i in range(bunch.data.shape[1])]
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow([*names, "target"])
        for row, target in zip(bunch.data, bunch.target):
            writer.writerow([*(repr(float(v)) for v in row), labels[target] if labels is not None else target])
    return path


def cli(*args) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(list(args)) == 0
    return out.getvalue()


def split_of(n):
    return riskmin.split(riskmin.Data(torch.zeros(n, 1), torch.zeros(n, 1)), val=VAL, test=TEST, seed=0)


def read_predictions(path):
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


def test_linear_regression_on_diabetes_reaches_least_squares_and_predict_matches_evaluate(tmp_path):
    bunch = sklearn_datasets.load_diabetes()
    path = to_csv(tmp_path / "diabetes.csv", bunch)
    cli("train", str(path), "--target", "target", "--model", "linear", "--loss", "mse", "--optimizer", "adam", "--lr", "1.0",
        "--batch-size", "0", "--epochs", "1500", "--restore-best", "off", "--val", str(VAL), "--test", str(TEST),
        "--progress", "off", "--out", str(tmp_path / "runs"), "--name", "d")
    summary = json.loads((tmp_path / "runs" / "d" / "summary.json").read_text())
    assert summary["test_mse"] == pytest.approx(summary["closed_form_test_loss"], rel=0.01)
    # the closed form itself, solved here with NumPy on the same split
    split = split_of(len(bunch.target))
    x, y = bunch.data, bunch.target.astype(np.float32)
    design = np.column_stack([x[split.train], np.ones(len(split.train))])
    solution = np.linalg.lstsq(design, y[split.train], rcond=None)[0]
    reference = np.mean((np.column_stack([x[split.test], np.ones(len(split.test))]) @ solution - y[split.test]) ** 2)
    assert summary["test_mse"] == pytest.approx(reference, rel=0.01)
    assert_predict_reproduces_evaluate(tmp_path, path, split, "d", regression=True)


CLASSIFIERS = {
    "breast_cancer": (sklearn_datasets.load_breast_cancer, None),
    "iris": (sklearn_datasets.load_iris, ["setosa", "versicolor", "virginica"]),  # text labels
    "wine": (sklearn_datasets.load_wine, None),
    "digits": (sklearn_datasets.load_digits, None),
}


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_logistic_regression_is_within_two_points_of_scikit_learn_and_predict_matches_evaluate(tmp_path, name):
    loader, labels = CLASSIFIERS[name]
    bunch = loader()
    path = to_csv(tmp_path / f"{name}.csv", bunch, labels)
    out = cli("train", str(path), "--target", "target", "--model", "linear", "--optimizer", "adam", "--lr", "0.01",
              "--batch-size", "32", "--epochs", "200", "--patience", "20", "--val", str(VAL), "--test", str(TEST),
              "--progress", "off", "--out", str(tmp_path / "runs"), "--name", name)
    assert "task: classification (guessed): target has " in out
    summary = json.loads((tmp_path / "runs" / name / "summary.json").read_text())
    split = split_of(len(bunch.target))
    x = bunch.data
    mean, std = x[split.train].mean(0), x[split.train].std(0)
    std[std == 0] = 1
    reference = LogisticRegression(max_iter=5000).fit((x[split.train] - mean) / std, bunch.target[split.train])
    theirs = reference.score((x[split.test] - mean) / std, bunch.target[split.test])
    assert abs(summary["test_accuracy"] - theirs) <= 0.02, (summary["test_accuracy"], theirs)
    assert_predict_reproduces_evaluate(tmp_path, path, split, name, regression=False)


def assert_predict_reproduces_evaluate(tmp_path, path, split, run_name, regression):
    """Metrics worked out from `predict`'s file equal what `evaluate` prints for the same rows."""
    with open(path, newline="") as file:
        rows = list(csv.reader(file))
    test_rows = tmp_path / "test_rows.csv"
    with open(test_rows, "w", newline="") as file:
        csv.writer(file).writerows([rows[0], *(rows[1 + i] for i in split.test.tolist())])
    run_dir = str(tmp_path / "runs" / run_name)
    cli("predict", run_dir, str(test_rows), "--out", str(tmp_path / "p.csv"))
    reported = {name: value for name, value in (line.split() for line in cli("evaluate", run_dir, str(test_rows)).splitlines())}
    predicted = read_predictions(tmp_path / "p.csv")
    truth = [row[-1] for row in rows[1:]]
    truth = [truth[i] for i in split.test.tolist()]
    if regression:
        y = np.array(truth, dtype=np.float32).astype(np.float64)
        guess = np.array([float(r["predicted_target"]) for r in predicted])
        ours = {"mse": np.mean((guess - y) ** 2), "mae": np.mean(np.abs(guess - y)), "r2": metrics.r2_score(y, guess)}
        ours["rmse"] = np.sqrt(ours["mse"])
    else:
        guess = [r["predicted_target"] for r in predicted]
        classes = [name[len("probability_"):] for name in predicted[0] if name.startswith("probability_")]
        probabilities = np.array([[float(r[f"probability_{c}"]) for c in classes] for r in predicted])
        probabilities /= probabilities.sum(1, keepdims=True)  # float32 softmax values, summing to 1 within rounding
        ours = {"accuracy": metrics.accuracy_score(truth, guess), "f1": metrics.f1_score(truth, guess, average="macro"),
                "log_loss": metrics.log_loss(truth, probabilities, labels=classes)}
    for key, value in ours.items():
        assert reported[key] == f"{value:.6g}" or float(reported[key]) == pytest.approx(value, rel=1e-5, abs=1e-9), key


def test_metrics_match_scikit_learn():
    generator = torch.Generator().manual_seed(0)
    output, y = torch.randn(500, 3, generator=generator), torch.randn(500, 3, generator=generator)
    ours = finish_metrics("mse", {"loss": torch.nn.functional.mse_loss(output, y) * 500, **metric_sums("mse", output, y)}, 500)
    o, t = output.double().numpy(), y.double().numpy()
    # riskmin forms the errors in float32, as the model outputs them, then sums in float64
    assert ours["mse"] == pytest.approx(metrics.mean_squared_error(t, o), rel=1e-7)
    assert ours["mae"] == pytest.approx(metrics.mean_absolute_error(t, o), rel=1e-7)
    assert ours["r2"] == pytest.approx(metrics.r2_score(t, o), rel=1e-7)
    logits, labels = torch.randn(500, 4, generator=generator), torch.randint(0, 4, (500,), generator=generator)
    labels[labels == 3] = 2  # a class no row has: macro F1 counts only classes that occur
    ours = finish_metrics("cross_entropy", {"loss": torch.tensor(0.0), **metric_sums("cross_entropy", logits, labels)}, 500)
    predicted = logits.argmax(1).numpy()
    assert ours["accuracy"] == pytest.approx(metrics.accuracy_score(labels, predicted), abs=1e-15)
    assert ours["f1"] == pytest.approx(metrics.f1_score(labels, predicted, average="macro"), rel=1e-12)
    assert ours["log_loss"] == pytest.approx(metrics.log_loss(labels, torch.softmax(logits.double(), 1).numpy(), labels=range(4)), rel=1e-9)
    yes = torch.randn(500, 1, generator=generator)
    answers = (torch.rand(500, 1, generator=generator) > 0.4).float()
    ours = finish_metrics("bce", {"loss": torch.tensor(0.0), **metric_sums("bce", yes, answers)}, 500)
    assert ours["f1"] == pytest.approx(metrics.f1_score(answers[:, 0], (yes[:, 0] > 0).float(), average="macro"), rel=1e-12)
    assert ours["log_loss"] == pytest.approx(metrics.log_loss(answers[:, 0], torch.sigmoid(yes[:, 0].double())), rel=1e-9)


GUESSES = {  # data set -> the task and the rule a careful person would also pick
    "diabetes": ("regression", "214 distinct whole numbers, 25..346, are scores or counts, not class codes"),
    "wine": ("classification", "3 distinct whole numbers are class labels"),
    "breast_cancer": ("classification", "2 distinct whole numbers are class labels"),
    "iris": ("classification", "text values are class names"),
    "digits": ("classification", "whole numbers 0..9 are class codes"),
}


@pytest.mark.parametrize("name", GUESSES)
def test_bundled_tables_written_with_their_index_get_the_task_and_columns_a_careful_person_picks(tmp_path, name):
    """Written as pandas' DataFrame.to_csv writes them: a first column without a name holding the row numbers."""
    bunch = getattr(sklearn_datasets, f"load_{name}")()
    names = [str(n).replace(" ", "_") for n in bunch.feature_names] if hasattr(bunch, "feature_names") else []
    labels = bunch.target_names[bunch.target] if name == "iris" else bunch.target.astype(int)
    with open(tmp_path / f"{name}.csv", "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["", *names, "target"])
        writer.writerows([i, *(repr(float(v)) for v in row), label] for i, (row, label) in enumerate(zip(bunch.data, labels)))
    data = riskmin.load(str(tmp_path / f"{name}.csv"), riskmin.Config(target="target"))
    task, rule = GUESSES[name]
    hint = "" if name == "iris" else "; override with task="  # text class names cannot be regressed on
    assert data.task == task and data.notes[0].startswith(f"task: {task} (guessed)") and f"; {rule}{hint}" in data.notes[0]
    assert data.feature_names == names and data.x.shape == bunch.data.shape  # every measurement, and not the index
    assert data.notes[1] == "left out of the features as row identifiers: '' (no name: an index written with the table); name a column in features= to keep it"
    trailing = tmp_path / f"{name}-trailing.csv"  # each line ends in a comma: a last column with no name and no value
    trailing.write_text("".join(line.removeprefix(line.split(",")[0] + ",") + ",\n" for line in (tmp_path / f"{name}.csv").read_text().splitlines()))
    again = riskmin.load(str(trailing), riskmin.Config(target="target"))
    assert again.feature_names == names and torch.equal(again.x, data.x)
    assert again.notes[1] == "left out of the features as row identifiers: '' (no name and no value: a separator ends every line); name a column in features= to keep it"
    if task == "classification":
        assert data.classes == (list(bunch.target_names) if name == "iris" else list(range(len(bunch.target_names))))


def test_defaults_on_diabetes_reach_least_squares_because_the_target_is_standardized():
    """A target around 150: with the default settings alone, the linear model's test MSE is as good as the closed-form
    fit's (the validation-chosen epoch may do slightly better); trained on the raw target, the same run is far off."""
    bunch = sklearn_datasets.load_diabetes()
    data = riskmin.Data(torch.tensor(bunch.data, dtype=torch.float32), torch.tensor(bunch.target, dtype=torch.float32)[:, None])
    run = riskmin.fit("linear", data, progress=False)
    assert run.preprocessing.target.mean.item() == pytest.approx(float(bunch.target[riskmin.split(data).train].mean()), rel=1e-5)
    assert run.summary["test_mse"] <= 1.01 * run.summary["closed_form_test_loss"]
    assert run.summary["train_mse"] <= 1.05 * mse_of_least_squares_on_train(bunch, riskmin.split(data).train)
    raw = riskmin.fit("linear", data, standardize_target=False, progress=False)
    assert raw.summary["test_mse"] > 3 * raw.summary["closed_form_test_loss"]
    # predictions come back in the target's units
    test = riskmin.split(data).test
    predicted = riskmin.predict(run, data.x[test])
    assert float(((predicted - data.y[test]) ** 2).mean()) == pytest.approx(run.summary["test_mse"], rel=1e-4)


def mse_of_least_squares_on_train(bunch, train):
    design = np.column_stack([bunch.data[train], np.ones(len(train))])
    solution = np.linalg.lstsq(design, bunch.target[train], rcond=None)[0]
    return float(np.mean((design @ solution - bunch.target[train]) ** 2))


def diabetes_with(tmp_path, value, row=2, name="d.csv"):
    """scikit-learn's diabetes table (whole-number target) with its target cell at `row` replaced by `value`."""
    bunch = sklearn_datasets.load_diabetes(scaled=False)
    target = bunch.target.astype(float)
    target[row] = value
    path = tmp_path / name
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow([*bunch.feature_names, "target"])
        writer.writerows([*(repr(float(v)) for v in features), repr(float(t))] for features, t in zip(bunch.data, target))
    return path


INFINITE_TARGET = ("y holds NaN or infinite values, first at row 2 (counting from 0), in column target; remove or fill "
                   "them (a number in a file beyond ±3.4e+38, the float32 range riskmin trains in, reads as infinite)")


@pytest.mark.parametrize("command, flags", [
    ("train", []),
    ("train", ["--task", "classification"]),  # class codes read every value as a number
    ("train", ["--task", "regression"]),
    ("train", ["--missing", "drop"]),
    ("train", ["--missing", "mean"]),
    ("montecarlo", ["--runs", "2"]),
])
@pytest.mark.parametrize("value", [np.inf, -np.inf])
def test_an_infinite_value_in_a_whole_number_target_is_refused_in_one_line_whatever_the_task(
        tmp_path, capsys, command, flags, value):
    """Whole numbers guess their task from their values, which an infinity made crash (int(inf)); it is refused as
    a regression target's is, before the guess."""
    path = diabetes_with(tmp_path, value)
    out = tmp_path / "runs"
    assert main([command, str(path), "--target", "target", "--model", "linear", "--epochs", "1", "--progress", "off",
                 "--out", str(out), *flags]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {INFINITE_TARGET}\n" and not out.exists()


@pytest.mark.parametrize("task", ["auto", "classification"])
def test_fit_refuses_an_infinite_whole_number_target_of_a_file_or_a_dataframe_with_the_same_message(tmp_path, task):
    path = diabetes_with(tmp_path, np.inf)
    with pytest.raises(riskmin.RiskminError) as error:
        riskmin.fit("linear", str(path), target="target", task=task, epochs=1, progress=False)
    assert str(error.value) == INFINITE_TARGET
    pd = pytest.importorskip("pandas")
    frame = pd.read_csv(path)
    frame.index = frame.index + 100  # a DataFrame's rows are named by its index
    with pytest.raises(riskmin.RiskminError) as error:
        riskmin.fit("linear", frame, target="target", task=task, epochs=1, progress=False)
    assert str(error.value) == INFINITE_TARGET.replace("row 2 (counting from 0)", "the row with index 102")


def test_a_nan_in_a_whole_number_target_is_a_missing_value_that_drop_and_mean_leave_out(tmp_path, capsys):
    path = diabetes_with(tmp_path, np.nan)
    flags = ["--target", "target", "--model", "linear", "--epochs", "1", "--progress", "off", "--out", str(tmp_path)]
    assert main(["train", str(path), *flags]) == 2
    assert "error: d.csv has missing values, empty or NaN, in column target (1), first at row 2 (counting from 0)" in (
        capsys.readouterr().err)
    for missing in ("drop", "mean"):  # a target is never filled: its row goes, and the whole numbers are scores still
        assert main(["train", str(path), *flags, "--missing", missing, "--name", missing]) == 0
        said = unwrapped(capsys.readouterr().out)
        assert "dropped 1 of 442 rows with missing values in target" in said
        assert "task: regression (guessed) on target; 214 distinct whole numbers" in said


def test_a_value_refused_after_rows_were_dropped_is_named_by_its_row_in_the_file(tmp_path, capsys):
    """--missing drop takes rows out; the row of an infinite value found afterwards is still the file's own."""
    path = diabetes_with(tmp_path, np.inf, row=5)
    lines = path.read_text().splitlines()
    lines[1] = ",".join(["", *lines[1].split(",")[1:]])  # row 0 misses its age: dropped
    path.write_text("\n".join(lines) + "\n")
    assert main(["train", str(path), "--target", "target", "--missing", "drop", "--task", "regression", "--epochs", "1",
                 "--progress", "off", "--out", str(tmp_path / "runs")]) == 2
    assert "first at row 5 (counting from 0), in column target" in capsys.readouterr().err
