import csv
import json
import io
import re
import math
import statistics

import pytest
import torch
from scipy import stats as scipy_stats

import riskmin
from riskmin import MonteCarlo, RiskminError, compare
from riskmin._cli._main import main
from riskmin._experiments._candidates import candidate_configs, grid
from riskmin._experiments._compare import comparison_summary, ranked_rows, selection, selection_text, stacks
from riskmin.stats import summarize
from said import unwrapped

SMALL = dict(epochs=4, n_samples=200, progress=False)


def made_up(test_losses: list, val_losses: list = None) -> MonteCarlo:
    """A Monte-Carlo result whose per-split losses are given, as `montecarlo` would return it on 80/20 splits."""
    val_losses = val_losses or test_losses
    table = [{"run": r, "seed": r, "diverged": not math.isfinite(v), "val_loss": v, "test_loss": t}
             for r, (v, t) in enumerate(zip(val_losses, test_losses))]
    summary = summarize(table, n_train=80, n_test=20)
    summary.update(n_train=80, n_test=20, engine="vectorized", seconds=0.0)
    return MonteCarlo(table, summary, riskmin.Config())


def scored(test_accuracies: list, val_accuracies: list = None, val_losses: list = None) -> MonteCarlo:
    """A Monte-Carlo result of a classifier whose per-split accuracies (and validation losses) are given, on 80/20
    splits; its test loss is 1 - its test accuracy."""
    n = len(test_accuracies)
    val_accuracies, val_losses = val_accuracies or [1.0] * n, val_losses or [1.0] * n
    table = [{"run": r, "seed": r, "diverged": False, "val_accuracy": a, "val_loss": v, "test_accuracy": t,
              "test_loss": 1 - t} for r, (a, v, t) in enumerate(zip(val_accuracies, val_losses, test_accuracies))]
    summary = summarize(table, n_train=80, n_test=20)
    return MonteCarlo(table, {**summary, "n_train": 80, "n_test": 20, "engine": "vectorized", "seconds": 0.0},
                      riskmin.Config())


def test_paired_differences_and_p_values_match_a_hand_computation():
    best, near, far = [1.0, 2.0, 3.0, 4.0], [1.5, 2.1, 3.6, 4.2], [3.0, 4.5, 5.0, 7.5]
    summary = comparison_summary({"near": made_up(near), "best": made_up(best), "far": made_up(far)}, "loss", "min", None)
    assert summary["best"] == "best" and summary["ranking"] == ["best", "near", "far"]
    p_values = {}
    for name, values in (("near", near), ("far", far)):
        differences = [a - b for a, b in zip(values, best)]
        mean = sum(differences) / 4
        variance = sum((d - mean) ** 2 for d in differences) / 3
        corrected_se = math.sqrt((1 / 4 + 20 / 80) * variance)
        naive_p = 2 * scipy_stats.t.sf(abs(mean / math.sqrt(variance / 4)), 3)
        corrected_p = 2 * scipy_stats.t.sf(abs(mean / corrected_se), 3)
        quantile = scipy_stats.t.ppf(0.975, 3)
        test = summary["comparisons"]["test_loss"][name]
        assert test["mean"] == pytest.approx(mean)
        assert test["naive_p_value"] == pytest.approx(naive_p, rel=1e-6)
        assert test["corrected_p_value"] == pytest.approx(corrected_p, rel=1e-6)
        assert test["corrected_ci_low"] == pytest.approx(mean - quantile * corrected_se, rel=1e-6)
        p_values[name] = corrected_p
    low, high = sorted(p_values.values())  # Holm: the smaller p times 2, the larger times 1, kept in order
    adjusted = {name: summary["comparisons"]["test_loss"][name]["holm_p_value"] for name in p_values}
    assert sorted(adjusted.values()) == pytest.approx([min(1, 2 * low), max(min(1, 2 * low), high)])
    expected_close = [name for name in ("near", "far") if adjusted[name] >= 0.05]
    assert summary["not_distinguished"] == expected_close


def test_a_candidate_whose_runs_all_diverged_ranks_last_and_is_not_called_as_good():
    nan = math.nan
    summary = comparison_summary({"lost": made_up([nan, nan, nan]), "a": made_up([1.0, 2.0, 3.0]), "b": made_up([1.1, 2.0, 3.2])},
                                 "loss", "min", None)
    assert summary["ranking"] == ["a", "b", "lost"]
    assert summary["comparisons"]["test_loss"]["lost"]["holm_p_value"] is None
    assert "lost" not in summary["not_distinguished"]


def test_a_candidate_whose_runs_diverged_ranks_after_those_that_finished_and_the_table_says_on_how_many_splits():
    nan = math.nan
    results = {"erratic": made_up([0.5, nan, 0.6, nan]), "steady": made_up([2.0, 2.1, 1.9, 2.2]),
               "slow": made_up([3.0, 3.1, 2.9, 3.3])}
    summary = comparison_summary(results, "loss", "min", None)
    assert summary["ranking"] == ["steady", "slow", "erratic"]  # erratic's mean, 0.55, rests on the 2 splits it survived
    rows = ranked_rows(summary)
    assert [row[1] for row in rows] == ["steady", "slow", "erratic (2 of 4 splits)"]
    # the mark of a candidate not told apart from the best stays beside a name that says its splits
    assert [row[0].endswith("*") for row in rows] == [False] + [name in summary["not_distinguished"] for name in ("slow", "erratic")]
    assert "erratic" in summary["not_distinguished"]
    # two that diverged: the one that failed in fewer splits first, where the other's mean over fewer splits won
    results = {"often": made_up([0.5, nan, nan, nan]), "once": made_up([2.0, 2.1, nan, 2.2]), "steady": results["steady"]}
    assert comparison_summary(results, "loss", "min", None)["ranking"] == ["steady", "once", "often"]


