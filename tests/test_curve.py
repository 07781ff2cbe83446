"""Learning curves: a Monte-Carlo experiment at each training size, for one model or several."""

import csv
import json
import re
import tomllib

import numpy as np
import pytest
import torch

import riskmin
from riskmin import RiskminError
from riskmin._cli._main import main

FAST = dict(epochs=3, progress=False)


def test_each_size_keeps_the_held_out_rows_of_the_full_split_and_trains_on_a_nested_share(tmp_path, recwarn):
    c = riskmin.curve("linear", "lab1", sizes=(1.0, 0.25), runs=5, threads=1, **FAST)  # one thread: see below
    assert [(row["size"], row["n_train"], row["n_test"]) for row in c.table] == [(0.25, 200, 100), (1.0, 800, 100)]
    # run r at 0.25: the validation and test rows of the full split on seed r, and the first quarter of its training
    # rows, which therefore lie within the full size's; the same experiment as montecarlo given those splits
    full = [riskmin.split(riskmin.load("lab1"), val=0.1, test=0.1, seed=r) for r in range(5)]
    quarter = {f"{part}_{r}": rows.numpy() for r, s in enumerate(full)
               for part, rows in (("train", s.train[:200]), ("val", s.val), ("test", s.test))}
    np.savez(tmp_path / "quarter.npz", **quarter)
    alone = riskmin.montecarlo("linear", "lab1", runs=5, splits=str(tmp_path / "quarter.npz"), threads=1, **FAST)
    # the same runs, which a file of splits records without fractions; the closed-form loss comes from LAPACK's least
    # squares, whose threads may move its last bits
    # nor does a curve's row: split(train=0.2, ...) on its seed would draw other validation and test rows
    assert not any(key.startswith("split_") for key in c.results["linear"][0.25].table[0])
    trained = lambda table: [{k: v for k, v in row.items() if k != "closed_form_test_loss" and not k.startswith("split_")}  # noqa: E731
                             for row in table]
    assert trained(c.results["linear"][0.25].table) == trained(alone.table)
    assert [row["closed_form_test_loss"] for row in c.results["linear"][0.25].table] == pytest.approx(
        [row["closed_form_test_loss"] for row in alone.table], rel=1e-12)
    # the statistics of those runs, corrected with the full split's sizes (800 training, 100 test rows) rather than the
    # quarter's 200: its runs share no more rows than the full split's do
    from riskmin.stats import describe_metric

    row, d = c.table[0], describe_metric("test_loss", [r["test_loss"] for r in alone.table], n_train=800, n_test=100)
    assert (row["test_loss"], row["test_loss_ci_low"], row["test_loss_ci_high"]) == (d["mean"], d["corrected_ci_low"], d["corrected_ci_high"])
    assert row["test_loss_ci_scale"] == d["ci_scale"] == "log" and row["test_r2_ci_scale"] == "linear"
    # no correction for train metrics: their naive statistics, named so
    assert row["train_loss_naive_se"] == alone.summary["metrics"]["train_loss"]["naive_se"] and "train_loss_se" not in row


def test_a_batch_larger_than_the_smallest_size_is_refused_before_anything_trains(tmp_path):
    code = main(["curve", "lab1", "--sizes", "0.02,1", "--runs", "3", "--epochs", "2", "--batch-size", "40", "--out", str(tmp_path)])
    assert code == 2 and not list(tmp_path.iterdir())
    with pytest.raises(RiskminError, match=r"batch_size = 40 is larger than the training split of size 0.02 \(16 samples\); "
                                           r"use at most 16"):
        riskmin.curve("linear", "lab1", sizes=(0.02, 1.0), runs=3, batch_size=40, **FAST)


def test_the_default_batch_larger_than_a_size_takes_that_sizes_whole_split_alone(recwarn):
    # one thread in both: threads="auto" picks a count by timing, and another count sums in another order
    c = riskmin.curve("linear", "lab1", sizes=(0.02, 0.03, 1.0), runs=3, threads=1, **FAST)
    assert c.config.batch_size == 32  # what config.toml records, as given
    assert [mc.config.batch_size for mc in c.results["linear"].values()] == [0, 0, 32]
    said = [str(w.message) for w in recwarn if w.category is riskmin.RiskminNote]
    assert said == ["the training splits of size 0.02 (16 rows), 0.03 (24 rows) hold fewer rows than the default batch of "
                    "32; batch_size 0 is used there: each step takes its whole training split"]
    # the largest size trains as a Monte-Carlo experiment of its own would: the same runs, the same numbers
    alone = riskmin.montecarlo("linear", "lab1", runs=3, threads=1, **FAST)
    trained = lambda table: [{k: v for k, v in row.items() if not k.startswith("split_")} for row in table]  # noqa: E731
    assert trained(c.results["linear"][1.0].table) == trained(alone.table)  # (a curve's splits are given, not drawn)


