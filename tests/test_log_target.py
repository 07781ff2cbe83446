"""target_transform log: training on log(y) of a positive target, every prediction and metric in the target's units.

The contract: predictions are exp of the model's answer on the log scale; rmse, mae and r2 are those of
those predictions against the targets, recomputed here by hand; the loss is the one trained, on log(y);
`predict`, `evaluate`, export and `Run.load` give the same numbers from a run directory; both Monte-Carlo
engines agree; a target it cannot take is one sentence.
"""

import csv
import json
import math
import warnings

import numpy as np
import pytest
import torch

import riskmin
from riskmin._cli._main import main


def positive(rows: int = 300) -> riskmin.Data:
    """Prices whose logarithm is linear in three features: log-normal errors, spread over two orders of magnitude."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(rows, 3, generator=generator)
    log_price = 11.0 + x @ torch.tensor([0.8, -0.5, 0.3]) + 0.2 * torch.randn(rows, generator=generator)
    return riskmin.Data(x, log_price.exp()[:, None], feature_names=["size", "age", "rooms"], target_names=["price"])


def by_hand(predicted: torch.Tensor, y: torch.Tensor) -> dict:
    """mse, rmse, mae and r2 of predictions against targets, in float64, as scikit-learn defines them."""
    predicted, y = predicted.double(), y.double()
    mse = float(((predicted - y) ** 2).mean())
    r2 = 1 - float(((predicted - y) ** 2).sum() / ((y - y.mean()) ** 2).sum())
    return {"mse": mse, "rmse": math.sqrt(mse), "mae": float((predicted - y).abs().mean()), "r2": r2}


@pytest.fixture(scope="module")
def trained():
    data = positive()
    splits = riskmin.split(data, val=0.2, test=0.2, seed=0)
    run = riskmin.fit("two_layer", splits, target_transform="log", hidden=(8,), epochs=30, progress=False)
    return data, splits, run


def test_metrics_are_those_of_exp_predictions_in_the_target_units_and_the_loss_is_on_the_log_scale(trained):
    data, splits, run = trained
    for part in ("train", "val", "test"):
        rows = getattr(splits, part)
        predicted, y = riskmin.predict(run, data.x[rows]), data.y[rows]
        assert float(predicted.min()) > 0  # exp of the model's answer
        for name, value in by_hand(predicted, y).items():
            assert run.summary[f"{part}_{name}"] == pytest.approx(value, rel=1e-5), (part, name)
        log_mse = float(((predicted.double().log() - y.double().log()) ** 2).mean())
        assert run.summary[f"{part}_loss"] == pytest.approx(log_mse, rel=1e-4)
    assert run.summary["test_rmse"] > 1000  # prices in their own units, not log units
    assert run.summary["test_r2"] > 0.8
    assert run.summary["target_transform"] == "log"


def test_predictions_are_exp_of_the_answer_on_the_log_scale_the_median_not_the_mean(trained):
    data, _, run = trained
    target = run.preprocessing.target
    assert target.log
    with torch.no_grad():
        answer = run.model(run.preprocessing(data.x[:20]))  # standardized log(price)
    expected = torch.exp(answer * target.scale + target.mean)
    torch.testing.assert_close(riskmin.predict(run, data.x[:20]), expected, rtol=1e-6, atol=0)


def test_evaluate_gives_the_metrics_fit_reported_on_the_same_rows(trained):
    data, splits, run = trained
    rows = splits.test
    measured = riskmin.evaluate(run, riskmin.Data(data.x[rows], data.y[rows]))
    for name in ("loss", "mse", "rmse", "mae", "r2"):
        assert measured[name] == pytest.approx(run.summary[f"test_{name}"], rel=1e-6), name


def test_a_saved_run_loads_predicts_evaluates_and_exports_in_the_target_units(trained, tmp_path):
    data, splits, run = trained
    run.save(tmp_path / "run")
    assert json.loads((tmp_path / "run" / "preprocessing.json").read_text())["standardizer"]["target"]["transform"] == "log"
    loaded = riskmin.Run.load(tmp_path / "run")
    expected = riskmin.predict(run, data.x[:50])
    torch.testing.assert_close(riskmin.predict(loaded, data.x[:50]), expected)
    # the command line: a CSV in, predictions and metrics in prices
    table = tmp_path / "rows.csv"
    rows = splits.test
    with open(table, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["size", "age", "rooms", "price"])
        writer.writerows([*map(float, x), float(y)] for x, y in zip(data.x[rows], data.y[rows, 0]))
    assert main(["predict", str(tmp_path / "run"), str(table), "--out", str(tmp_path / "p.csv")]) == 0
    with open(tmp_path / "p.csv") as file:
        written = torch.tensor([float(r["predicted_price"]) for r in csv.DictReader(file)])
    torch.testing.assert_close(written, riskmin.predict(run, data.x[rows])[:, 0], rtol=1e-6, atol=0)
    # TorchScript: the exported graph applies exp
    assert main(["export", str(tmp_path / "run"), "--format", "torchscript", "--out", str(tmp_path / "m.pt")]) == 0
    files = {"target_transform.json": ""}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit.load's deprecation notice
        module = torch.jit.load(str(tmp_path / "m.pt"), _extra_files=files)
    assert files["target_transform.json"] == b"log"
    torch.testing.assert_close(module(data.x[:50]), expected, rtol=1e-5, atol=0)


def test_onnx_export_applies_exp(trained, tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    data, _, run = trained
    run.save(tmp_path / "run")
    assert main(["export", str(tmp_path / "run"), "--format", "onnx", "--out", str(tmp_path / "m.onnx")]) == 0
    session = onnxruntime.InferenceSession(str(tmp_path / "m.onnx"))
    assert session.get_modelmeta().custom_metadata_map["target_transform"] == "log"
    out = session.run(["outputs"], {name: data.x[:50, i].numpy() for i, name in enumerate(["size", "age", "rooms"])})[0]
    np.testing.assert_allclose(out, riskmin.predict(run, data.x[:50]).numpy(), rtol=1e-5)


def test_the_closed_form_reference_is_least_squares_on_log_y_measured_as_the_loss():
    data = positive()
    splits = riskmin.split(data, val=0.2, test=0.2, seed=0)
    run = riskmin.fit("linear", splits, target_transform="log", optimizer="sgd", lr=0.1, epochs=200, progress=False)
    x, y = data.x.double(), data.y.double().log()
    train, test = splits.train, splits.test
    ones = torch.ones(len(x), 1, dtype=torch.float64)
    design = torch.cat([x, ones], 1)
    solution = torch.linalg.lstsq(design[train], y[train]).solution
    expected = float(((design[test] @ solution - y[test]) ** 2).mean())
    assert run.summary["closed_form_test_loss"] == pytest.approx(expected, rel=1e-4)
    assert run.summary["test_loss"] == pytest.approx(expected, rel=0.05)  # the linear model trained on log y reaches it


def test_without_standardizing_the_target_it_still_trains_on_log_y():
    data = positive()
    splits = riskmin.split(data, val=0.2, test=0.2, seed=0)
    run = riskmin.fit("linear", splits, target_transform="log", standardize_target=False, epochs=5, progress=False)
    target = run.preprocessing.target
    assert target.log and target.scale == 1.0 and not target.mean.any()
    rows = splits.test
    predicted = riskmin.predict(run, data.x[rows])
    assert run.summary["test_rmse"] == pytest.approx(by_hand(predicted, data.y[rows])["rmse"], rel=1e-5)


def test_both_engines_give_the_same_table_on_a_log_target():
    data = positive(120)
    settings = dict(hidden=(4,), target_transform="log", epochs=4, batch_size=16, patience=1, progress=False)
    stacked = riskmin.montecarlo("two_layer", data, runs=5, engine="vectorized", **settings)
    sequential = riskmin.montecarlo("two_layer", data, runs=5, engine="sequential", **settings)
    assert stacked.summary["engine"] == "vectorized" and sequential.summary["engine"] == "sequential"
    assert stacked.summary["target_transform"] == "log"
    for mine, theirs in zip(stacked.table, sequential.table):
        assert mine.keys() == theirs.keys()
        for key, value in mine.items():
            assert value == pytest.approx(theirs[key], rel=1e-5), key
        assert mine["test_rmse"] > 1000  # in prices


def test_a_target_at_or_below_zero_is_one_sentence_naming_the_column_and_its_smallest_value():
    data = positive(100)
    data.y[[3, 40], 0] = torch.tensor([-2.5, 0.0])
    for call in (lambda: riskmin.fit("linear", data, target_transform="log", epochs=1, progress=False),
                 lambda: riskmin.montecarlo("linear", data, runs=2, target_transform="log", epochs=1, progress=False)):
        with pytest.raises(riskmin.RiskminError) as error:
            call()
        assert str(error.value) == ("target_transform log takes finite targets above 0, but target column price holds 2 values "
                                    "that are not (the smallest -2.5); drop those rows or use --target-transform none "
                                    '(target_transform="none")')
    data.y[3, 0] = float("nan")
    with pytest.raises(riskmin.RiskminError, match="column price holds 2 values that are not .among them a missing value"):
        riskmin.fit("linear", data, target_transform="log", epochs=1, progress=False)


def test_evaluating_a_log_run_on_rows_without_a_logarithm_is_refused(trained):
    data, _, run = trained
    y = data.y[:10].clone()
    y[2] = -1.0
    with pytest.raises(riskmin.RiskminError, match="target column price holds 1 value that is not .the smallest -1."):
        riskmin.evaluate(run, riskmin.Data(data.x[:10], y))


@pytest.mark.parametrize("settings, message", [
    (dict(task="classification"), "target_transform log is for a positive regression target, but task classification is for "
                                  "classes; drop --target-transform log"),
    (dict(loss="bce"), "but loss bce is for classes"),
    (dict(loss="custom"), "a loss of your own sees the targets in their own units"),
])
def test_log_with_classes_or_a_loss_of_ones_own_is_refused_by_the_settings(settings, message):
    with pytest.raises(riskmin.RiskminError, match=message):
        riskmin.Config(target_transform="log", **settings)


def test_a_target_read_as_classes_is_refused_with_the_fix():
    data = positive(60)
    labels = riskmin.Data(data.x, (data.y[:, 0] > data.y.median()).long())
    with pytest.raises(riskmin.RiskminError) as error:
        riskmin.fit("linear", labels, target_transform="log", epochs=1, progress=False)
    assert str(error.value) == ("target_transform log is for a positive regression target, but the target is read as classes; "
                                'pass --task regression (task="regression") if its values are amounts, or drop '
                                '--target-transform log (target_transform="none")')


def test_the_command_line_refuses_a_negative_target_in_one_line_and_writes_nothing(tmp_path, capsys):
    table = tmp_path / "t.csv"
    table.write_text("a,price\n1,10\n2,-3\n3,30\n4,0.5\n5,7\n6,8\n7,9\n8,11\n9,12\n10,13\n")
    assert main(["train", str(table), "--target", "price", "--target-transform", "log", "--out", str(tmp_path / "runs"),
                 "--progress", "off"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: target_transform log takes finite targets above 0, but target column price holds 1 value that is "
                   'not (the smallest -3); drop those rows or use --target-transform none (target_transform="none")']
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_the_transform_is_fixed_on_resume(tmp_path, capsys):
    data = positive(200)
    table = tmp_path / "prices.csv"
    with open(table, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["size", "age", "rooms", "price"])
        writer.writerows([*map(float, x), float(y)] for x, y in zip(data.x, data.y[:, 0]))
    assert main(["train", str(table), "--target", "price", "--target-transform", "log", "--epochs", "2", "--progress", "off",
                 "--out", str(tmp_path), "--name", "cut"]) == 0
    (tmp_path / "cut" / "summary.json").unlink()  # as if it had stopped before its final files
    capsys.readouterr()
    assert main(["train", "--resume", str(tmp_path / "cut"), "--target-transform", "none"]) == 2
    err = capsys.readouterr().err
    assert "drop --target-transform" in err


def test_the_console_says_the_loss_is_of_log_target(trained, capsys):
    from rich.console import Console

    from riskmin._runs._report import summary_table

    _, _, run = trained
    summary_table(run.summary, Console(width=80))
    out = capsys.readouterr().out
    assert "loss (log target)" in out and "rmse" in out
