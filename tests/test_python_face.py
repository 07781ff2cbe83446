"""riskmin from Python: results that show themselves, answers in the type asked with, no surprising state, and the
notes the command line prints, as warnings."""

import json
import math
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import riskmin
from riskmin import RiskminError
from riskmin.config import RiskminNote
from riskmin._runs._report import MONTECARLO_ROWS
from said import unwrapped

FAST = dict(progress=False)


@pytest.fixture(scope="module")
def mc():
    return riskmin.montecarlo("linear", "lab1", runs=3, epochs=2, **FAST)


@pytest.fixture(scope="module")
def comparison():
    return riskmin.compare({"small": {"hidden": 4}, "large": {"hidden": 16}}, "lab1", runs=3, epochs=2, **FAST)


@pytest.fixture(scope="module")
def finding():
    return riskmin.lr_find("linear", "lab1", steps=20, **FAST)


def two_digits(se: float, line: str) -> str:
    """The standard error `line` shows after "+- ", once checked to be `se` in two significant digits, a trailing zero
    kept (2.0 for 2.01, not 2)."""
    shown = line.split("+- ", 1)[1].split(",")[0].split("<")[0]
    digits = shown.replace(".", "").lstrip("0")
    assert len(digits) == 2 and abs(float(shown) - se) <= 0.5 * 10 ** (math.floor(math.log10(se)) - 1), (shown, se)
    return shown


def test_a_monte_carlo_result_shows_itself_in_one_line_and_as_a_table(mc):
    test = mc.summary["metrics"]["test_loss"]
    assert repr(mc) == (f"MonteCarlo(lab1, linear, 3 runs, test loss {test['mean']:.4g} +- {two_digits(test['corrected_se'], repr(mc))}, "
                        f"95% corrected [{test['corrected_ci_low']:.4g}, {test['corrected_ci_high']:.4g}])")
    html = mc._repr_html_()
    shown = [name for name in mc.summary["metrics"] if name.startswith(MONTECARLO_ROWS) and name != "test_mse"]  # as the console
    assert html.startswith("<table>") and html.count("<tr>") == 1 + len(shown) and "test_r2" in shown
    assert html.index("<td>test rmse</td>") < html.index("<td>test mae</td>") < html.index("<td>test loss</td>")
    row = html.split("<td>test loss</td><td>", 1)[1]
    assert row.startswith(f"{test['mean']:.4g} +- {two_digits(test['corrected_se'], row)}</td>")
    # the footnote the command prints under the table: what the corrected interval allows for, which lie on the log scale
    assert "</table><p>The corrected interval (Nadeau-Bengio, n_test/n_train = 0.125" in html
    assert "The intervals of the loss, mse, rmse and mae are taken on the log scale" in html


def test_a_notebook_shows_a_results_notes_beside_its_table():
    from torch.utils.data import TensorDataset

    x = torch.randn(60, 2, generator=torch.Generator().manual_seed(0))
    result = riskmin.montecarlo("linear", TensorDataset(x, x.sum(1, keepdim=True)), runs=2, epochs=1, **FAST)
    assert result.notes and result.notes[0].startswith("sequential engine: ")  # a Dataset trains run by run
    html = result._repr_html_()
    assert f"<p>note: {result.notes[0]}</p>" in html and html.index("</table>") < html.index("<p>note: ")


def test_a_monte_carlo_result_names_a_model_and_data_of_your_own():
    x = torch.randn(60, 2, generator=torch.Generator().manual_seed(0))
    result = riskmin.montecarlo(lambda: torch.nn.Linear(2, 1), (x, x.sum(1, keepdim=True)), runs=2, epochs=1, **FAST)
    assert repr(result).startswith("MonteCarlo(data, <lambda>, 2 runs, test loss ")


def test_a_comparison_shows_itself_in_one_line_and_as_a_table(comparison):
    s = comparison.summary
    best = s["candidates"][s["best"]]["metrics"]["test_loss"]
    line = repr(comparison)
    assert "\n" not in line and line.startswith(f"Comparison(lab1, 2 candidates on 3 splits, best {s['best']}: "
                                                f"test loss {best['mean']:.4g} +- {two_digits(best['corrected_se'], line)}")
    html = comparison._repr_html_()
    assert html.count("<tr>") == 3 and "<td>best</td>" in html
    other = next(name for name in s["ranking"] if name != s["best"])
    assert f"<td>{other}</td>" in html and f"{s['comparisons']['test_loss'][other]['holm_p_value']:.2g}" in html


def test_the_tables_come_as_pandas_dataframes(mc, comparison):
    pytest.importorskip("pandas")
    runs = mc.to_pandas()
    assert runs.shape[0] == 3 and list(runs["seed"]) == [0, 1, 2] and list(runs["test_loss"]) == [row["test_loss"] for row in mc.table]
    summary = mc.to_pandas("summary").set_index("metric")
    assert summary.loc["test_loss", "mean"] == mc.summary["metrics"]["test_loss"]["mean"]
    assert comparison.to_pandas().shape[0] == 6 and set(comparison.to_pandas()["candidate"]) == {"small", "large"}
    rows = comparison.to_pandas("summary")
    assert {"candidate", "metric", "mean", "holm_p_value"} <= set(rows.columns) and set(rows["candidate"]) == {"small", "large"}
    with pytest.raises(RiskminError, match="table='split' is not a table of MonteCarlo; choose one of 'runs', 'summary'"):
        mc.to_pandas("split")