def test_nested_selection_takes_the_test_loss_of_the_validation_choice_in_each_split():
    # split:          0    1    2    3 (a diverged in 3, b in 2)
    a = made_up(test_losses=[5.0, 2.0, 3.0, math.nan], val_losses=[1.0, 3.0, 1.0, math.nan])
    b = made_up(test_losses=[1.0, 4.0, math.nan, 6.0], val_losses=[2.0, 1.0, math.nan, 2.0])
    results = {"a": a, "b": b}
    summary = comparison_summary(results, "loss", "min", None)
    table = [{"candidate": name, **row} for name, mc in results.items() for row in mc.table]
    chosen, rows = selection(table, ["a", "b"], "loss", "min", summary)
    assert rows == {("a", 0), ("b", 1), ("a", 2), ("b", 3)}
    assert chosen["chosen"] == {"a": 2, "b": 2}
    assert chosen["estimate"]["mean"] == pytest.approx((5.0 + 4.0 + 3.0 + 6.0) / 4)
    assert summary["best"] == "a"  # both diverged once: mean test loss 10/3 over the runs that did not, against 11/3
    # the optimism, paired over the splits where the best has a test loss: chosen 5, 4, 3 against a's own 5, 2, 3
    differences = [0.0, 2.0, 0.0]
    assert chosen["optimism"]["mean"] == pytest.approx(2 / 3)
    assert chosen["optimism"]["corrected_se"] == pytest.approx(math.sqrt((1 / 3 + 20 / 80) * statistics.variance(differences)))
    assert chosen["ties"] == 0


def test_selection_ties_go_to_the_candidate_given_first_and_are_counted():
    a = made_up(test_losses=[5.0, 2.0, 3.0], val_losses=[1.0, 3.0, 1.0])
    b = made_up(test_losses=[1.0, 4.0, 9.0], val_losses=[1.0, 1.0, 1.0])  # ties with a in splits 0 and 2
    results = {"a": a, "b": b}
    summary = comparison_summary(results, "loss", "min", None)
    table = [{"candidate": name, **row} for name, mc in results.items() for row in mc.table]
    chosen, rows = selection(table, ["a", "b"], "loss", "min", summary)
    assert rows == {("a", 0), ("b", 1), ("a", 2)} and chosen["ties"] == 2 and chosen["tie_rule"] == "the candidate given first"
    assert "Ties on the validation metric in 2 split(s), each to the candidate given first." in selection_text(
        {**summary, "selection": chosen})


def test_selection_by_accuracy_breaks_its_ties_by_the_validation_loss():
    # every split ties on accuracy; b has the lower validation loss in splits 0 and 2, a in split 1
    results = {"a": scored([0.8, 0.9, 0.7], val_accuracies=[0.9, 0.9, 0.9], val_losses=[0.5, 0.2, 0.5]),
               "b": scored([0.85, 0.6, 0.95], val_accuracies=[0.9, 0.9, 0.9], val_losses=[0.3, 0.4, 0.3])}
    summary = comparison_summary(results, "accuracy", "max", None)
    table = [{"candidate": name, **row} for name, mc in results.items() for row in mc.table]
    chosen, rows = selection(table, ["a", "b"], "accuracy", "max", summary)
    assert rows == {("b", 0), ("a", 1), ("b", 2)} and chosen["ties"] == 3
    assert chosen["estimate"]["mean"] == pytest.approx((0.85 + 0.9 + 0.95) / 3)
    assert chosen["tie_rule"] == "the lower val loss, then the candidate given first"


def test_select_without_validation_rows_is_refused_in_one_sentence():
    with pytest.raises(riskmin.RiskminError, match="select chooses a candidate in each split by val_loss, but val = 0"):
        compare({"a": {"lr": 0.01}, "b": {"lr": 0.1}}, "lab1", runs=3, val=0.0, select=True, epochs=1, progress=False)


def test_select_over_a_file_of_splits_without_validation_rows_is_refused_before_anything_trains(tmp_path, monkeypatch, capsys):
    import riskmin._experiments._compare

    path = tmp_path / "splits.csv"
    path.write_text("train,test\n" + "\n".join(f"{' '.join(map(str, range(r, 80 + r)))},{' '.join(map(str, range(80 + r, 100 + r)))}"
                                                for r in range(3)) + "\n")
    monkeypatch.setattr(riskmin._experiments._compare, "kept_comparison", lambda *args: pytest.fail("it trained"))
    with pytest.raises(riskmin.RiskminError, match=f"but split 0 of {path} has no validation rows; give every split a val column"):
        compare({"a": {"lr": 0.01}, "b": {"lr": 0.1}}, "lab1", splits=str(path), select=True, epochs=1, progress=False)
    # the command line trained every candidate and wrote "no split had a validation metric to choose by", exit 0
    assert main(["compare", "lab1", "--lr", "0.01,0.1", "--splits", str(path), "--select", "--epochs", "1",
                 "--out", str(tmp_path / "runs")]) == 2
    assert f"but split 0 of {path} has no validation rows" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_nested_selection_maximizes_a_metric_that_should_go_up():
    table = [{"candidate": "a", "run": 0, "val_accuracy": 0.9, "test_accuracy": 0.7},
             {"candidate": "b", "run": 0, "val_accuracy": 0.8, "test_accuracy": 0.95}]
    summary = {"n_train": 80, "n_test": 20, "best": "b", "candidates": {"b": {"metrics": {"test_accuracy": {"mean": 0.95}}}}}
    chosen, _ = selection(table, ["a", "b"], "accuracy", "max", summary)
    assert chosen["chosen"] == {"a": 1, "b": 0} and chosen["optimism"]["mean"] == pytest.approx(0.25)


def test_a_setting_that_does_not_apply_does_not_multiply_a_candidate():
    candidates = grid({"model": ["linear", "two_layer"], "hidden": [(32,), (128,)], "optimizer": ["adam", "sgd"], "momentum": [0.0, 0.9]})
    assert list(candidates)[:3] == ["linear optimizer=adam", "linear optimizer=sgd momentum=0",
                                   "linear optimizer=sgd momentum=0.9"]
    assert len(candidates) == 3 + 2 * 3
    assert candidates["two_layer hidden=32 optimizer=sgd momentum=0.9"] == {"model": "two_layer", "hidden": (32,), "optimizer": "sgd", "momentum": 0.9}


def test_every_row_reruns_alone_with_fit_and_its_candidates_settings():
    candidates = {"narrow": {"hidden": 8, "lr": 0.02}, "linear": {"model": "linear"}}
    result = compare(candidates, "lab1", runs=3, seed=5, **SMALL)
    seeds = {name: [row["seed"] for row in result.table if row["candidate"] == name] for name in candidates}
    assert seeds == {"narrow": [5, 6, 7], "linear": [5, 6, 7]}  # the same splits for every candidate
    row = next(row for row in result.table if row["candidate"] == "narrow" and row["run"] == 2)
    run = riskmin.fit("two_layer", "lab1", seed=row["seed"], **candidates["narrow"], **SMALL)
    for key in ("train_loss", "val_loss", "test_loss"):
        assert run.summary[key] == pytest.approx(row[key], rel=1e-5)