def test_several_models_make_one_curve_each_and_show_themselves(tmp_path):
    c = riskmin.curve(["linear", "two_layer"], "lab1", sizes=(0.5, 1.0), runs=5, hidden=8, **FAST)
    assert [(row["model"], row["size"]) for row in c.table] == [("linear", 0.5), ("linear", 1.0), ("two_layer", 0.5), ("two_layer", 1.0)]
    assert repr(c).startswith("Curve(lab1, 4 experiments of 5 runs; linear: test loss ")
    figure = c.plot()
    assert figure.axes[0].get_xlabel() == "training rows" and len(figure.axes[0].get_lines()) == 4
    target = c.save(tmp_path / "curve")
    assert sorted(p.name for p in target.iterdir()) == ["config.toml", "curve.csv", "curve.png", "runs.csv", "summary.json"]
    rows = list(csv.DictReader(open(target / "curve.csv")))
    assert [float(row["test_loss"]) for row in rows] == pytest.approx([row["test_loss"] for row in c.table])
    assert len(list(csv.DictReader(open(target / "runs.csv")))) == 20
    assert json.loads((target / "summary.json").read_text())["sizes"] == [0.5, 1.0]
    # config.toml names every model and the sizes, as a comparison's names its candidates: not the first model alone
    saved = tomllib.loads((target / "config.toml").read_text())
    assert saved["curve"] == {"models": ["linear", "two_layer"], "sizes": [0.5, 1.0]} and saved["runs"] == 5
    with pytest.raises(RiskminError, match="already exists; pass overwrite=True"):  # as MonteCarlo.save and Comparison.save
        c.save(target)
    assert c.save(target, overwrite=True) == target and (target / "curve.png").is_file()


@pytest.mark.parametrize("settings, message", [
    (dict(sizes=(0.5,)), "sizes = 0.5 is not allowed; give at least two different fractions"),
    (dict(sizes=(0.3, 0.3, 1.0)), "^sizes = 0.3,0.3,1 names 0.3 twice; give each size once$"),
    (dict(sizes=(0.0, 1.0)), "sizes = 0,1 is not allowed"),
    (dict(sizes=(0.5, 1.5)), "sizes = 0.5,1.5 is not allowed"),
    (dict(sizes=("a", 1.0)), "are not all numbers"),
    (dict(folds=5), "a learning curve draws random splits of each training size; leave out --folds and --splits (folds=, splits=)"),
    (dict(model=["linear", "linear"]), "model linear is in the curve twice"),
    (dict(model=["linear", "nope"]), "model = 'nope' is not allowed"),
])
def test_a_bad_curve_is_one_sentence_before_anything_trains(settings, message):
    settings = {"model": "linear", **settings}
    with pytest.raises(RiskminError, match=message.replace("(", r"\(").replace(")", r"\)")):
        riskmin.curve(settings.pop("model"), "lab1", runs=3, **settings, **FAST)