def test_to_pandas_without_pandas_says_so_in_one_sentence(mc, comparison, monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas now raises ImportError
    for result, name in ((mc, "MonteCarlo"), (comparison, "Comparison")):
        with pytest.raises(RiskminError) as error:
            result.to_pandas()
        assert str(error.value).startswith(f"{name}.to_pandas needs pandas, which is not installed; install it with pip install pandas")


def test_the_learning_rate_finding_shows_itself_and_draws_a_figure(finding, tmp_path):
    from matplotlib.figure import Figure

    assert repr(finding) == (f"LrFinding(suggested lr {finding.suggestion:.3g}, {len(finding.rates)} steps from "
                             f"{finding.rates[0]:.3g} to {finding.rates[-1]:.3g}, steepest descent)")
    figure = finding.plot()
    assert isinstance(figure, Figure) and figure.axes[0].get_xscale() == "log"
    assert finding.plot(tmp_path / "lr.png") == tmp_path / "lr.png" and (tmp_path / "lr.png").stat().st_size > 1000


def test_a_comparison_draws_a_figure_or_a_file(comparison, mc, tmp_path):
    from matplotlib.figure import Figure

    figure = comparison.plot()
    assert isinstance(figure, Figure)
    assert [label.get_text().split("\n")[0] for label in figure.axes[0].get_xticklabels()] == comparison.summary["ranking"]
    assert comparison.plot(tmp_path / "c.png") == tmp_path / "c.png" and (tmp_path / "c.png").stat().st_size > 1000
    assert mc.plot(tmp_path / "mc.png") == tmp_path / "mc.png" and (tmp_path / "mc.png").stat().st_size > 1000


def test_a_one_line_repr_imports_no_matplotlib_and_the_notebook_view_carries_the_picture():
    code = ("import sys, riskmin\n"
            "mc = riskmin.montecarlo('linear', 'lab1', runs=2, epochs=1, progress=False)\n"
            "c = riskmin.compare({'a': {'lr': 0.01}, 'b': {'lr': 0.1}}, 'lab1', runs=2, model='linear', epochs=1, progress=False)\n"
            "f = riskmin.lr_find('linear', 'lab1', steps=10, progress=False)\n"
            "shown = [repr(mc), repr(c), repr(f)]\n"
            "print(sorted(m for m in sys.modules if m.startswith('matplotlib')))\n"
            "print(all(r._repr_html_().count('<img src=\"data:image/png;base64,') == 1 for r in (mc, c)))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["[]", "True"]


@pytest.fixture(scope="module")
def towns():
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"size": rng.standard_normal(90), "town": rng.choice(["north", "south", "west"], 90)},
                         index=pd.RangeIndex(500, 590, name="house"))
    frame["price"] = 2 * frame["size"] + (frame["town"] == "south") * 1.5
    return frame


@pytest.mark.parametrize("kind", ["value", "class", "proba"])
def test_predict_answers_in_the_type_it_was_asked_with(towns, kind):
    frame = towns.drop(columns="price")
    run = riskmin.fit("linear", frame, target="town", epochs=3, **FAST)
    rows = frame.iloc[[3, 1, 4]]
    encoded = riskmin.predict(run, rows, kind="value")  # any kind's numbers come from these outputs
    x = torch.tensor(rows[["size"]].to_numpy(), dtype=torch.float32)
    tensor, array, table = riskmin.predict(run, x, kind=kind), riskmin.predict(run, x.numpy(), kind=kind), riskmin.predict(run, rows, kind=kind)
    assert isinstance(tensor, torch.Tensor) and isinstance(array, np.ndarray) and type(table) is type(rows)
    assert list(table.index) == [503, 501, 504] and table.index.name == "house"
    classes = ["north", "south", "west"]
    if kind == "class":
        assert tensor.dtype == torch.int64 and tensor.shape == (3,)
        assert array.tolist() == [classes[k] for k in tensor] == list(table["town"]) and list(table.columns) == ["town"]
        assert tensor.tolist() == encoded.to_numpy().argmax(1).tolist()
    else:
        assert list(table.columns) == classes and table.to_numpy() == pytest.approx(array) and array == pytest.approx(tensor.numpy())
        if kind == "value":
            assert table.to_numpy() == pytest.approx(encoded.to_numpy())


def test_predict_and_evaluate_warn_at_the_callers_line_through_torch_s_no_grad(towns):
    run = riskmin.fit("linear", towns, target="price", epochs=1, **FAST)
    unseen = towns.assign(town="east").head(3)
    for call in (lambda: riskmin.predict(run, unseen.drop(columns="price")), lambda: riskmin.evaluate(run, unseen)):
        with pytest.warns(riskmin.RiskminWarning, match="categories the run never saw") as said:
            call()
        assert {w.filename for w in said} == {__file__}