def test_the_command_writes_its_files_and_its_grid_reads_back(tmp_path, capsys):
    flags = ["--epochs", "3", "--n-samples", "200", "--runs", "3", "--progress", "off", "--out", str(tmp_path)]
    assert main(["compare", "lab1", "--model", "linear,two_layer", "--hidden", "4/8", "--select", *flags, "--name", "grid"]) == 0
    out = capsys.readouterr().out
    assert "ranked on test loss" in out and "nested estimate" in out and max(map(len, out.splitlines())) <= 80
    folder = tmp_path / "grid"
    assert {p.name for p in folder.iterdir()} == {"config.toml", "runs.csv", "comparison.csv", "summary.json", "compare.png"}
    summary = json.loads((folder / "summary.json").read_text(), parse_constant=lambda name: pytest.fail(f"{name} in JSON"))
    assert set(summary["candidates"]) == {"linear", "two_layer hidden=4", "two_layer hidden=8"}
    assert sum(summary["selection"]["chosen"].values()) == 3
    # the ratios of the corrections, as montecarlo's summary gives them: 20 test and 20 validation rows of 160 training
    assert (summary["test_train_ratio"], summary["val_train_ratio"]) == (20 / 160, 20 / 160)
    said = unwrapped(out).replace("\n", " ")
    assert "adjusted for the 2 comparisons, so a * can stand beside an interval that leaves out 0" in said
    with open(folder / "comparison.csv", newline="") as file:
        scales = {(row["metric"], row["ci_scale"]) for row in csv.DictReader(file)}
    assert {("test_loss", "log"), ("test_r2", "linear"), ("val_mae", "log")} <= scales
    lines = (folder / "runs.csv").read_text().splitlines()
    assert lines[0].startswith("candidate,model,hidden,run,seed") and len(lines) == 1 + 3 * 3
    with open(folder / "runs.csv", newline="") as file:
        selected = [row["run"] for row in csv.DictReader(file) if row["selected"] == "True"]
    assert sorted(selected) == ["0", "1", "2"]  # one chosen candidate in every split
    assert main(["compare", "--config", str(folder / "config.toml"), "--name", "again", "--progress", "off"]) == 0
    again = json.loads((tmp_path / "again" / "summary.json").read_text())
    assert again["ranking"] == summary["ranking"]
    assert again["comparisons"]["test_loss"] == summary["comparisons"]["test_loss"]


def test_a_flag_beside_tables_that_set_it_to_the_same_value_runs(tmp_path, capsys):
    # rerunning a comparison with the flags it began with; the widths checked alone, not in a default two_layer
    (tmp_path / "grid.toml").write_text('model = "mlp"\nepochs = 1\n[a]\nhidden = [8, 8]\nlr = 0.01\n[b]\nhidden = [8, 8]\nlr = 0.1\n')
    assert main(["compare", "lab1", "--config", str(tmp_path / "grid.toml"), "--hidden", "8,8", "--runs", "2", "--progress", "off",
                 "--out", str(tmp_path / "runs")]) == 0, capsys.readouterr().err


@pytest.mark.parametrize("flags, message", [
    (["--lr", "0.01"], "no setting has alternatives"),
    (["--model", "two_layer", "--hidden", "32,128"], "'/' for --hidden"),
    (["--lr", "0.01,-1"], "candidate 'lr=-1': lr = -1.0 is out of range"),
    (["--lr", "0.1,0.2", "--seed", "0,1"], "seed takes one value"),
    (["--lr", "0.1,0.2", "--metric", "accurcy"], "metric 'accurcy' is not one riskmin measures"),
    (["--lr", "0.1,0.2", "--hiden", "4"], "unknown option --hiden; did you mean --hidden?"),
    (["--config", "GRID", "--lr", "0.1,0.2"], "cannot take alternatives too"),
    # a table's own value trained, and config.toml recorded the flag's as shared, without a word
    (["--config", "GRID", "--hidden", "8"], "--hidden and candidate a's table in the --config file both set hidden; give it in one place"),
    (["--config", "TYPO"], "candidate 'b': unknown setting 'hiden'"),
])
@pytest.mark.parametrize("nproc", [[], ["--nproc", "2"]])
def test_a_bad_grid_is_one_error_line_and_nothing_is_written(tmp_path, capsys, monkeypatch, flags, message, nproc):
    (tmp_path / "grid.toml").write_text('epochs = 2\n[a]\nhidden = 4\n[b]\nhidden = 8\n')
    (tmp_path / "typo.toml").write_text('[a]\nhidden = 4\n[b]\nhiden = 8\n')
    flags = [{"GRID": str(tmp_path / "grid.toml"), "TYPO": str(tmp_path / "typo.toml")}.get(flag, flag) for flag in flags]
    monkeypatch.setattr(riskmin.distributed, "start", lambda *args: pytest.fail("processes started for a bad grid"))
    assert main(["compare", "lab1", *flags, "--out", str(tmp_path / "runs"), *nproc]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.splitlines()) == 1
    assert captured.err.startswith("error: ") and message in captured.err
    assert not (tmp_path / "runs").exists()


def test_nproc_checks_the_grid_and_the_directory_once_then_starts_the_same_command_in_n_processes(tmp_path, capsys, monkeypatch):
    started = []
    monkeypatch.setattr(riskmin.distributed, "start", lambda count, argv: started.append((count, argv)) or (0, None))
    grid = ["compare", "lab1", "--lr", "0.01,0.1", "--out", str(tmp_path)]
    assert main([*grid, "--nproc", "3", "--name", "mine"]) == 0
    assert started == [(3, [*grid, "--name", "mine"])]
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "runs.csv").write_text("run\n")  # an empty folder would be taken, with a note
    assert main([*grid, "--nproc=2", "--name", "mine"]) == 2
    assert capsys.readouterr().err == (f"error: {tmp_path / 'mine'} exists and is not a riskmin run; --overwrite replaces "
                                       "only riskmin's runs and experiments: remove it or choose another --name\n")
    assert len(started) == 1