def test_the_command_prints_the_table_and_writes_the_curve(tmp_path, capsys):
    assert main(["curve", "lab1", "--model", "linear,two_layer", "--hidden", "8", "--sizes", "0.5,1", "--runs", "5", "--epochs", "3",
                 "--progress", "off", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "riskmin curve: test risk against training rows, 5 runs a size" in out and "two_layer" in out
    assert " ".join(out.split()).endswith(f"curve written to {tmp_path / 'lab1-curve'}")  # a long path may wrap at 80 columns
    assert (tmp_path / "lab1-curve" / "curve.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["curve", "lab1", "--sizes", "0,2", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("error: sizes = 0,2 is not allowed")


def test_sizes_that_are_not_numbers_are_said_as_the_user_wrote_them(tmp_path, capsys):
    assert main(["curve", "lab1", "--sizes", "0.1,abc", "--out", str(tmp_path)]) == 2
    assert "sizes = 0.1,abc are not all numbers" in capsys.readouterr().err and not list(tmp_path.iterdir())


def test_the_command_says_how_a_file_was_read_and_warns_of_few_runs_once(tmp_path, capsys):
    path = tmp_path / "people.csv"
    rows = [f"{i},{i % 7 * 1.5},{(i * 3) % 11 * 0.5},{i % 7 * 3.0 + 1.0}" for i in range(60)]
    path.write_text("id,a,b,y\n" + "\n".join(rows) + "\n")
    assert main(["curve", str(path), "--target", "y", "--model", "linear,two_layer", "--hidden", "4", "--sizes", "0.5,1", "--batch-size", "8",
                 "--runs", "2", "--epochs", "2", "--progress", "off", "--out", str(tmp_path / "runs")]) == 0
    out, err = capsys.readouterr()
    assert "task: regression (guessed) on y" in out and "left out of the features as row identifiers: id" in out
    assert err.count("warning: intervals from 2 runs are wide") == 1  # once, not once a model or a size


def test_the_progress_says_whose_runs_it_counts(capsys, recwarn):
    riskmin.curve(["linear", "two_layer"], "lab1", sizes=(0.5, 1.0), runs=2, epochs=1, hidden=4)
    said = capsys.readouterr().err.splitlines()
    # each model's sizes together, the largest first, each line followed by the count of that experiment's runs
    assert said[0::2] == ["linear at size 1: 800 training rows", "linear at size 0.5: 400 training rows",
                          "two_layer at size 1: 800 training rows", "two_layer at size 0.5: 400 training rows"]
    assert len(said) == 8 and all(line.startswith("runs finished: 2 of 2 after") for line in said[1::2])


def test_a_curve_gives_its_runs_as_a_table_and_draws_sizes_a_decade_apart_on_a_log_axis(recwarn):
    c = riskmin.curve("linear", "lab1", sizes=(0.1, 1.0), runs=2, epochs=1, progress=False)
    runs = c.to_pandas("runs")
    assert list(runs.columns[:3]) == ["model", "size", "run"] and len(runs) == 4 and sorted(set(runs["size"])) == [0.1, 1.0]
    assert c.plot().axes[0].get_xscale() == "log"  # 80 and 800 rows: evenly apart, not crowded at the left
    near = riskmin.curve("linear", "lab1", sizes=(0.5, 1.0), runs=2, epochs=1, progress=False)
    assert near.plot().axes[0].get_xscale() == "linear"


def test_every_size_is_corrected_with_the_full_splits_ratio(recwarn):
    """A smaller size's runs train on rows nested in the full split's and test on the same rows: they share no more
    than the full split's runs, whose n_test/n_train corrects every size (a size's own, 100/200 here, made its interval
    about twice too wide)."""
    import math
    import statistics

    c = riskmin.curve("linear", "lab1", sizes=(0.25, 1.0), runs=5, epochs=2, progress=False)
    for size, mc in c.results["linear"].items():
        losses = [row["test_loss"] for row in mc.table]
        assert mc.summary["test_train_ratio"] == 100 / 800 and mc.summary["shared_training"] == size
        assert mc.summary["metrics"]["test_loss"]["corrected_se"] == pytest.approx(
            math.sqrt((1 / 5 + 100 / 800) * statistics.variance(losses)), rel=1e-12)
        row = next(r for r in c.table if r["size"] == size)
        assert row["test_loss_se"] == mc.summary["metrics"]["test_loss"]["corrected_se"]


def test_the_folders_config_reruns_the_curve_with_its_models_and_sizes(tmp_path, capsys, recwarn):
    flags = ["--runs", "2", "--epochs", "2", "--threads", "1", "--progress", "off", "--out", str(tmp_path)]
    assert main(["curve", "lab1", "--model", "linear,two_layer", "--hidden", "4", "--sizes", "0.25,1", *flags, "--name", "first"]) == 0
    saved = tmp_path / "first" / "config.toml"
    assert tomllib.loads(saved.read_text())["curve"] == {"models": ["linear", "two_layer"], "sizes": [0.25, 1.0]}
    # --config reads back every model and the sizes, not the first model at the default sizes: the same curve again
    assert main(["curve", "--config", str(saved), "--name", "again", "--progress", "off"]) == 0
    first, again = ((tmp_path / name / "curve.csv").read_text() for name in ("first", "again"))
    assert again == first and len(again.splitlines()) == 1 + 2 * 2
    # flags given with it win over what it records, as over any setting of the file
    assert main(["curve", "--config", str(saved), "--model", "linear", "--sizes", "0.5,1", "--name", "flags", "--progress", "off"]) == 0
    assert tomllib.loads((tmp_path / "flags" / "config.toml").read_text())["curve"] == {"models": ["linear"], "sizes": [0.5, 1.0]}
    capsys.readouterr()
    for command in ("train", "montecarlo", "compare"):  # another command given the curve's settings says whose they are
        assert main([command, "--config", str(saved), "--out", str(tmp_path / "other")]) == 2
        assert capsys.readouterr().err == (f"error: {saved} holds a learning curve's models and sizes ([curve]); run it "
                                           f"with riskmin curve --config {saved}\n")
    assert not (tmp_path / "other").exists()


@pytest.mark.parametrize("table, message", [
    ('models = ["linear"]\nsize = [0.5, 1.0]', "the [curve] table of {path} names a curve's models and sizes; size is neither"),
    ('models = "linear"\nsizes = [0.5, 1.0]', 'models in the [curve] table of {path} is not a list of model names'),
    ('models = ["linear", "Net"]', "models in the [curve] table of {path} name Net, not one of riskmin's (linear, two_layer, "
                                   "mlp); a model of your own, recorded by its name, is trained again from Python: "
                                   "riskmin.curve(['linear', Net], data, ...)"),
    ('sizes = [0.5]', "sizes = 0.5 is not allowed"),
    # beside other tables, a comparison's candidates, one of which is named curve: said as such
    ('lr = 0.1\n["other"]\nlr = 0.01', "{path} holds the tables of a comparison's candidates (curve, other); run it with riskmin compare"),
])
def test_a_bad_curve_table_in_a_config_file_is_one_sentence(tmp_path, capsys, table, message):
    path = tmp_path / "curve.toml"
    path.write_text(f"epochs = 2\n[curve]\n{table}\n")
    assert main(["curve", "lab1", "--config", str(path), "--out", str(tmp_path / "runs")]) == 2
    assert capsys.readouterr().err.startswith(f"error: {message.format(path=path)}") and not (tmp_path / "runs").exists()


def test_a_curve_given_a_directory_writes_its_files_there(tmp_path, recwarn):
    c = riskmin.curve(["linear", "two_layer"], "lab1", sizes=(0.5, 1.0), runs=2, epochs=1, hidden=4, progress=False,
                      directory=tmp_path / "curve")
    folder = tmp_path / "curve"
    assert sorted(p.name for p in folder.iterdir()) == ["config.toml", "curve.csv", "curve.png", "runs.csv", "summary.json"]
    assert [float(row["test_loss"]) for row in csv.DictReader(open(folder / "curve.csv"))] == pytest.approx(
        [row["test_loss"] for row in c.table])
    assert tomllib.loads((folder / "config.toml").read_text())["curve"] == {"models": ["linear", "two_layer"], "sizes": [0.5, 1.0]}
    # replaced with overwrite=True, as montecarlo's and compare's directory
    riskmin.curve("linear", "lab1", sizes=(0.25, 1.0), runs=2, epochs=1, progress=False, directory=folder, overwrite=True)
    assert json.loads((folder / "summary.json").read_text())["sizes"] == [0.25, 1.0]


def test_a_directory_a_curve_may_not_write_is_refused_before_anything_trains(tmp_path, capsys, recwarn):
    riskmin.curve("linear", "lab1", sizes=(0.5, 1.0), runs=2, epochs=1, progress=False, directory=tmp_path / "done")
    before = {p.name: p.read_bytes() for p in (tmp_path / "done").iterdir()}
    (tmp_path / "file").write_text("mine")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    refused = {
        tmp_path / "done": f"directory {tmp_path / 'done'} already exists; pass overwrite=True to replace it, or choose "
                           "another directory",
        tmp_path / "file": f"{tmp_path / 'file'} exists and is not a run directory; remove it or choose another directory",
        tmp_path / "mine": f"{tmp_path / 'mine'} exists and is not a riskmin run; overwrite=True replaces only riskmin's runs",
        tmp_path / "done" / "inner": f"{tmp_path / 'done' / 'inner'} would be inside the experiment directory {tmp_path / 'done'}",
    }
    for directory, message in refused.items():
        with pytest.raises(RiskminError, match=re.escape(message)):
            riskmin.curve("linear", "lab1", sizes=(0.5, 1.0), runs=2, epochs=1, directory=directory)
        assert "training rows" not in capsys.readouterr().err  # said before the first size's progress line
    assert {p.name: p.read_bytes() for p in (tmp_path / "done").iterdir()} == before  # the finished curve as it was
    assert (tmp_path / "file").read_text() == "mine" and [p.name for p in (tmp_path / "mine").iterdir()] == ["notes.txt"]


class Own(torch.nn.Module):
    """A model of one's own for lab1 (10 inputs, 2 outputs)."""

    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(10, 2)

    def forward(self, x):
        return self.layer(x)


def test_a_curve_of_a_model_of_ones_own_records_it_as_custom_and_its_settings_say_so(tmp_path, capsys, recwarn):
    riskmin.curve([Own, "linear"], "lab1", sizes=(0.5, 1.0), runs=2, epochs=1, progress=False, directory=tmp_path / "c")
    saved = tmp_path / "c" / "config.toml"
    recorded = tomllib.loads(saved.read_text())
    assert recorded["model"] == "custom" and recorded["curve"] == {"models": ["Own", "linear"], "sizes": [0.5, 1.0]}
    assert main(["curve", "--config", str(saved), "--out", str(tmp_path / "again")]) == 2
    assert capsys.readouterr().err == (f'error: model = "custom" in {saved} stands for a module of your own, given in '
                                       "Python (riskmin.fit(MyNet(), data)); the command line takes linear, two_layer, "
                                       "mlp\n")
    assert not (tmp_path / "again").exists()


def test_a_model_given_twice_is_refused_before_anything_trains():
    def never():
        raise AssertionError("a model was built")

    with pytest.raises(RiskminError, match="^model never is in the curve twice; give each model once$"):
        riskmin.curve([never, never], "lab1", sizes=(0.5, 1.0), runs=2, epochs=1, progress=False)


def test_a_smallest_size_of_fewer_than_two_training_rows_is_refused_before_anything_trains():
    with pytest.raises(RiskminError, match="^size 0.001 leaves 1 training row of 800, too few to learn from; give sizes of "
                                           "at least 0.0025$"):
        riskmin.curve("linear", "lab1", sizes=(0.001, 1.0), runs=2, epochs=1, progress=False)
    assert riskmin.curve("linear", "lab1", sizes=(0.0025, 1.0), runs=2, epochs=1, progress=False).table[0]["n_train"] == 2


def test_a_curve_interrupted_says_nothing_was_written_and_the_curve_there_is_as_it_was(tmp_path, capsys, monkeypatch):
    from riskmin._experiments import _curve
    from said import unwrapped
    from snapshot import tree

    monkeypatch.chdir(tmp_path)
    command = ["curve", "line", "--model", "linear", "--sizes", "0.5,1", "--runs", "3", "--epochs", "1", "--progress", "off",
               "--name", "cv"]
    assert main(command) == 0
    before = tree(tmp_path)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(_curve, "curve", interrupted)
    capsys.readouterr()
    with pytest.raises(SystemExit) as stopped:
        main([*command, "--overwrite"])
    assert stopped.value.code == 130 and tree(tmp_path) == before
    assert unwrapped(capsys.readouterr().err).strip() == ("interrupted; a curve is written once all its sizes are trained, so "
                                                          "nothing was written; runs/cv is as it was")


def test_the_curve_table_in_60_columns_keeps_each_interval_whole():
    import io
    from types import SimpleNamespace

    from rich.console import Console

    from riskmin._experiments._curve import curve_table

    # diabetes' losses: "3107 [1458," above "6623]", and the header folded
    rows = [{"model": model, "size": size, "n_train": 354 * size, "runs": 3, "test_loss": 3107.0, "test_loss_ci_low": 1458.0,
             "test_loss_ci_high": 6623.0, "train_loss": 3446.0} for model in ("linear", "two_layer") for size in (0.5, 1.0)]
    buffer = io.StringIO()
    curve_table(SimpleNamespace(table=rows, results={}), Console(file=buffer, width=60, color_system=None))
    lines = buffer.getvalue()[:buffer.getvalue().index("CI: ")].splitlines()
    assert all(len(line) <= 60 for line in lines) and "test loss [95% CI]" in lines[2], lines
    assert sum("3107 [1458, 6623]" in line for line in lines) == 4, lines
    # losses in the billions: "two_la…" cut, and below 53 columns the numbers too
    rows = [{**row, "test_loss": 2.36e9, "test_loss_ci_low": 3.53e8, "test_loss_ci_high": 1.57e10} for row in rows]
    buffer = io.StringIO()
    curve_table(SimpleNamespace(table=rows, results={}), Console(file=buffer, width=60, color_system=None))
    out = buffer.getvalue()
    assert out.count("two_layer ") == 2 and out.count("[3.53e+08,") == out.count("1.57e+10]") == 4 and "…" not in out, out