@pytest.mark.parametrize("setting", [{"target": "y"}, {"features": "a,b"}])
def test_columns_asked_of_arrays_are_refused_as_of_a_built_in_data_set(setting):
    x = np.random.default_rng(0).standard_normal((60, 3))
    with pytest.raises(RiskminError, match=r"^target= and features= choose columns of a table \(a file or a DataFrame\); "
                                           r"data given as \(x, y\) has none: leave them out$"):
        riskmin.fit("linear", (x, x.sum(1)), epochs=1, **setting, **FAST)


@pytest.mark.parametrize("call", [
    lambda data: riskmin.fit("linear", data, task="classification", epochs=1, **FAST),
    lambda data: riskmin.montecarlo("linear", data, runs=2, task="classification", epochs=1, **FAST),
    lambda data: riskmin.fit("linear", riskmin.split(data), task="classification", epochs=1, **FAST),
])
def test_a_task_that_riskmin_data_was_not_read_as_is_refused_not_ignored(call):
    data = riskmin.Data(torch.randn(50, 3), torch.randn(50))
    with pytest.raises(RiskminError, match=r"^task='classification' does not match the riskmin.Data given, whose targets "
                                           r"were read as regression; leave task out, or pass \(x, y\) with task= to "
                                           r"have y read so$"):
        call(data)


def test_task_classification_takes_yes_no_targets_as_they_are_under_bce_and_several_only_there(towns):
    x = torch.randn(80, 3)
    yes_no, both = (x[:, :1] > 0).float(), (x[:, :2] > 0).float()
    quick = dict(task="classification", epochs=1, **FAST)
    assert riskmin.fit("linear", riskmin.split(riskmin.Data(x, yes_no)), loss="bce", **quick).config.loss == "bce"
    comparison = riskmin.compare({"a": {}, "b": {"lr": 0.1}}, (x, yes_no), loss="bce", runs=2, **quick)
    assert "test_accuracy" in comparison.summary["candidates"]["a"]["metrics"]
    assert riskmin.curve("linear", (x, both), loss="bce", sizes=(0.5, 1.0), runs=2, **quick).config.loss == "bce"
    with pytest.raises(RiskminError, match='^classification takes one column of class labels but y has 2; give one, or, '
                                           'for several yes/no targets, y as 0.0/1.0 floats with loss="bce"$'):
        riskmin.fit("linear", (x, both), **quick)  # once trained as mse, as if task= were not there
    # a DataFrame x's columns are named by features=, as a table's
    pair = (towns[["size", "town"]], towns["price"])
    assert riskmin.fit("linear", pair, features="size", epochs=1, **FAST).data_names["features"] == ["size"]
    with pytest.raises(RiskminError, match=r"^target= names 2 columns \(price, size\), but y beside a DataFrame x is one "
                                           r"target, which target= may only name; pass one DataFrame holding them all, "
                                           r"with target=$"):
        riskmin.fit("linear", pair, target="price,size", epochs=1, **FAST)  # once trained on price alone, in silence


def test_predict_gives_a_regression_dataframe_its_target_column(towns):
    run = riskmin.fit("linear", towns, target="price", epochs=3, **FAST)
    answer = riskmin.predict(run, towns.iloc[:4])
    assert list(answer.columns) == ["price"] and list(answer.index) == [500, 501, 502, 503] and answer.dtypes["price"] == np.float32
    assert answer["price"].to_numpy() == pytest.approx(riskmin.predict(run, towns.iloc[:4].drop(columns="price"))["price"].to_numpy())


def test_predict_of_several_yes_no_targets_names_each_target(towns):
    x = torch.tensor(towns[["size"]].to_numpy(), dtype=torch.float32)
    y = torch.stack([(x[:, 0] > 0).float(), (x[:, 0] > 1).float()], 1)
    run = riskmin.fit("linear", (x, y), loss="bce", epochs=3, **FAST)
    array = riskmin.predict(run, x.numpy(), kind="class")
    assert array.shape == (90, 2) and set(np.unique(array)) <= {0, 1} and torch.equal(torch.from_numpy(array), riskmin.predict(run, x, kind="class"))


def test_predict_of_a_polars_dataframe_is_a_polars_dataframe(towns):
    polars = pytest.importorskip("polars")
    run = riskmin.fit("linear", towns, target="price", epochs=2, **FAST)
    answer = riskmin.predict(run, polars.from_pandas(towns.iloc[:3]))
    assert isinstance(answer, polars.DataFrame) and answer.columns == ["price"]
    assert answer["price"].to_numpy() == pytest.approx(riskmin.predict(run, towns.iloc[:3])["price"].to_numpy())


def test_fit_refuses_a_directory_that_holds_a_finished_run_unless_told_to_overwrite(lab1, tmp_path):
    riskmin.fit("linear", lab1, epochs=2, directory=tmp_path / "run", **FAST)
    written = {path.name: path.read_bytes() for path in (tmp_path / "run").iterdir() if path.is_file()}
    with pytest.raises(RiskminError) as error:
        riskmin.fit("linear", lab1, epochs=3, directory=tmp_path / "run", **FAST)
    assert str(error.value) == (f"directory {tmp_path / 'run'} holds a finished run; pass overwrite=True to replace it, "
                                "or choose another directory")
    assert {path.name: path.read_bytes() for path in (tmp_path / "run").iterdir() if path.is_file()} == written
    with pytest.raises(RiskminError, match="holds a finished run, with nothing to resume; drop resume=True and pass overwrite=True"):
        riskmin.fit("linear", lab1, epochs=3, directory=tmp_path / "run", resume=True, **FAST)
    again = riskmin.fit("linear", lab1, epochs=3, directory=tmp_path / "run", overwrite=True, **FAST)
    assert again.summary["epochs_run"] == 3 and riskmin.Run.load(tmp_path / "run").summary["epochs_run"] == 3