def test_a_candidate_may_not_change_the_splits():
    with pytest.raises(riskmin.RiskminError, match="candidate 'b' sets seed, which every candidate shares"):
        compare({"a": {}, "b": {"seed": 3}}, "lab1", runs=2, **SMALL)


def test_a_module_class_is_a_candidate_recorded_by_its_name(tmp_path):
    class Tanh(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner, self.outer = torch.nn.Linear(10, 4), torch.nn.Linear(4, 2)

        def forward(self, x):
            return self.outer(torch.tanh(self.inner(x)))

    shared = compare({"fast": {"lr": 0.1}, "slow": {"lr": 0.001}}, "lab1", runs=2, model=Tanh, **SMALL)
    assert {row["model"] for row in shared.table} == {Tanh.__qualname__}
    result = compare({"tanh": {"model": Tanh}, "linear": {"model": "linear"}}, "lab1", runs=2, **SMALL)
    assert {row["model"] for row in result.table} == {"linear", Tanh.__qualname__}
    grid_file = (result.save(tmp_path / "out") / "config.toml").read_text()
    assert '["tanh"]\nmodel = "custom"\nmodel_class = "test_compare.test_a_module_class' in grid_file


def test_a_metric_the_task_does_not_measure_is_refused_before_training():
    with pytest.raises(riskmin.RiskminError, match="metric accuracy is not measured for this task; choose one of loss, mse"):
        compare({"a": {"lr": 0.1}, "b": {"lr": 0.01}}, "lab1", runs=2, metric="accuracy", **SMALL)


def test_candidates_of_different_losses_are_not_ranked_by_their_losses_and_a_metric_not_of_the_test_rows_is_refused():
    """An l1 candidate's mean absolute error ranked best beside an mse one's squared error, with --select choosing it in
    every split; --metric train_loss ranked on the test loss without a word."""
    losses = {"mse": {"loss": "mse"}, "l1": {"loss": "l1"}}
    with pytest.raises(riskmin.RiskminError) as refused:
        compare(losses, "lab1", runs=2, **SMALL)
    assert str(refused.value) == (
        "the candidates train different losses (mse, l1), whose test losses are in other units, so ranking them by the "
        'loss would compare those units; rank them by a metric they share: --metric mse (metric="mse"), or rmse, mae, r2')
    assert compare(losses, "lab1", runs=2, metric="mae", **SMALL).summary["metric"] == "test_mae"
    for metric in ("train_loss", "val_loss"):
        with pytest.raises(riskmin.RiskminError, match=f"^metric '{metric}' is not what compare ranks by: it ranks the "
                                                       r"candidates on their test rows, where the risk is estimated; give "
                                                       r"loss \(the test loss\)$"):
            compare({"a": {"lr": 0.1}, "b": {"lr": 0.01}}, "lab1", runs=2, metric=metric, **SMALL)


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd"])
def test_candidates_differing_in_lr_weight_decay_and_momentum_train_in_one_stack_with_the_numbers_of_separate_fits(optimizer):
    candidates = {"fast": {"lr": 0.03}, "slow": {"lr": 0.005, "weight_decay": 0.01}, "middle": {"lr": 0.01, "weight_decay": 0.001}}
    if optimizer == "sgd":  # momentum differs by candidate too, none for one of them
        candidates = {name: {**own, "momentum": momentum} for (name, own), momentum in zip(candidates.items(), (0.9, 0.0, 0.5))}
    settings = dict(runs=3, epochs=15, patience=3, n_samples=300, optimizer=optimizer, progress=False)
    assert len(stacks(candidate_configs(candidates, riskmin.Config(**settings)))) == 1  # all three in one stack
    stacked, alone = stacked_and_alone(candidates, settings)
    assert any(row["stopped_early"] for row in alone.table)  # early stopping took part, and runs left the stack
    assert_same_rows(stacked, alone)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_candidates_differing_in_schedule_train_in_one_stack_with_the_numbers_of_separate_fits(optimizer):
    candidates = {"steady": {"lr": 0.02}, "cosine": {"lr": 0.03, "scheduler": "cosine"},
                  "step": {"scheduler": "step", "step_size": 3, "gamma": 0.5},
                  "steeper": {"lr": 0.03, "scheduler": "step", "step_size": 2, "gamma": 0.2}}
    settings = dict(runs=3, epochs=15, patience=3, n_samples=300, optimizer=optimizer, lr=0.01, progress=False)
    if optimizer == "sgd":
        settings["momentum"] = 0.9  # so that some runs stop early
    assert len(stacks(candidate_configs(candidates, riskmin.Config(**settings)))) == 1  # all four in one stack
    stacked, alone = stacked_and_alone(candidates, settings)
    assert {row["stopped_early"] for row in alone.table} == {True, False}  # runs left the stack while others trained on
    assert_same_rows(stacked, alone)


def test_a_plateau_candidate_is_a_stack_of_its_own():
    candidates = {"none": {}, "step": {"scheduler": "step"}, "plateau": {"scheduler": "plateau"}, "later": {"scheduler": "plateau", "lr": 0.1}}
    assert stacks(candidate_configs(candidates, riskmin.Config())) == [["none", "step"], ["plateau"], ["later"]]


def test_candidates_on_a_schedule_no_stack_draws_per_run_train_alone_as_montecarlo_trains_them():
    # one_cycle and linear_warmup were stacked with the others and refused as reacting to a metric, which they do not
    candidates = {"plain": {}, "cycle": {"scheduler": "one_cycle"}, "warm": {"scheduler": "linear_warmup"},
                  "warmer": {"scheduler": "linear_warmup", "lr": 0.05}}
    assert stacks(candidate_configs(candidates, riskmin.Config())) == [["plain"], ["cycle"], ["warm"], ["warmer"]]
    compared = riskmin.compare(candidates, "lab1", runs=2, **SMALL)
    alone = riskmin.montecarlo("two_layer", "lab1", runs=2, scheduler="linear_warmup", lr=0.05, **SMALL)
    assert [row["test_loss"] for row in compared.table if row["candidate"] == "warmer"] == [row["test_loss"] for row in alone.table]


def stacked_and_alone(candidates: dict, settings: dict) -> tuple:
    """The comparison trained in stacks, and the same through separate fits (the sequential engine)."""
    return riskmin.compare(candidates, "lab1", **settings), riskmin.compare(candidates, "lab1", engine="sequential", **settings)


def assert_same_rows(stacked, alone) -> None:
    """Every row of `stacked` holds what `alone` holds: the same columns, the same flags, numbers to relative 1e-5."""
    assert [row["candidate"] for row in stacked.table] == [row["candidate"] for row in alone.table]
    for mine, theirs in zip(stacked.table, alone.table):
        assert list(mine) == list(theirs)
        for key, value in theirs.items():
            if isinstance(value, float):
                assert mine[key] == pytest.approx(value, rel=1e-5, abs=1e-7), (mine["candidate"], key)
            else:
                assert mine[key] == value, (mine["candidate"], key)


def test_a_grid_leaves_out_a_network_it_already_has_and_says_so(recwarn):
    candidates = grid({"model": ["linear", "two_layer", "mlp"]})
    assert list(candidates) == ["linear", "two_layer"]  # mlp's default width is two_layer's: the same weights
    [note] = [str(w.message) for w in recwarn if issubclass(w.category, riskmin.RiskminWarning)]
    assert note == "mlp is the same network as two_layer (one hidden layer, no dropout), so it is left out"
    torch.manual_seed(0)
    two_layer = riskmin.models.TwoLayerNN(3, 1, 8)
    torch.manual_seed(0)
    mlp = riskmin.models.MLP(3, 1, (8,))
    assert all(torch.equal(a, b) for a, b in zip(two_layer.parameters(), mlp.parameters()))  # the assumption the note rests on


def test_widths_two_layer_cannot_take_leave_it_out_of_that_combination():
    candidates = grid({"model": ["linear", "two_layer", "mlp"], "hidden": [(64, 64), (64,)], "dropout": [0.0, 0.2]})
    assert candidates == {"linear": {"model": "linear"}, "two_layer hidden=64": {"model": "two_layer", "hidden": (64,)},
                          "mlp hidden=64,64 dropout=0": {"model": "mlp", "hidden": (64, 64), "dropout": 0.0},
                          "mlp hidden=64,64 dropout=0.2": {"model": "mlp", "hidden": (64, 64), "dropout": 0.2},
                          "mlp hidden=64 dropout=0.2": {"model": "mlp", "hidden": (64,), "dropout": 0.2}}
    with pytest.raises(riskmin.RiskminError, match="gives two_layer 2 widths"):  # no width fits two_layer: its own error
        candidate_configs(grid({"model": ["two_layer", "mlp"], "hidden": [(64, 64)]}), riskmin.Config())


@pytest.mark.parametrize("scale", [1, 1000])  # 1000: a regression's loss in the thousands, as on a table of prices
def test_the_ranked_table_keeps_every_number_whole_at_80_columns(scale):
    from rich.console import Console

    from riskmin._experiments._compare import comparison_table, ranked_rows

    best = [scale * v for v in (1.0001234, 1.99995, 3.00001, 4.00003, 2.5, 3.3)]
    results = {"b": made_up(best)}  # the others differ from it by about i, nearly the same in every split: p of 1e-8 and less
    results.update({f"candidate number {i} with a long name": made_up([v + scale * (i * 1.23456 + 0.001 * (-1) ** k)
                                                                       for k, v in enumerate(best)])
                    for i in range(1, 4)})
    summary = comparison_summary(results, "loss", "min", None)
    buffer = io.StringIO()
    comparison_table(summary, Console(file=buffer, width=80, color_system=None))
    text = buffer.getvalue()
    assert all(len(line) <= 80 for line in text.splitlines())
    cells = [cell for row in ranked_rows(summary) for cell in row[2:] if cell]
    assert any("e-" in cell for cell in cells) and all(cell in text for cell in cells), [c for c in cells if c not in text]


def test_a_grids_long_names_fold_and_leave_every_number_whole_at_80_columns():
    from rich.console import Console

    from riskmin._experiments._compare import comparison_table, ranked_rows

    # names without a space to break at, and numbers as wide as they come: small differences, intervals to the 1e-5
    best = [0.32612, 0.31255, 0.33871, 0.32094, 0.33318, 0.31702]
    results = {"lr=0.01 weight_decay=0.0001": made_up(best)}
    results.update({f"lr=0.0{i} weight_decay=0.000{i}": made_up([v + 0.000384 * i + 0.0009 * (-1) ** k * (k % 3)
                                                                 for k, v in enumerate(best)]) for i in range(2, 4)})
    summary = comparison_summary(results, "loss", "min", None)
    buffer = io.StringIO()
    comparison_table(summary, Console(file=buffer, width=80, color_system=None))
    text = buffer.getvalue()
    assert all(len(line) <= 80 for line in text.splitlines()) and "p Holm" in text
    # every number whole on its line: a mean may go above its interval, when the names need the room
    pieces = [piece for row in ranked_rows(summary) for cell in row[2:] if cell for piece in cell.split(" [", 1)]
    assert all(piece in text for piece in pieces), [p for p in pieces if p not in text]
    names, lines = [], []  # each name put back together from its lines: a row's first after the rank, those indented 3
    for line in text.splitlines()[3:]:  # after the title, the header and the rule
        if line.startswith("CI:"):
            break
        if line[:1].isdigit():
            names.append(line[3:].split("  ")[0].strip())
        elif line.startswith("   ") and line[3:4].strip():
            names[-1] += line[3:].split("  ")[0].strip()
        lines.append(line[3:].split("  ")[0].strip())
    assert [name.replace(" ", "") for name in names] == [name.replace(" ", "") for name in summary["ranking"]]
    settings = {piece for name in summary["ranking"] for piece in re.findall(r"[^= ]+=?", name)}
    assert all(piece in settings for line in lines for piece in re.findall(r"[^= ]+=?", line)), lines  # broken at = only


def test_a_grids_names_fold_between_their_settings_where_each_fits_on_a_line():
    from rich.console import Console

    from riskmin._experiments._compare import comparison_table

    # the trial's grid: the name column of about 19 held "hidden=64,64 lr=" and left "0.01" for the next line
    best = [0.38, 0.33, 0.41, 0.36, 0.39, 0.35]
    names = [f"hidden={h} lr={lr}" for lr in ("0.01", "0.001") for h in ("64,64", "32,32", "16,16,16")]
    results = {name: made_up([v * (1 + 0.37 * i) + 0.01 * k for k, v in enumerate(best)]) for i, name in enumerate(names)}
    text = io.StringIO()
    comparison_table(comparison_summary(results, "loss", "min", None), Console(file=text, width=80, color_system=None))
    lines = text.getvalue().split("CI:")[0].splitlines()[3:]  # the rows, after the title, the header and the rule
    folded = [re.sub(r"^\d+\*? +", "", line.strip()).split("  ")[0] for line in lines]  # without the rank
    assert len(folded) == 2 * len(names)  # each name on two lines: it does not fit on one
    assert all(word in [f"hidden={h}" for h in ("64,64", "32,32", "16,16,16")] + ["lr=0.01", "lr=0.001"]
               for line in folded for word in line.split()), folded


def test_the_command_prints_and_writes_the_bayesian_comparison_and_the_detectable_difference(tmp_path, capsys):
    assert main(["compare", "lab1", "--model", "linear,two_layer", "--runs", "6", "--epochs", "3", "--rope", "0.05",
                 "--progress", "off", "--out", str(tmp_path), "--name", "c"]) == 0
    out = capsys.readouterr().out
    assert "practically equal within +-0.05 test loss" in out and "P(worse)" in out
    assert "shows P(worse) > 0.95 up to about 10% of the time, > 0.975 about 5%" in unwrapped(out).replace("\n", " ")
    assert "Holm-adjusted corrected p >= 0.05. The intervals of the loss" in unwrapped(out).replace("\n", " ")  # one test
    rows = [row for row in csv.DictReader(open(tmp_path / "c" / "comparison.csv")) if row["metric"] == "test_loss" and row["difference"]]
    [row] = rows
    assert float(row["rope"]) == 0.05 and float(row["detectable"]) > 0
    probabilities = [float(row[key]) for key in ("p_worse", "p_equivalent", "p_better")]
    assert all(0 <= p <= 1 for p in probabilities) and sum(probabilities) == pytest.approx(1.0)
    assert main(["compare", "lab1", "--model", "linear,two_layer", "--rope", "-1", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("error: rope = -1.0 is not allowed; give the half-width")


def test_a_rope_that_looks_given_as_a_fraction_of_a_loss_is_noted_with_the_width_of_one_percent(tmp_path, capsys):
    # --rope 0.01 on a loss in the thousands counted nearly nothing as practically equal, without a word
    c = compare({"small": {"hidden": 4}, "large": {"hidden": 16}}, "lab1", runs=2, rope=1e-5, **SMALL)
    best = c.summary["candidates"][c.summary["best"]]["metrics"]["test_loss"]["mean"]
    [note] = [n for n in c.notes if n.startswith("rope 1e-05")]
    assert note.endswith(f"so only differences up to 1e-05 count as practically equal; 1% of that mean is {0.01 * best:.3g}")
    assert main(["compare", "lab1", "--model", "linear,two_layer", "--runs", "2", "--epochs", "1", "--rope", "100",
                 "--progress", "off", "--out", str(tmp_path), "--name", "c"]) == 0
    assert "note: rope 100 is in test loss's own units: " in unwrapped(capsys.readouterr().out)
    quiet = compare({"small": {"hidden": 4}, "large": {"hidden": 16}}, "lab1", runs=2, rope=0.01 * best, **SMALL)
    assert not [n for n in quiet.notes if n.startswith("rope")]  # a width near the default's says nothing


def test_the_picture_of_many_candidates_draws_the_best_30_within_a_screen():
    from riskmin._experiments._compare import plot_comparison

    ranking = [f"c{i}" for i in range(45)]
    table = [{"candidate": name, "run": run, "test_loss": float(i + run)} for i, name in enumerate(ranking) for run in range(3)]
    figure = plot_comparison(table, ranking, "test_loss")
    [axis] = figure.axes
    assert [label.get_text() for label in axis.get_xticklabels()] == ranking[:30]
    assert figure.get_size_inches()[0] * figure.dpi <= 1920 and "the best 30 of 45" in axis.get_title()


def test_the_picture_gives_each_candidate_its_posterior_against_the_best_and_the_regions_width():
    from riskmin._experiments._compare import plot_comparison

    ranking = ["best", "near"]
    table = [{"candidate": name, "run": run, "test_loss": 1.0 + run + (name == "near") * 0.01} for name in ranking for run in range(3)]
    near = {"p_worse": 0.061, "p_equivalent": 0.934, "p_better": 0.005, "rope": 0.0125}
    figure = plot_comparison(table, ranking, "test_loss", tests={"near": near})
    labels = [label.get_text() for label in figure.axes[0].get_xticklabels()]
    assert labels == ["best", "near\n0.06/0.93/0.01"]
    assert figure.axes[0].get_xlabel() == ("under each name: P(worse/equal/better) against the best,\n"
                                           "practically equal within +-0.0125")
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(figure)  # the words, drawn, lie within the picture: a line of them ran past its edges
    canvas.draw()
    box = figure.axes[0].xaxis.label.get_window_extent(canvas.get_renderer())
    assert 0 <= box.x0 < box.x1 <= figure.bbox.width and box.y0 >= 0


def test_the_progress_says_which_candidates_each_stack_trains(capsys, recwarn):
    compare({"slow": {"lr": 0.01}, "fast": {"lr": 0.1}, "wide": {"model": "two_layer", "hidden": 4}}, "lab1", runs=2,
            epochs=1, n_samples=200)
    said = capsys.readouterr().err.splitlines()
    # candidates that differ only in settings a stack can hold train together; each stack's runs counted after it
    assert said[0::2] == ["stack 1: slow, fast", "stack 2: wide"]
    assert [line.split(" after ")[0] for line in said[1::2]] == ["runs finished: 4 of 4", "runs finished: 2 of 2"]


@pytest.mark.parametrize("settings, message", [
    (dict(runs=1), "runs = 1 gives each candidate one split, on which no difference can be tested; set --runs 2"),
    (dict(runs=3, metric="accuracy", rope=1.0), "rope = 1.0 would count any two values of accuracy, which lie within 1 "
                                                 "of each other, as practically equal"),
    (dict(runs=3, metric="r2", rope=1.0), "^rope = 1.0 would count values of r2 a whole 1 apart, 100 percentage points, "
                                          "as practically equal; give it in the metric's units: 0.01 for one percentage "
                                          "point$"),  # r2 has no lower bound, but is a fraction as accuracy is
])
def test_a_comparison_that_could_tell_nothing_apart_is_refused_before_it_trains(settings, message):
    with pytest.raises(RiskminError, match=message):
        compare({"a": {}, "b": {"lr": 0.1}}, "lab1", epochs=1, progress=False, **settings)


def test_candidates_given_as_a_list_are_asked_for_as_a_dict():
    with pytest.raises(RiskminError, match="^candidates is a list; give a dict of name -> settings"):
        compare(["linear", "two_layer"], "lab1", runs=2, epochs=1, progress=False)


def test_one_repetition_of_k_folds_is_k_splits_to_compare_on(recwarn):
    c = compare({"a": {}, "b": {"lr": 0.1}}, "lab1", folds=3, runs=1, test=0.0, epochs=1, progress=False)
    assert c.summary["runs"] == 3 and c.summary["comparisons"]["test_loss"]["b"]["corrected_p_value"] is not None


def test_a_difference_of_accuracies_keeps_its_interval_within_what_two_accuracies_can_differ_by():
    # two splits far apart: the t interval of 2 runs (quantile 12.7) reaches far below -1
    summary = comparison_summary({"best": scored([1.0, 0.9]), "other": scored([0.5, 0.9])}, "accuracy", "max", None)
    test = summary["comparisons"]["test_accuracy"]["other"]
    assert test["corrected_ci_low"] == -1.0 and test["naive_ci_low"] == -1.0 and test["corrected_ci_high"] <= 1.0
    assert test["mean"] == pytest.approx(-0.25)


def test_a_detectable_difference_wider_than_the_metrics_range_reads_none():
    import io

    from rich.console import Console

    from riskmin._experiments._compare import bayesian_table

    summary = comparison_summary({"best": scored([1.0, 0.9]), "other": scored([0.5, 0.9])}, "accuracy", "max", None)
    assert summary["comparisons"]["test_accuracy"]["other"]["detectable"] > 1  # 2 splits far apart
    buffer = io.StringIO()
    bayesian_table(summary, Console(file=buffer, width=80))
    text = " ".join(buffer.getvalue().split())
    assert "other 0.71 0.01 0.28 none" in text
    assert "none: not even a difference of 1, the widest test accuracy can show." in text


def test_a_setting_a_candidate_leaves_out_reads_as_the_value_it_trained_with(tmp_path):
    result = riskmin.compare({"narrow": {"hidden": 8}, "wide": {"hidden": 128, "lr": 1e-3}, "linear": {"model": "linear"}},
                             "lab1", runs=2, epochs=1, threads=1, progress=False, directory=tmp_path / "c")
    cells = {row["candidate"]: (row["model"], row["hidden"], row["lr"]) for row in result.table}
    # narrow trained two_layer at the shared rate; linear has no hidden layer, so no width is claimed for it
    assert cells == {"narrow": ("two_layer", 8, 0.01), "wide": ("two_layer", 128, 0.001), "linear": ("linear", "", 0.01)}
    with open(tmp_path / "c" / "runs.csv") as file:
        written = {row["candidate"]: (row["model"], row["hidden"], row["lr"]) for row in csv.DictReader(file)}
    assert written == {"narrow": ("two_layer", "8", "0.01"), "wide": ("two_layer", "128", "0.001"), "linear": ("linear", "", "0.01")}


def test_a_candidate_whose_loss_the_targets_cannot_take_is_refused_before_any_stack_trains(tmp_path, capsys):
    from riskmin._cli._main import main

    assert main(["compare", "lab1", "--loss", "mse,cross_entropy", "--runs", "2", "--epochs", "1", "--progress", "on",
                 "--out", str(tmp_path / "runs")]) == 2
    out, err = capsys.readouterr()
    assert err == ("error: candidate 'loss=cross_entropy': loss cross_entropy needs integer class labels but the targets "
                   "are real numbers; use --loss mse (loss=\"mse\") for regression\n")
    assert "stack 1" not in out and not (tmp_path / "runs").exists()  # nothing trained, nothing kept to resume


def test_a_comparisons_own_config_toml_reruns_it_with_its_metric_rope_and_selection(tmp_path, capsys):
    from riskmin._cli._main import main

    grid = ["--model", "linear,two_layer", "--runs", "3", "--epochs", "2", "--hidden", "8", "--progress", "off",
            "--out", str(tmp_path)]
    assert main(["compare", "lab1", *grid, "--metric", "rmse", "--rope", "0.5", "--select", "--name", "first"]) == 0
    assert "\n[comparison]\nmetric = \"rmse\"\nrope = 0.5\nselect = true\n" in (tmp_path / "first" / "config.toml").read_text()
    assert main(["compare", "--config", str(tmp_path / "first" / "config.toml"), "--progress", "off", "--out", str(tmp_path),
                 "--name", "again"]) == 0
    assert (tmp_path / "again" / "comparison.csv").read_bytes() == (tmp_path / "first" / "comparison.csv").read_bytes()
    assert (tmp_path / "again" / "config.toml").read_text() == (tmp_path / "first" / "config.toml").read_text().replace(
        'name = "first"', 'name = "again"')
    summaries = [json.loads((tmp_path / name / "summary.json").read_text()) for name in ("first", "again")]
    assert [s["metric"] for s in summaries] == ["test_rmse"] * 2 and all("selection" in s for s in summaries)
    assert main(["compare", "--config", str(tmp_path / "first" / "config.toml"), "--metric", "loss", "--progress", "off",
                 "--out", str(tmp_path), "--name", "flagged"]) == 0  # a flag overrides the file
    assert json.loads((tmp_path / "flagged" / "summary.json").read_text())["metric"] == "test_loss"



def test_a_comparison_and_a_curve_on_log_targets_say_their_loss_is_of_log_target():
    from riskmin._runs._report import LOG_NOTE

    x = torch.rand(80, 2, generator=torch.Generator().manual_seed(0))
    y = torch.exp(x.sum(1, keepdim=True))
    comparison = compare({"a": {"lr": 0.01}, "b": {"lr": 0.1}}, (x, y), runs=2, epochs=1, target_transform="log",
                         model="linear", progress=False)
    assert LOG_NOTE in comparison.notes
    curve = riskmin.curve("linear", (x, y), sizes=(0.5, 1.0), runs=2, epochs=1, target_transform="log", progress=False)
    assert LOG_NOTE in curve.notes
    assert LOG_NOTE not in compare({"a": {"lr": 0.01}, "b": {"lr": 0.1}}, (x, y), runs=2, epochs=1, model="linear",
                                   progress=False).notes


def test_two_candidates_of_the_same_model_and_settings_are_refused_before_anything_trains():
    with pytest.raises(RiskminError, match="^candidates 'a' and 'b' train the same model with the same settings, so their "
                                           "runs would be the same twice; give each candidate a setting of its own$"):
        compare({"a": {"model": "linear"}, "b": {"model": "linear"}}, "lab1", runs=2, epochs=1, progress=False)
    first, second = (lambda: torch.nn.Linear(10, 2)), (lambda: torch.nn.Linear(10, 2))  # two functions: two models
    assert len(compare({"a": {"model": first}, "b": {"model": second}}, "lab1", runs=2, epochs=1, progress=False).summary["ranking"]) == 2


@pytest.mark.parametrize("flags, why", [
    (["--model", "linear", "--momentum", "0.5,0.9"], "--momentum is not used with --optimizer adam, only with sgd or rmsprop"),
    (["--model", "linear", "--hidden", "8/16"], "--hidden is not used with --model linear, only with two_layer or mlp"),
])
def test_alternatives_that_give_one_candidate_say_which_setting_goes_unused(tmp_path, capsys, flags, why):
    from riskmin._cli._main import main

    assert main(["compare", "lab1", *flags, "--runs", "2", "--epochs", "1", "--out", str(tmp_path / "runs")]) == 2
    assert capsys.readouterr().err == (f"error: the alternatives give one candidate: {why}; give alternatives of a setting "
                                       "the candidates use\n")
    assert not (tmp_path / "runs").exists()


def test_the_ranked_table_in_60_columns_keeps_its_headers_and_numbers_whole(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "60")
    monkeypatch.chdir(tmp_path)
    assert main(["compare", "lab1", "--model", "linear,two_layer", "--lr", "0.01,0.001", "--runs", "5", "--epochs", "3",
                 "--progress", "off"]) == 0
    out = capsys.readouterr().out
    table = out[:out.index("CI: ")].splitlines()
    assert all(len(line) <= 60 for line in table), table
    assert table[1].split() == ["candidate", "mean", "[95%", "CI]", "vs", "best", "[95%", "CI]", "p", "Holm"]
    summary = json.loads((tmp_path / "runs" / "lab1-compare" / "summary.json").read_text())
    for name, candidate in summary["candidates"].items():  # each mean whole, as the ranking rounds it
        assert f"{candidate['metrics']['test_loss']['mean']:.3g}" in out


def test_names_of_a_grid_in_60_columns_fold_between_their_settings_not_inside_them():
    from rich.console import Console

    from riskmin._experiments._compare import comparison_table

    # diabetes' losses: the numbers left the names 7 columns, cut into "two_lay" / "er" / "hidden=" / "8"
    names = ["two_layer hidden=8", "two_layer hidden=32", "linear"]
    stats = {"mean": 2598.0, "corrected_ci_low": 2077.0, "corrected_ci_high": 3250.0}
    test = {"mean": 98.0, "corrected_ci_low": -69.0, "corrected_ci_high": 265.0, "holm_p_value": 0.25}
    summary = {"metric": "test_loss", "best": names[0], "ranking": names, "runs": 3, "not_distinguished": names[1:],
               "candidates": {name: {"metrics": {"test_loss": stats}} for name in names},
               "comparisons": {"test_loss": {name: test for name in names[1:]}}, "mode": "min", "level": 0.05,
               "correction": "Nadeau-Bengio"}
    buffer = io.StringIO()
    comparison_table(summary, Console(file=buffer, width=60, color_system=None))
    out = buffer.getvalue()
    table = out[out.index("candidate"):out.index("CI: ")].splitlines()
    words = [word for line in table[2:] for word in line[:17].split() if not re.fullmatch(r"\d+\*?", word)]
    assert all(len(line) <= 60 for line in table), table
    assert sorted(words) == ["hidden=32", "hidden=8", "linear", "two_layer", "two_layer"], table
    # losses in the billions: the intervals lost their ends ("[3.53e+08, 1.57e+10") and the header its own
    stats = {"mean": 2.36e9, "corrected_ci_low": 3.53e8, "corrected_ci_high": 1.57e10}
    test = {"mean": 4.26e9, "corrected_ci_low": 5.6e8, "corrected_ci_high": 8e9, "holm_p_value": 0.077}
    summary |= {"candidates": {name: {"metrics": {"test_loss": stats}} for name in names},
                "comparisons": {"test_loss": {name: test for name in names[1:]}}}
    buffer = io.StringIO()
    comparison_table(summary, Console(file=buffer, width=60, color_system=None))
    out = buffer.getvalue()
    table = out[out.index("candidate"):out.index("CI: ")].splitlines()
    assert all(len(line) <= 60 for line in table) and "p Holm" in table[0], table
    assert out.count("[3.53e+08,") == out.count("1.57e+10]") == 3 and out.count("[+5.6e+08,") == out.count("+8e+09]") == 2, out


def test_a_rank_of_ten_or_more_stands_apart_from_its_mark():
    import io

    from rich.console import Console

    from riskmin._experiments._compare import comparison_table, ranked_rows

    names = [f"c{i}" for i in range(11)]
    stats = {"mean": 1.0, "corrected_ci_low": 0.9, "corrected_ci_high": 1.1}
    test = {"mean": 0.1, "corrected_ci_low": -0.1, "corrected_ci_high": 0.3, "holm_p_value": 0.5}
    summary = {"metric": "test_loss", "best": "c0", "ranking": names, "runs": 5, "not_distinguished": names[1:],
               "candidates": {name: {"metrics": {"test_loss": stats}} for name in names},
               "comparisons": {"test_loss": {name: test for name in names[1:]}}}
    assert [row[0] for row in ranked_rows(summary)][8:] == ["9*", "10*", "11*"]
    buffer = io.StringIO()
    comparison_table(summary | {"mode": "min", "level": 0.05, "correction": "Nadeau-Bengio"},
                     Console(file=buffer, width=80, color_system=None))
    lines = buffer.getvalue().splitlines()
    assert any(line.startswith("9*  c8 ") for line in lines) and any(line.startswith("10* c9 ") for line in lines), lines