def test_an_interrupted_run_still_resumes(lab1, tmp_path):
    from riskmin._training._checkpoint import TrainingInterrupted
    from riskmin.callbacks import SignalAt

    with pytest.raises(TrainingInterrupted) as stop:
        riskmin.fit("linear", lab1, epochs=3, directory=tmp_path / "run", callbacks=[SignalAt(30, "SIGINT")], **FAST)
    assert str(stop.value).endswith(  # the way on, in Python's words
        f"the checkpoint is saved; continue with: riskmin.fit(model, data, ..., directory={str(tmp_path / 'run')!r}, "
        "resume=True)")
    assert not (tmp_path / "run" / "summary.json").exists()
    resumed = riskmin.fit("linear", lab1, epochs=3, directory=tmp_path / "run", resume=True, **FAST)
    assert resumed.summary["epochs_run"] == 3 and (tmp_path / "run" / "summary.json").exists()


def test_a_second_fit_of_a_trained_module_says_it_continues_from_trained_weights(lab1):
    torch.manual_seed(0)
    model = riskmin.models.Linear(lab1.n_features, lab1.n_targets)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the first fit of a fresh module says nothing
        riskmin.fit(model, lab1, epochs=1, **FAST)
    with pytest.warns(riskmin.RiskminWarning, match="this module was trained by an earlier fit, and this fit continues from its "
                                                    "trained weights"):
        riskmin.fit(model, lab1, epochs=1, **FAST)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a copy, as montecarlo and lr_find train, is a module of its own
        riskmin.fit(riskmin.models.Linear(lab1.n_features, lab1.n_targets), lab1, epochs=1, **FAST)
        riskmin.lr_find(model, lab1, steps=10, **FAST)


def test_a_grid_search_over_mlp_shapes_trains_each_shape():
    pytest.importorskip("sklearn")
    from sklearn.model_selection import GridSearchCV

    from riskmin.sklearn import RiskminClassifier

    rng = np.random.default_rng(0)
    x = rng.standard_normal((90, 3))
    y = np.where(x[:, 0] * x[:, 1] > 0, "same", "other")
    shapes = [(4,), (8, 8), (4, 4, 4)]
    search = GridSearchCV(RiskminClassifier(model="mlp", epochs=3, val=0.0, random_state=0), {"hidden": shapes}, cv=2,
                          error_score="raise").fit(x, y)
    assert [params["hidden"] for params in search.cv_results_["params"]] == shapes
    assert search.best_estimator_.run_.config.model == "mlp" and search.best_estimator_.run_.config.hidden == search.best_params_["hidden"]
    widths = [layer.out_features for layer in search.best_estimator_.model_ if isinstance(layer, torch.nn.Linear)]
    assert widths == [*search.best_params_["hidden"], 2]


def test_fit_of_a_dataframe_says_what_the_command_line_says_as_catchable_notes(tmp_path, capsys):
    pd = pytest.importorskip("pandas")
    from riskmin._cli._main import main
    from riskmin._data._frames import in_python

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"id": np.arange(1000, 1060), "size": rng.standard_normal(60), "town": rng.choice(["a", "b", "c"], 60),
                          "fruit": rng.choice(["apple", "pear"], 60)})
    frame.loc[3, "size"] = np.nan
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        riskmin.fit("linear", frame, target="fruit", missing="mean", epochs=1, **FAST)
    said = [str(w.message) for w in caught if issubclass(w.category, RiskminNote)]
    assert said[:2] == ["task: classification (guessed): fruit has 2 classes (apple, pear); text values are class names",
                        "left out of the features as row identifiers: id (named like one); name a column in features= to keep it"]
    frame.to_csv(tmp_path / "fruit.csv", index=False)
    capsys.readouterr()
    assert main(["train", str(tmp_path / "fruit.csv"), "--target", "fruit", "--missing", "mean", "--epochs", "1",
                 "--progress", "off", "--out", str(tmp_path)]) == 0
    printed = unwrapped(capsys.readouterr().out).splitlines()
    assert [f"note: {note}" for note in said] == [in_python(line) for line in printed[:len(said)]] and len(said) == 3


def test_load_given_a_table_says_to_give_the_table_to_the_experiment():
    pd = pytest.importorskip("pandas")
    with pytest.raises(riskmin.RiskminError, match="load reads a data set's name or a file's path, not a DataFrame; give "
                                                   "a table or tensors to fit, montecarlo, compare or curve as they are"):
        riskmin.load(pd.DataFrame({"x": [1.0, 2.0], "y": [2.0, 4.0]}), riskmin.Config(target="y"))


def test_a_files_path_reads_as_its_name_does(tmp_path, recwarn):
    path = tmp_path / "doubled.csv"
    path.write_text("x,y\n" + "".join(f"{i},{2 * i}\n" for i in range(40)))
    assert torch.equal(riskmin.load(path, riskmin.Config(target="y")).x, riskmin.load(str(path), riskmin.Config(target="y")).x)
    by_path = riskmin.fit("linear", path, target="y", epochs=2, progress=False)
    by_name = riskmin.fit("linear", str(path), target="y", epochs=2, progress=False)
    untimed = lambda run: [{k: v for k, v in row.items() if k != "seconds"} for row in run.history]  # noqa: E731
    assert untimed(by_path) == untimed(by_name)
    assert riskmin.montecarlo("linear", path, target="y", runs=2, epochs=1, progress=False).summary["used_runs"] == [0, 1]


@pytest.fixture
def pairs(tmp_path, monkeypatch):
    """A folder with data/pairs.npz (60 rows of x and y = x1 + x2), the current folder for the test."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    x = np.random.default_rng(0).normal(size=(60, 2)).astype(np.float32)
    np.savez(tmp_path / "data" / "pairs.npz", x=x, y=x.sum(1, keepdims=True))
    return x


def test_config_toml_names_the_data_a_run_from_python_was_given(pairs, tmp_path, monkeypatch, capsys, recwarn):
    import tomllib

    from riskmin._cli._main import main

    quick = dict(epochs=2, progress=False)
    first = riskmin.fit("linear", "data/pairs.npz", directory="runs/file", **quick)
    riskmin.fit("linear", (pairs, pairs.sum(1)), directory="runs/arrays", **quick)
    riskmin.fit("linear", riskmin.load("line"), directory="runs/loaded", **quick)
    riskmin.fit("linear", riskmin.load("data/pairs.npz"), directory="runs/read", **quick)
    recorded = {name: tomllib.loads((tmp_path / "runs" / name / "config.toml").read_text())["data"]
                for name in ("file", "arrays", "loaded", "read")}
    # a file by its absolute path, given by name or read by load (what the command line passes fit once it has read
    # it); a data set by its name; an object by what it was, never the default data set lab1
    assert recorded == {"file": str(tmp_path / "data" / "pairs.npz"), "arrays": "(x, y) given in Python",
                        "loaded": "line", "read": str(tmp_path / "data" / "pairs.npz")}
    monkeypatch.chdir(tmp_path / "data")  # --config finds the file from another folder, and trains on the same rows
    out = ["--out", str(tmp_path / "runs"), "--progress", "off"]
    assert main(["train", "--config", str(tmp_path / "runs" / "file" / "config.toml"), "--name", "again", *out]) == 0
    assert json.loads((tmp_path / "runs" / "again" / "summary.json").read_text())["test_loss"] == first.summary["test_loss"]
    capsys.readouterr()
    assert main(["train", "--config", str(tmp_path / "runs" / "arrays" / "config.toml"), "--name", "lab1", *out]) == 2
    assert capsys.readouterr().err == ("error: data '(x, y) given in Python' names no file or data set, only what a run "
                                       "was given in Python; give the data again, as DATA on the command line or as "
                                       "the data argument in Python\n")
    assert not (tmp_path / "runs" / "lab1").exists()


def test_experiments_from_python_are_named_and_saved_after_their_data(pairs, tmp_path, recwarn):
    quick = dict(runs=2, epochs=1, batch_size=8, progress=False)
    mc = riskmin.montecarlo("linear", "data/pairs.npz", **quick)
    assert repr(mc).startswith("MonteCarlo(pairs, linear, 2 runs") and mc.save() == Path("runs/pairs-linear-montecarlo")
    curve = riskmin.curve("linear", "data/pairs.npz", sizes=(0.5, 1.0), **quick)
    assert repr(curve).startswith("Curve(pairs, 2 experiments") and curve.save() == Path("runs/pairs-curve")
    comparison = riskmin.compare({"a": {}, "b": {"lr": 0.1}}, "data/pairs.npz", **quick)
    assert comparison.save() == Path("runs/pairs-compare")
    for folder in ("pairs-linear-montecarlo", "pairs-curve", "pairs-compare"):
        assert f'data = "{tmp_path / "data" / "pairs.npz"}"' in (tmp_path / "runs" / folder / "config.toml").read_text()


def test_config_toml_of_loaded_data_reads_the_same_rows_again(pairs, tmp_path, capsys, recwarn):
    """The settings that read the data go with its name: lab1 drawn with 60 rows and other noise, a table's target."""
    import tomllib

    from riskmin._cli._main import main

    drawn = riskmin.load("lab1", riskmin.Config(n_samples=60, noise=2.0))
    first = riskmin.fit("linear", drawn, directory="runs/drawn", epochs=2, progress=False)
    saved = tomllib.loads((tmp_path / "runs" / "drawn" / "config.toml").read_text())
    assert (saved["data"], saved["n_samples"], saved["noise"]) == ("lab1", 60, 2.0)
    assert main(["train", "--config", "runs/drawn/config.toml", "--name", "again", "--progress", "off"]) == 0
    assert json.loads((tmp_path / "runs" / "again" / "summary.json").read_text())["test_loss"] == first.summary["test_loss"]


def test_load_takes_the_keywords_fit_takes_and_a_curve_records_its_model(pairs, tmp_path, recwarn):
    import tomllib

    assert riskmin.load("data/pairs.npz", task="regression").task == "regression"
    assert len(riskmin.load("lab1", n_samples=40)) == 40
    with pytest.raises(RiskminError, match="unknown setting 'tagret'; did you mean 'target'"):
        riskmin.load("data/pairs.npz", tagret="y")
    curve = riskmin.curve("linear", "data/pairs.npz", sizes=(0.5, 1.0), runs=2, epochs=1, batch_size=8, progress=False)
    assert tomllib.loads((curve.save() / "config.toml").read_text())["model"] == "linear"  # not the default two_layer


def test_predict_given_a_series_says_to_pass_rows_as_a_dataframe(lab1):
    pandas = pytest.importorskip("pandas")
    table = pandas.DataFrame(lab1.x.numpy(), columns=lab1.feature_names).assign(y=lab1.y[:, 0].numpy())
    run = riskmin.fit("linear", table, target="y", epochs=1, **FAST)
    with pytest.raises(riskmin.RiskminError, match=r"^x is a Series, one row or one column; pass the rows as a DataFrame, "
                                                   r"say X.iloc\[\[0\]\] for the first row rather than X.iloc\[0\]$"):
        riskmin.predict(run, table.drop(columns="y").iloc[0])
    assert riskmin.predict(run, table.drop(columns="y").iloc[[0]]).shape == (1, 1)


def test_predict_and_evaluate_read_a_data_file_as_the_command_line_does(towns, tmp_path):
    towns.to_csv(tmp_path / "towns.csv", index=False)
    run = riskmin.fit("linear", towns, target="town", epochs=3, directory=tmp_path / "run", **FAST)
    from_file = riskmin.predict(run, tmp_path / "towns.csv", kind="class")
    assert isinstance(from_file, np.ndarray) and from_file.tolist() == list(riskmin.predict(run, towns, kind="class")["town"])
    assert riskmin.predict(str(tmp_path / "run"), str(tmp_path / "towns.csv"), kind="class").tolist() == from_file.tolist()
    assert riskmin.evaluate(run, tmp_path / "towns.csv") == pytest.approx(riskmin.evaluate(run, towns))
    assert riskmin.evaluate(tmp_path / "run", str(tmp_path / "towns.csv")) == pytest.approx(riskmin.evaluate(run, towns))
    measured = riskmin.evaluate(run, towns)  # the errors in the target's units first, as every table leads with them
    shown = [*(name for name in ("rmse", "mae") if name in measured), *(n for n in measured if n not in ("rmse", "mae"))]
    assert main_says(["evaluate", str(tmp_path / "run"), str(tmp_path / "towns.csv")]) == [
        f"{name:<12} {measured[name]:.6g}" for name in shown]


def main_says(argv) -> list:
    done = subprocess.run([sys.executable, "-m", "riskmin", *argv], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


@pytest.mark.parametrize("rows, said", [
    (None, "x is None; pass the rows as a DataFrame, a NumPy array, a tensor or a data file's path"),
    ({"size": 1.0}, "x is of type dict; pass the rows as a DataFrame, a NumPy array, a tensor or a data file's path"),
])
def test_predict_refuses_what_holds_no_rows_in_one_sentence(towns, rows, said):
    run = riskmin.fit("linear", towns, target="price", epochs=1, **FAST)
    with pytest.raises(RiskminError, match=f"^{said}$"):
        riskmin.predict(run, rows)


def test_a_data_file_or_run_path_that_is_wrong_is_said_so(towns, tmp_path):
    towns.to_csv(tmp_path / "towns.csv", index=False)
    run = riskmin.fit("linear", towns, target="price", epochs=1, **FAST)
    with pytest.raises(RiskminError, match=f"^{tmp_path / 'nowhere'} does not exist; check the path$"):
        riskmin.predict(tmp_path / "nowhere", towns)
    with pytest.raises(RiskminError, match="does not exist; check the path$"):
        riskmin.evaluate(run, tmp_path / "nothing.csv")
    with pytest.raises(RiskminError, match=r"^a data file \(.*towns.csv\) is read by the columns a run was trained on; "
                                           r"pass the Run, not its model$"):
        riskmin.predict(run.model, tmp_path / "towns.csv")


@pytest.mark.parametrize("call, placed, what", [
    (lambda c: riskmin.montecarlo("linear", "lab1", c), "runs", "number of runs"),
    (lambda c: riskmin.compare({"a": {}, "b": {"lr": 0.1}}, "lab1", c), "runs", "number of runs"),
    (lambda c: riskmin.curve("linear", "lab1", c), "sizes", "training sizes"),
])
def test_a_config_given_where_an_experiment_takes_another_argument_is_said_so(call, placed, what):
    with pytest.raises(RiskminError, match=rf"^{placed} is a Config, where riskmin\.\w+ takes its {what}; pass the Config "
                                           r"by name: riskmin\.\w+\(\.\.\., config=Config\(\.\.\.\)\)$"):
        call(riskmin.Config(epochs=1))


def test_a_config_that_is_not_a_config_is_said_so():
    with pytest.raises(RiskminError, match=r"^config is a dict, not a riskmin.Config; pass riskmin.Config\(\.\.\.\), or the "
                                           r"settings themselves as keywords: riskmin.fit\(\.\.\., lr=0.1\)$"):
        riskmin.fit("linear", "lab1", {"lr": 0.1})
    with pytest.raises(RiskminError, match=r"^config is a dict, not a riskmin.Config; .*riskmin.montecarlo\("):
        riskmin.montecarlo("linear", "lab1", config={"lr": 0.1})


def test_a_run_saved_by_its_settings_with_overwrite_replaces_the_run_there_whole(tmp_path, capsys):
    riskmin.fit("linear", "lab1", epochs=1, checkpoint_every=1, directory=tmp_path / "lab1-linear", **FAST)
    assert (old_dir := tmp_path / "lab1-linear" / "checkpoint").is_dir()
    new = riskmin.fit("linear", "lab1", riskmin.Config(out=str(tmp_path), overwrite=True), epochs=2, **FAST)
    assert new.save() == tmp_path / "lab1-linear" and capsys.readouterr().out == f"run written to {tmp_path / 'lab1-linear'}\n"
    assert not old_dir.exists()  # the old run's checkpoints went with it, as a replacement leaves nothing of it
    assert json.loads((tmp_path / "lab1-linear" / "summary.json").read_text())["epochs_run"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lab1-linear"]


def test_a_named_save_that_is_taken_names_what_a_python_caller_changes(tmp_path, recwarn):
    named = riskmin.Config(out=str(tmp_path), name="mine")
    run = riskmin.fit("linear", "lab1", named, epochs=1, **FAST)
    assert run.save() == tmp_path / "mine"
    said = f"^run directory {tmp_path / 'mine'} already exists; choose another name or pass overwrite=True to replace it$"
    with pytest.raises(RiskminError, match=said):
        run.save()
    mc = riskmin.montecarlo("linear", "lab1", config=named, runs=2, epochs=1, **FAST)
    with pytest.raises(RiskminError, match=f"^{tmp_path / 'mine'} holds a run, which overwrite=True does not replace with "
                                           "an experiment: choose another name, or remove it$"):
        mc.save()
    # a path given with overwrite=True: a curve's, an experiment's or a comparison's save replaced the run's files
    curve = riskmin.curve("linear", "lab1", sizes=(0.5, 1.0), runs=2, epochs=1, **FAST)
    compared = riskmin.compare({"a": {"lr": 0.1}, "b": {}}, "lab1", runs=2, epochs=1, **FAST)
    for result in (mc, curve, compared):
        with pytest.raises(RiskminError, match=f"^{tmp_path / 'mine'} holds a run, which overwrite=True does not replace "
                                               "with an experiment: choose another directory, or remove it$"):
            result.save(tmp_path / "mine", overwrite=True)
    assert json.loads((tmp_path / "mine" / "summary.json").read_text())["epochs_run"] == 1  # the run there untouched
    assert (tmp_path / "mine" / "model.safetensors").is_file()


def test_predict_reads_a_file_of_one_row_and_refuses_one_of_none(towns, tmp_path):
    run = riskmin.fit("linear", towns, target="price", epochs=1, **FAST)
    towns.iloc[:1].to_csv(tmp_path / "one.csv", index=False)
    towns.iloc[:0].to_csv(tmp_path / "none.csv", index=False)
    assert riskmin.predict(run, tmp_path / "one.csv") == pytest.approx(riskmin.predict(run, towns.iloc[:1]).to_numpy())
    with pytest.raises(RiskminError, match="none.csv has no rows to predict; give a file with at least one row under its header$"):
        riskmin.predict(run, tmp_path / "none.csv")


def test_an_argument_of_another_call_is_named_as_one_and_a_name_unlike_any_setting_gets_no_guess(tmp_path):
    with pytest.raises(RiskminError, match="^rope is not a setting but an argument of riskmin.compare, which this call "
                                           "does not take$"):
        riskmin.montecarlo("linear", "lab1", runs=2, rope=0.1)
    with pytest.raises(RiskminError, match="^resume is not a setting but an argument of riskmin.fit, riskmin.montecarlo "
                                           "and riskmin.compare, which this call does not take$"):
        riskmin.curve("linear", "lab1", resume=True)
    with pytest.raises(RiskminError, match=r"^unknown setting 'bogus'; help\(riskmin.Config\) lists them$"):
        riskmin.fit("linear", "lab1", bogus=1)
    with pytest.raises(RiskminError, match="^unknown setting 'callback'; did you mean 'callbacks'\\?$"):
        riskmin.fit("linear", "lab1", callback=[])
    with pytest.raises(RiskminError, match="^callbacks is not a setting but an argument of riskmin.fit, which this call "
                                           "does not take$"):
        riskmin.montecarlo("linear", "lab1", runs=2, callbacks=[])
    with pytest.raises(RiskminError, match="^unknown setting 'lrate'; did you mean 'lr'\\?$"):
        riskmin.fit("linear", "lab1", lrate=1)
    (tmp_path / "grid.toml").write_text('rope = 0.1\n[a]\nlr = 0.1\n[b]\nlr = 0.01\n')
    with pytest.raises(RiskminError, match="'rope'; rope is not a setting, and a file holds settings alone: give it on "
                                           "the command line \\(--rope\\)$"):
        riskmin.Config.from_toml(tmp_path / "grid.toml")


def test_run_load_given_a_models_name_says_what_it_takes(tmp_path):
    path = riskmin.fit("linear", "lab1", epochs=1, **FAST).save(tmp_path / "run")
    with pytest.raises(RiskminError, match=r"^model= is a str; Run.load takes a fresh instance of the run's own module"):
        riskmin.Run.load(path, model="linear")  # an AttributeError on named_parameters, before
    assert riskmin.Run.load(path).config.model == "linear"


def test_evaluating_targets_of_other_columns_than_the_run_predicts_is_refused_in_one_sentence():
    torch.manual_seed(0)
    x = torch.randn(200, 4)
    y = x @ torch.randn(4, 2)
    two = riskmin.fit(nn.Linear(4, 2), (x, y), epochs=1, progress=False)
    one = riskmin.fit(nn.Linear(4, 1), (x, y[:, :1]), epochs=1, progress=False)
    # metrics of (n, 2) outputs broadcast against (n, 1) targets came back without a word; 3 columns, torch's error
    for run, given, said in [(two, y[:, :1], "outputs of shape (2,) per sample but the targets have 1 column, and mse would broadcast one against the other; give the targets 2 columns (y0, y1), one for each output"),
                             (one, y, "outputs of shape (1,) per sample but the targets have 2 columns, and mse would broadcast one against the other; give the targets 1 column (y0), one for each output"),
                             (two, torch.cat([y, y[:, :1]], 1), "outputs of shape (2,) per sample but the targets have 3 columns")]:
        with pytest.raises(RiskminError, match="^the model gives " + re.escape(said)):
            riskmin.evaluate(run, (x, given))
    assert riskmin.evaluate(one, (x, y[:, 0]))["loss"] == riskmin.evaluate(one, (x, y[:, :1]))["loss"]  # a vector is the column

    class Squeezed(nn.Module):  # a module of one's own, never trained by riskmin: its own squeeze is said, not y's
        def __init__(self):
            super().__init__()
            self.layer = nn.Linear(4, 1)

        def forward(self, x):
            return self.layer(x).squeeze(1)

    with pytest.raises(RiskminError, match=r"^the model gives one number per sample as a vector, outputs of shape \(n,\), but the targets are a column"):
        riskmin.evaluate(Squeezed(), (x, y[:, :1]))

    class SqueezedAll(Squeezed):  # squeeze() of one row leaves no axis: "outputs of shape () ... give the targets 1 column"
        def forward(self, x):
            return self.layer(x).squeeze()

    with pytest.raises(RiskminError, match=r"^the model gives one number per sample as a vector"):
        riskmin.evaluate(SqueezedAll(), (x, y[:, :1]))


def test_a_model_that_reduces_over_the_batch_is_refused_before_training():
    class Mean(nn.Module):
        def __init__(self):
            super().__init__()
            self.layer = nn.Linear(3, 1)

        def forward(self, x):
            return self.layer(x).mean(0, keepdim=True)

    # torch's "Using a target size that is different to the input size" warning, and a run trained on it
    with pytest.raises(RiskminError, match=r"^the model gives 1 row of outputs for a batch of 2 samples; return one row of outputs per sample"):
        riskmin.fit(Mean(), (torch.randn(50, 3), torch.randn(50, 1)), epochs=1, progress=False)


def test_inputs_named_otherwise_than_forward_takes_them_are_refused_by_predict_and_evaluate():
    a, b = torch.randn(50, 4), torch.randn(50, 3)

    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(4, 1), nn.Linear(3, 1)

        def forward(self, a, b):
            return self.a(a) + self.b(b)

    run = riskmin.fit(Two(), ({"a": a, "b": b}, a[:, :1]), epochs=1, progress=False)
    said = r"^the model's forward takes \(a, b\) but the data gives 2 inputs named a, c"  # forward's TypeError, before
    with pytest.raises(RiskminError, match=said):
        riskmin.predict(run, {"a": a, "c": b})
    with pytest.raises(RiskminError, match=said):
        riskmin.evaluate(run, ({"a": a, "c": b}, a[:, :1]))


def test_target_columns_on_scales_far_apart_are_warned_of_once():
    torch.manual_seed(0)
    x = torch.randn(200, 3)
    y = x[:, :1] * 100 + torch.randn(200, 1)
    # the second column, the first in other units, was learned little (r2 -140) without a word
    with pytest.warns(riskmin.RiskminWarning, match=r"^target columns y0 and y1 spread 1\d\d and 0\.1\d+: the mse of all targets weighs y0's errors 1e\+06 times as much as y1's"):
        riskmin.fit("linear", (x, torch.cat([y, y / 1000], 1)), epochs=1, progress=False)
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        riskmin.montecarlo("linear", (x, torch.cat([y, y / 1000], 1)), runs=3, epochs=1, progress=False)
        riskmin.fit("linear", (x, torch.cat([y, y / 5], 1)), epochs=1, progress=False)  # comparable: nothing said
    assert sum("target columns y0 and y1 spread" in str(w.message) for w in said) == 1
