import json
import io
import math

import pytest
import torch
from torch import nn

import riskmin
from said import unwrapped
from riskmin._cli._main import main
from riskmin import montecarlo
from riskmin.stats import describe, t_quantile

FAST = dict(progress=False)


@pytest.mark.parametrize("model", ["linear", "two_layer", "mlp"])
@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw"])
def test_vectorized_engine_equals_sequential(model, optimizer):
    settings = dict(runs=4, epochs=25, patience=3, batch_size=50, optimizer=optimizer, lr=0.2 if optimizer == "sgd" else 0.05,
                    hidden=(16, 8) if model == "mlp" else (16,), n_samples=500, **FAST)
    vectorized = montecarlo(model, "lab1", engine="vectorized", **settings)
    sequential = montecarlo(model, "lab1", engine="sequential", **settings)
    assert (vectorized.summary["engine"], sequential.summary["engine"]) == ("vectorized", "sequential")
    assert any(row["stopped_early"] for row in sequential.table)  # early stopping really took part
    assert_same_tables(vectorized.table, sequential.table)


def assert_same_tables(vectorized: list, sequential: list):
    """The same columns, equal values, and every number to a relative 1e-5."""
    assert len(vectorized) == len(sequential)
    for v, s in zip(vectorized, sequential):
        assert list(v) == list(s)
        for key, value in s.items():
            if isinstance(value, float):
                assert v[key] == pytest.approx(value, rel=1e-5, abs=1e-7), key
            else:
                assert v[key] == value, key


def test_both_engines_report_every_metric_of_a_regression():
    settings = dict(runs=3, epochs=6, patience=2, n_samples=300, **FAST)
    vectorized = montecarlo("two_layer", "lab1", engine="vectorized", **settings)
    assert {"test_mse", "test_rmse", "test_mae", "test_r2", "val_r2", "train_mae"} <= set(vectorized.table[0])
    assert_same_tables(vectorized.table, montecarlo("two_layer", "lab1", engine="sequential", **settings).table)


@pytest.mark.parametrize("loss", ["cross_entropy", "bce"])
def test_both_engines_agree_on_a_classification_with_runs_leaving_the_stack(loss):
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(400, 5, generator=generator)
    labels = (x[:, 0] + 0.5 * x[:, 1] + 0.8 * torch.randn(400, generator=generator) > 0).long()
    y = labels if loss == "cross_entropy" else labels.float()[:, None]
    data = riskmin.Data(x, y)
    settings = dict(runs=5, epochs=40, patience=3, batch_size=32, lr=0.01, loss=loss, monitor="val_accuracy", mode="max", **FAST)
    vectorized = montecarlo("two_layer", data, engine="vectorized", **settings)
    sequential = montecarlo("two_layer", data, engine="sequential", **settings)
    assert {"test_accuracy", "test_f1", "test_log_loss"} <= set(vectorized.table[0])
    assert len({row["epochs_run"] for row in sequential.table}) > 1  # runs left the stack at different epochs
    assert_same_tables(vectorized.table, sequential.table)


@pytest.mark.parametrize("seed", [0, 2])  # the first run's training rows hold the missing value (0) or not (2)
def test_both_engines_agree_when_only_some_training_splits_hold_a_missing_value(seed):
    """A run whose training rows have no missing value still fills one in its validation or test rows with its training
    means, as missing="mean" says (its test loss was NaN); the stack fills as `fit` does, beside runs whose training
    rows held the hole."""
    x = torch.randn(100, 3, generator=torch.Generator().manual_seed(0))
    y = x.sum(1, keepdim=True)
    x[57, 1] = float("nan")
    data = riskmin.Data(x, y, missing="mean")
    settings = dict(runs=10, epochs=3, seed=seed, **FAST)
    vectorized = montecarlo("linear", data, engine="vectorized", **settings)
    sequential = montecarlo("linear", data, engine="sequential", **settings)
    assert vectorized.summary["engine"] == "vectorized"
    assert all(math.isfinite(row["test_loss"]) for row in sequential.table)
    for v, s in zip(vectorized.table, sequential.table):
        for key, value in s.items():
            if isinstance(value, float):
                assert v[key] == pytest.approx(value, rel=1e-5, abs=1e-7, nan_ok=True), key


def test_a_user_module_from_a_callable_is_vectorized_and_equal():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = nn.Linear(10, 6)
            self.outer = nn.Linear(6, 2)

        def forward(self, x):
            return self.outer(torch.tanh(self.inner(x)))

    settings = dict(runs=3, epochs=8, lr=0.01, **FAST)
    vectorized = montecarlo(Net, "lab1", engine="vectorized", **settings)
    sequential = montecarlo(Net, "lab1", engine="sequential", **settings)
    assert [v["test_loss"] for v in vectorized.table] == pytest.approx([s["test_loss"] for s in sequential.table], rel=1e-5)


class OwnScheme(nn.Module):
    """Sets its layers in a scheme of its own, after building them: a constant, so every run starts alike."""

    def __init__(self):
        super().__init__()
        self.inner, self.outer = nn.Linear(10, 6), nn.Linear(6, 2)
        self.reset_parameters()

    def reset_parameters(self):
        for layer in (self.inner, self.outer):
            nn.init.constant_(layer.weight, 0.05)
            nn.init.zeros_(layer.bias)

    def forward(self, x):
        return self.outer(torch.tanh(self.inner(x)))


def test_a_module_given_is_drawn_again_as_its_own_reset_parameters_says_and_one_that_cannot_be_is_refused():
    settings = dict(runs=2, epochs=2, lr=0.01, n_samples=200, engine="sequential", **FAST)
    built, given = montecarlo(OwnScheme, "lab1", **settings), montecarlo(OwnScheme(), "lab1", **settings)
    # the layers' own default drawing came after the module's scheme, and won: the losses differed
    assert [row["test_loss"] for row in given.table] == [row["test_loss"] for row in built.table]

    class Scaled(nn.Module):  # a parameter of its own and no way to draw it again
        def __init__(self):
            super().__init__()
            self.layer, self.scale = nn.Linear(10, 2), nn.Parameter(torch.ones(1))

        def forward(self, x):
            return self.scale * self.layer(x)

    with pytest.raises(riskmin.RiskminError, match=r"^each run trains a fresh copy of the module, its parameters drawn "
                                                   r"again under the run's seed, but Scaled holds parameters and has no "
                                                   r"reset_parameters\(\); pass a factory instead, lambda: Scaled\(...\)"):
        montecarlo(Scaled(), "lab1", **settings)


def test_any_row_rerun_alone_with_riskmin_train_reproduces_it(tmp_path):
    flags = ["--model", "two_layer", "--hidden", "16", "--epochs", "20", "--patience", "3", "--n-samples", "500", "--progress", "off"]
    mc = montecarlo("two_layer", "lab1", runs=5, seed=10, hidden=16, epochs=20, patience=3, n_samples=500, **FAST)
    row = mc.table[3]
    assert row["seed"] == 13 and row["run"] == 3
    assert main(["train", "lab1", *flags, "--seed", str(row["seed"]), "--out", str(tmp_path), "--name", "again"]) == 0
    summary = json.loads((tmp_path / "again" / "summary.json").read_text())
    assert summary["best_epoch"] == row["best_epoch"]
    for key in ("train_loss", "val_loss", "test_loss"):
        assert summary[key] == pytest.approx(row[key], rel=1e-5)


def test_early_stopped_replicas_stop_at_their_own_epoch():
    mc = montecarlo("mlp", "lab1", runs=6, hidden=(32, 32), lr=0.02, epochs=200, patience=4, n_samples=400, engine="vectorized", **FAST)
    stopped = [row for row in mc.table if row["stopped_early"]]
    assert stopped and len({row["epochs_run"] for row in stopped}) > 1
    assert all(row["epochs_run"] - row["best_epoch"] == 4 for row in stopped)


def test_student_t_quantiles_match_the_tables():
    for df, expected in ((1, 12.706), (2, 4.303), (9, 2.262), (29, 2.045), (100, 1.984)):
        assert t_quantile(0.975, df) == pytest.approx(expected, abs=5e-4)
    assert t_quantile(0.95, 10) == pytest.approx(1.812, abs=5e-4)


def test_confidence_interval_of_a_textbook_example():
    # A sample of n = 25 with mean 10 and standard deviation 2: the 95% interval is 10 ± 2.064 · 2 / 5.
    values = [10 + 2 * z for z in (-1, 1) * 12] + [10.0]
    d = describe(values)
    # 24 deviations of ±2 and one of 0: the sample variance is 24 · 4 / (n - 1) = 4 exactly
    assert d["mean"] == pytest.approx(10.0) and d["std"] == pytest.approx(2.0)
    assert (d["naive_ci_low"], d["naive_ci_high"]) == pytest.approx((10 - 2.0639 * 2 / 5, 10 + 2.0639 * 2 / 5), abs=1e-4)


def test_summary_has_every_metric_and_the_gap():
    mc = montecarlo("linear", "lab1", runs=5, epochs=200, optimizer="sgd", lr=0.3, batch_size=0, **FAST)
    metrics = mc.summary["metrics"]
    assert {"train_loss", "val_loss", "test_loss", "gap", "closed_form_test_loss"} <= set(metrics)
    assert metrics["gap"]["mean"] == pytest.approx(metrics["test_loss"]["mean"] - metrics["train_loss"]["mean"])
    assert mc.summary["runs"] == 5 and mc.summary["engine"] == "vectorized" and mc.summary["seconds"] > 0
    for row in mc.table:
        assert row["test_loss"] == pytest.approx(row["closed_form_test_loss"], rel=1e-2)


def batchnorm_net():
    return nn.Sequential(nn.Linear(10, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))


def test_batchnorm_falls_back_to_sequential_with_its_reason():
    mc = montecarlo(batchnorm_net, "lab1", runs=2, epochs=2, **FAST)
    assert mc.summary["engine"] == "sequential"
    assert "BatchNorm" in mc.summary["fallback_reason"] and "BatchNorm" in mc.notes[0]
    with pytest.raises(riskmin.RiskminError, match="vectorized engine cannot run this experiment: .*BatchNorm"):
        montecarlo(batchnorm_net, "lab1", runs=2, epochs=2, engine="vectorized", **FAST)


class Masked(nn.Linear):
    """A constant buffer, no running statistics: it was said to keep BatchNorm's."""

    def __init__(self):
        super().__init__(10, 2)
        self.register_buffer("mask", torch.ones(10))

    def forward(self, x):
        return super().forward(x * self.mask)


def test_a_model_with_buffers_is_told_by_its_buffers_names():
    with pytest.raises(riskmin.RiskminError) as refused:
        montecarlo(Masked, "lab1", runs=2, epochs=1, engine="vectorized", **FAST)
    assert ("the model keeps buffers (mask), such as BatchNorm's running statistics, which a stack does not carry per "
            "run;") in str(refused.value)


@pytest.mark.parametrize("settings, reason", [
    (dict(dropout=0.2, model="mlp"), "dropout"),
    (dict(scheduler="plateau"), "plateau"),
    (dict(clip_grad=1.0), "clipping"),
    (dict(val_every=5), "every N steps"),
])
def test_other_fallbacks_name_their_reason(settings, reason):
    mc = montecarlo(settings.pop("model", "linear"), "lab1", runs=2, epochs=2, **settings, **FAST)
    assert mc.summary["engine"] == "sequential" and reason in mc.summary["fallback_reason"]


def test_chunks_give_the_same_table():
    settings = dict(runs=5, epochs=5, **FAST)
    whole, chunked = montecarlo("two_layer", "lab1", **settings), montecarlo("two_layer", "lab1", chunk=2, **settings)
    assert [r["test_loss"] for r in whole.table] == pytest.approx([r["test_loss"] for r in chunked.table], rel=1e-6)


def test_montecarlo_command_writes_its_files(tmp_path, capsys):
    assert main(["montecarlo", "lab1", "--runs", "4", "--epochs", "3", "--progress", "off", "--out", str(tmp_path), "--name", "mc"]) == 0
    files = {p.name for p in (tmp_path / "mc").iterdir()}
    assert files == {"config.toml", "runs.csv", "summary.json", "montecarlo.png"}
    lines = (tmp_path / "mc" / "runs.csv").read_text().splitlines()
    assert lines[0].startswith("run,seed,best_epoch") and len(lines) == 5
    assert "95% corrected" in capsys.readouterr().out
    assert main(["train", "--runs", "3"]) == 2  # montecarlo settings are not train flags


def test_progress_off_a_terminal_counts_finished_runs_in_lines(capsys):
    montecarlo("linear", "lab1", runs=5, epochs=2, progress=True)  # enough runs that no warning on their number follows
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("runs finished: 5 of 5 after")


def test_an_experiment_where_every_run_diverges_writes_its_table_and_exits_1(tmp_path, capsys):
    code = main(["montecarlo", "lab1", "--runs", "3", "--epochs", "3", "--optimizer", "sgd", "--lr", "100", "--progress", "off",
                 "--out", str(tmp_path), "--name", "lost"])
    err = capsys.readouterr().err
    assert all(len(line) <= 80 for line in err.splitlines())
    err = unwrapped(err).strip().splitlines()
    assert code == 1 and len(err) == 1 and err[0].startswith("error: all 3 runs diverged, so there are no statistics; "
                                                             "lower --lr or clip gradients with --clip-grad 1.0 (the")
    assert len((tmp_path / "lost" / "runs.csv").read_text().splitlines()) == 4
    summary = json.loads((tmp_path / "lost" / "summary.json").read_text())  # strict JSON: no NaN
    assert summary["diverged"] == 3 and summary["used_runs"] == [] and summary["metrics"] == {}


def test_runs_diverging_before_any_finite_weights_have_no_best_epoch_in_either_engine():
    settings = dict(runs=3, epochs=3, optimizer="sgd", lr=1e6, n_samples=200, **FAST)
    for engine in ("vectorized", "sequential"):
        with pytest.warns(riskmin.RiskminNumerics, match="^all 3 runs diverged, so there are no statistics; lower lr= or "
                                                         "clip gradients with clip_grad=1.0$"):
            mc = montecarlo("two_layer", "lab1", engine=engine, **settings)
        assert [(row["diverged"], row["best_epoch"], row["epochs_run"]) for row in mc.table] == [(True, None, 1)] * 3
        assert repr(mc) == "MonteCarlo(lab1, two_layer, 0 of 3 runs, every run diverged)"


def test_some_diverged_runs_are_rows_left_out_of_the_statistics_with_a_warning():
    # full-batch gradient descent at a step near 2 / the largest curvature: on 60 rows some splits diverge, some do not
    with pytest.warns(riskmin.RiskminNumerics) as said:
        mc = montecarlo("linear", "lab1", runs=8, epochs=60, optimizer="sgd", lr=1.7, batch_size=0, n_samples=60, **FAST)
    diverged = [row["run"] for row in mc.table if row["diverged"]]
    assert 0 < len(diverged) < 8
    assert mc.summary["diverged"] == len(diverged) and mc.summary["diverged_runs"] == diverged
    assert f"{len(diverged)} of 8 runs diverged and are left out of the statistics; lower --lr (lr=)" in [
        str(w.message)[:len(f"{len(diverged)} of 8 runs diverged and are left out of the statistics; lower --lr (lr=)")]
        for w in said]
    assert mc.summary["metrics"]["test_loss"]["n"] == 8 - len(diverged)


def test_given_splits_reproduce_a_fit_on_the_same_rows(tmp_path):
    import numpy as np

    order = np.random.default_rng(0).permutation(300)
    arrays = {"train_0": order[:200], "val_0": order[200:250], "test_0": order[250:],
              "train_1": order[100:], "val_1": order[50:100], "test_1": order[:50]}
    np.savez(tmp_path / "protocol.npz", **arrays)
    settings = dict(epochs=6, patience=2, n_samples=300, **FAST)
    mc = montecarlo("two_layer", "lab1", splits=str(tmp_path / "protocol.npz"), **settings)
    assert [row["run"] for row in mc.table] == [0, 1] and mc.summary["n_train"] == 200.0
    data = riskmin.load("lab1", riskmin.Config(n_samples=300))
    parts = [torch.as_tensor(arrays[f"{part}_1"]) for part in ("train", "val", "test")]
    alone = riskmin.fit("two_layer", riskmin.Splits(data, *parts), seed=mc.table[1]["seed"], **settings)
    for key in ("train_loss", "val_loss", "test_loss", "test_r2"):
        assert mc.table[1][key] == pytest.approx(alone.summary[key], rel=1e-5), key


def test_classification_experiments_are_stratified_unless_asked_not_to():
    from riskmin._experiments._montecarlo import experiment_splits

    x = torch.randn(400, 3, generator=torch.Generator().manual_seed(1))
    data = riskmin.Data(x, (torch.arange(400) < 12).long())  # 3% positives
    positives = lambda config: [int(data.y[s.test].sum()) for _, _, s in experiment_splits(data, config)]  # noqa: E731
    assert all(count in (1, 2) for count in positives(riskmin.Config(runs=50)))  # 40 test rows: 1.2 positives each
    assert min(positives(riskmin.Config(runs=50, stratify=False))) == 0  # plain random splits leave some without one
    assert montecarlo("linear", data, runs=3, epochs=1, **FAST).summary["n_test"] == 40


def test_repeated_kfold_rows_name_their_repetition_and_fold():
    mc = montecarlo("linear", "lab1", runs=6, folds=3, epochs=2, n_samples=300, **FAST)
    assert [(row["repetition"], row["fold"]) for row in mc.table] == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]
    # 300 rows: test folds of 100, 10% of the rest to val: the ratio used is 100/180, not Bouckaert and Frank's 1/(K-1)
    assert mc.summary["correction"] == "Nadeau-Bengio" and mc.summary["test_train_ratio"] == pytest.approx(100 / 180)
    assert mc.summary["val_train_ratio"] == pytest.approx(20 / 180)
    plain = montecarlo("linear", "lab1", runs=6, folds=3, val=0.0, epochs=2, n_samples=300, **FAST)
    assert plain.summary["correction"] == "Bouckaert-Frank" and plain.summary["test_train_ratio"] == pytest.approx(1 / 2)


def test_metrics_on_held_out_rows_are_corrected_for_their_own_split_and_the_rest_are_not():
    mc = montecarlo("linear", "lab1", runs=8, epochs=2, val=0.2, test=0.1, **FAST)  # 1000 rows: 700 train, 200 val, 100 test
    metrics = mc.summary["metrics"]
    for name, ratio in (("test_loss", 100 / 700), ("val_loss", 200 / 700)):
        d = metrics[name]
        assert d["corrected_se"] == pytest.approx(d["std"] * math.sqrt(1 / 8 + ratio)), name
    for name in ("train_loss", "gap", "best_epoch"):
        assert metrics[name]["corrected_se"] is None and metrics[name]["naive_se"] is not None, name


def test_kfold_runs_round_up_to_whole_repetitions_with_a_note_and_few_runs_warn(recwarn):
    mc = montecarlo("linear", "lab1", runs=4, folds=3, epochs=2, n_samples=300, **FAST)
    said = [str(w.message) for w in recwarn if issubclass(w.category, riskmin.RiskminWarning)]
    assert len(mc.table) == 6 and said == ["runs = 4 is not a whole number of repetitions of 3 folds, so 6 runs were trained "
                                           "(2 repetitions)"]
    montecarlo("linear", "lab1", runs=2, epochs=2, **FAST)
    assert str(recwarn[-1].message).startswith("intervals from 2 runs are wide and unstable (the 95% t quantile is 12.71")


def test_one_run_warns_that_it_gives_no_interval_and_the_table_says_so(recwarn):
    from rich.console import Console

    from riskmin._runs._report import montecarlo_table

    mc = montecarlo("linear", "lab1", runs=1, epochs=2, **FAST)
    assert str(recwarn[-1].message).startswith("one run gives no interval")
    buffer = io.StringIO()
    montecarlo_table(mc.summary, Console(file=buffer, width=80, color_system=None))
    assert "No interval: it needs the spread of at least two runs." in buffer.getvalue()
    assert "The corrected interval" not in buffer.getvalue()


def test_a_stack_gives_the_same_bits_on_one_thread_and_on_two():
    # what lets threads="auto" choose the count by timing epochs: the choice cannot change a number
    settings = dict(runs=20, epochs=6, patience=2, n_samples=300, **FAST)
    one, two = (montecarlo("two_layer", "lab1", engine="vectorized", threads=t, **settings) for t in ("1", "2"))
    assert one.table == two.table


def trial_on_a_clock(monkeypatch, seconds):
    """A two-core MeasuredThreads whose clock reads `seconds` in turn, and the list of the thread counts it sets."""
    from riskmin._training import _threads

    clock = iter(seconds)
    monkeypatch.setattr(_threads.time, "perf_counter", lambda: next(clock))
    chosen = []
    monkeypatch.setattr(_threads.torch, "set_num_threads", chosen.append)
    monkeypatch.setattr(_threads.torch, "get_num_threads", lambda: chosen[-1] if chosen else 1)
    return _threads.MeasuredThreads(cores=2), chosen


@pytest.mark.parametrize("seconds, kept", [((0.0, 4.0, 4.0, 6.0), 2), ((0.0, 4.0, 4.0, 12.0), 1)])
def test_auto_threads_keep_the_count_whose_timed_epoch_was_cheaper(monkeypatch, seconds, kept):
    # epoch 2 at one thread takes 4 s, epoch 3 at two threads 2 s or 8 s
    threads, chosen = trial_on_a_clock(monkeypatch, seconds)
    for epoch in range(1, 6):
        threads.start()
        threads.end(work=100)
    assert chosen == [1, 2, kept]


def test_a_thread_trial_that_serves_several_experiments_gives_each_its_choice(monkeypatch):
    threads, chosen = trial_on_a_clock(monkeypatch, (0.0, 4.0, 4.0, 6.0))  # every core won the trial
    for epoch in range(1, 5):
        threads.start()
        threads.end(work=100)
    chosen.append(1)  # the next experiment (a learning curve's next size) begins on one thread, as every one does
    threads.start()
    assert chosen == [1, 2, 2, 1, 2]


def test_a_learning_curve_tries_the_thread_counts_once_a_model(monkeypatch):
    from riskmin._experiments import _montecarlo
    from riskmin._training import _threads

    made = []

    class Counted(_threads.MeasuredThreads):
        def __init__(self, cores):
            super().__init__(cores)
            made.append(self)

    monkeypatch.setattr(_threads, "MeasuredThreads", Counted)
    monkeypatch.setattr(_montecarlo, "MeasuredThreads", Counted)
    trained, experiments = [], _montecarlo.experiments

    def recorded(model, data, config, *rest, **options):
        trained.append((model, config.train))
        return experiments(model, data, config, *rest, **options)

    monkeypatch.setattr(_montecarlo, "experiments", recorded)
    riskmin.curve(["linear", "two_layer"], "lab1", sizes=(0.25, 0.5, 1.0), runs=3, epochs=4, threads="auto", **FAST)
    assert len(made) == 2 and all(trial.epoch == 3 * 4 for trial in made)  # each model's three sizes, 4 epochs each
    assert [train for _, train in trained] == [0.8, 0.4, 0.2] * 2  # the largest first: its long epochs are timed
    made.clear()
    # batch_size 0, each step the whole training split: the smaller size steps less than the trial timed, and tries alone
    riskmin.curve("linear", "lab1", sizes=(0.5, 1.0), runs=3, epochs=4, batch_size=0, threads="auto", **FAST)
    assert [trial.epoch for trial in made] == [4, 4]


def test_auto_threads_leave_a_slow_trial_of_every_core_after_a_few_steps(monkeypatch):
    # epoch 2: 100 run-steps in 4 s; epoch 3's third step of 10 runs at 6 s: 5x slower
    threads, chosen = trial_on_a_clock(monkeypatch, (0.0, 4.0, 4.0, 10.0))
    threads.start(), threads.end(work=0)  # epoch 1: warming up, not timed
    threads.start(), threads.end(work=100)
    threads.start()
    for _ in range(3):
        threads.step(runs=10)
    assert chosen == [1, 2, 1]  # back to one thread at once, not at the end of the epoch
    threads.end(work=100)
    threads.start(), threads.end(work=100)
    assert chosen == [1, 2, 1]


STACK_OPTIMIZERS = [("sgd", {}), ("sgd", {"momentum": 0.9, "weight_decay": 0.01}), ("sgd", {"momentum": 0.9, "nesterov": True}),
                    ("adam", {}), ("adam", {"weight_decay": 0.1, "beta1": 0.8, "beta2": 0.99, "eps": 1e-6}), ("adamw", {})]


@pytest.mark.parametrize("name,options", STACK_OPTIMIZERS)
def test_the_stacks_own_optimizer_steps_bitwise_as_torchs_single_tensor_one(name, options):
    from riskmin._training._optim import OPTIMIZERS, PerRun, weight_decay
    from riskmin._experiments._vectorized import kept_state

    config = riskmin.Config(optimizer=name, lr=0.01, **options)
    generator = torch.Generator().manual_seed(0)
    start = [torch.randn(6, 4, 3, generator=generator), torch.randn(6, 4, generator=generator)]
    ours, theirs = ([w.clone().requires_grad_() for w in start] for _ in range(2))
    own = {"momentum": config.momentum, "nesterov": config.nesterov} if name == "sgd" else \
        {"betas": (config.beta1, config.beta2), "eps": config.eps}

    def torchs(params):
        return OPTIMIZERS[name](params, lr=0.01, foreach=False, weight_decay=weight_decay(config), **own)
    optimizer, reference = PerRun.alike(ours, config, runs=6), torchs(theirs)
    for i in range(5):
        for mine, other in zip(ours, theirs):
            mine.grad = torch.randn(mine.shape, generator=generator)
            other.grad = mine.grad.clone()
        if i == 3:  # a parameter without a gradient is left as it is, its step count too
            ours[1].grad = theirs[1].grad = None
        optimizer.step()
        reference.step()
        if i == 2:  # a smaller stack takes the state over, as when runs leave
            kept = torch.tensor([0, 2, 5])
            ours, theirs = ([w.detach()[kept].requires_grad_() for w in ws] for ws in (ours, theirs))
            state, old = optimizer.state_dict(), reference.state_dict()
            optimizer, reference = PerRun.alike(ours, config, runs=3), torchs(theirs)
            optimizer.load_state_dict(kept_state(state, kept))
            reference.load_state_dict(kept_state(old, kept))
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs))
    for mine, other in zip(optimizer.state_dict()["state"].values(), reference.state_dict()["state"].values()):
        assert mine.keys() == other.keys() and all(torch.equal(torch.as_tensor(mine[k]).float(), other[k].float()) for k in mine)


@pytest.mark.parametrize("name,options", STACK_OPTIMIZERS)
def test_runs_of_one_stack_with_their_own_settings_step_as_their_own_torch_optimizers(name, options):
    from riskmin._training._optim import OPTIMIZERS, PerRun

    config = riskmin.Config(optimizer=name, **options)
    rates, decays = torch.tensor([0.1, 0.01, 0.01]), torch.tensor([0.0, 0.0, 0.05])
    momenta = torch.tensor([0.9, 0.3 if config.nesterov else 0.0, 0.5])  # torch takes nesterov only with a momentum
    generator = torch.Generator().manual_seed(1)
    start = [torch.randn(3, 5, 2, generator=generator), torch.randn(3, 5, generator=generator)]
    stacked = [w.clone().requires_grad_() for w in start]
    optimizer = PerRun(stacked, config, rates, decays, momenta if name == "sgd" else None)
    alone = [[w[r].clone().requires_grad_() for w in start] for r in range(3)]
    own = {"nesterov": config.nesterov} if name == "sgd" else {"betas": (config.beta1, config.beta2), "eps": config.eps}
    theirs = [OPTIMIZERS[name](ws, lr=float(rates[r]), weight_decay=float(decays[r]), foreach=False, **own,
                               **({"momentum": float(momenta[r])} if name == "sgd" else {})) for r, ws in enumerate(alone)]
    for _ in range(6):
        for w in stacked:
            w.grad = torch.randn(w.shape, generator=generator)
        for r, ws in enumerate(alone):
            for w, big in zip(ws, stacked):
                w.grad = big.grad[r].clone()
        optimizer.step()
        for other in theirs:
            other.step()
    for r, ws in enumerate(alone):
        for w, big in zip(ws, stacked):
            torch.testing.assert_close(big.detach()[r], w.detach(), rtol=1e-6, atol=1e-7)


def test_an_experiment_at_its_defaults_never_imports_torch_dynamo():
    # torch.optim's first use imports torch._dynamo: about 1.5 s of the command, which the stacked engine does without
    import subprocess
    import sys

    code = ("import sys, riskmin; riskmin.montecarlo('two_layer', 'lab1', runs=3, epochs=2, n_samples=100, progress=False); "
            "print('torch._dynamo' in sys.modules, 'torch.optim' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "True"]


def test_plot_without_a_path_returns_the_figure(tmp_path):
    mc = montecarlo("linear", "lab1", runs=4, epochs=2, progress=False)
    figure = mc.plot()
    assert len(figure.axes) == 2 and figure.axes[0].get_xlabel() == "test loss"
    assert mc.plot(tmp_path / "mc.png") == tmp_path / "mc.png" and (tmp_path / "mc.png").read_bytes()[:4] == b"\x89PNG"


def test_a_python_experiment_whose_last_run_would_pass_the_largest_seed_is_refused_before_training():
    from riskmin.config import LARGEST_SEED

    with pytest.raises(riskmin.RiskminError, match=f"seed = {LARGEST_SEED - 1} with runs = 3 gives the last run the seed"):
        montecarlo("linear", "lab1", runs=3, seed=LARGEST_SEED - 1, epochs=1, progress=False)
    with pytest.raises(riskmin.RiskminError, match="gives the last run the seed"):
        riskmin.compare({"a": {"lr": 0.1}, "b": {"lr": 0.01}}, "lab1", runs=3, seed=LARGEST_SEED, epochs=1, progress=False)


TEST_ROWS_NEEDED = "test = 0 leaves the experiment's splits no test rows to estimate the risk on; set --test 0.1 (test=0.1)"


@pytest.mark.parametrize("command", [
    ["montecarlo", "lab1", "--val", "0"],
    ["compare", "lab1", "--model", "linear,two_layer"],
    ["curve", "lab1"],
])
def test_an_experiment_without_test_rows_is_refused_before_anything_trains_or_is_written(command, tmp_path, capsys):
    code = main([*command, "--test", "0", "--runs", "3", "--epochs", "1", "--progress", "off", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and TEST_ROWS_NEEDED in err and "runs finished" not in err and not list(tmp_path.iterdir())


def test_k_folds_need_no_test_fraction():
    mc = montecarlo("linear", "lab1", runs=3, folds=3, test=0.0, epochs=1, progress=False)  # each fold is a test set
    assert mc.summary["used_runs"] == [0, 1, 2] and mc.summary["n_test"] > 300


def test_a_python_experiment_without_test_rows_is_refused_before_training():
    for experiment in (lambda: montecarlo("linear", "lab1", runs=3, test=0.0, epochs=1, progress=False),
                       lambda: riskmin.compare({"a": {"lr": 0.1}, "b": {"lr": 0.01}}, "lab1", runs=3, test=0.0, epochs=1,
                                               progress=False),
                       lambda: riskmin.curve("linear", "lab1", runs=3, test=0.0, epochs=1, progress=False)):
        with pytest.raises(riskmin.RiskminError, match=TEST_ROWS_NEEDED.replace("(", r"\(").replace(")", r"\)")):
            experiment()


def test_a_progress_line_off_a_terminal_says_the_time_left(capsys, monkeypatch):
    from riskmin._experiments import _montecarlo as _experiments

    clock = iter([0.0, 12.0, 30.0])  # start, then the moments two batches of runs finish
    monkeypatch.setattr(_experiments.time, "monotonic", lambda: next(clock))
    with _experiments.ProgressBar(riskmin.Config(), total=40) as finished:
        finished(10)
        finished(30)
    assert capsys.readouterr().err.splitlines() == ["runs finished: 10 of 40 after 12 s; about 36 s left",
                                                    "runs finished: 40 of 40 after 30 s"]

@pytest.mark.parametrize("engine", ["sequential", "vectorized"])
def test_both_engines_say_the_constant_feature_columns_once_for_the_experiment(engine):
    """Like scikit-learn's digits: a pixel blank in every row, and one blank but in two rows, which is constant on the
    training splits that leave both out. Each run's split finds its own; the experiment says them once."""
    generator = torch.Generator().manual_seed(0)
    x = torch.zeros(200, 3)
    x[[17, 150], 1] = 4.0
    x[:, 2] = torch.randn(200, generator=generator)
    data = riskmin.Data(x, torch.randn(200, 1, generator=generator), ["blank", "rare", "noise"])
    with pytest.warns(riskmin.RiskminWarning) as caught:
        riskmin.montecarlo("linear", data, runs=8, engine=engine, epochs=1, progress=False)
    assert [str(w.message) for w in caught if "constant" in str(w.message)] == [
        "feature columns blank are constant on the training split of every run, rare on that of 1 of the 8 runs; "
        "they carry no information"]


@pytest.mark.parametrize("engine", ["sequential", "vectorized"])
def test_both_engines_say_a_target_constant_on_some_training_splits_once(engine):
    """A target of zeros but in two rows: constant on the training splits that leave both out, said once for all."""
    x = torch.randn(200, 2, generator=torch.Generator().manual_seed(0))
    y = torch.zeros(200, 1)
    y[[17, 150]] = 4.0
    with pytest.warns(riskmin.RiskminWarning) as caught:
        riskmin.montecarlo("linear", riskmin.Data(x, y), runs=8, engine=engine, epochs=1, progress=False)
    assert [str(w.message) for w in caught if "target is constant" in str(w.message)] == [
        "the target is constant on the training split of 1 of the 8 runs; a model can only learn that constant there, "
        "and r2 is undefined"]
    with pytest.warns(riskmin.RiskminWarning, match=r"^the target is constant on the training split \(every value 0\)"):
        riskmin.fit("linear", (x[:50], torch.zeros(50, 1)), epochs=1, progress=False)


def test_the_correction_note_speaks_of_val_metrics_only_where_there_are_some():
    from riskmin._runs._report import correction_note

    summary = {"used_runs": [0, 1], "test_train_ratio": 0.25, "correction": "Nadeau-Bengio", "metrics": {}}
    assert "val_" not in correction_note({**summary, "val_train_ratio": None})  # --val 0: no val_ metrics
    assert "the val_ ones are those of the epoch each run chose by them" in correction_note({**summary, "val_train_ratio": 0.125})


@pytest.mark.parametrize("huge", [False, True])  # numbers that fit on a line each, and numbers too wide to
def test_the_table_keeps_numbers_whole_where_they_fit_and_every_name_at_80_columns(huge, recwarn):
    import numpy as np
    from rich.console import Console

    from riskmin._runs._report import NAME, montecarlo_rows, montecarlo_table

    table = pytest.importorskip("sklearn.datasets").load_diabetes(as_frame=True, scaled=False).frame
    if huge:  # a target in the billions: errors of 1e8, losses of 1e17
        table["target"] = table["target"] * np.float32(1.2345e7)
    mc = montecarlo("linear", table, target="target", target_transform="log", runs=5, epochs=5, progress=False)
    buffer = io.StringIO()
    montecarlo_table(mc.summary, Console(file=buffer, width=80, color_system=None))
    lines = buffer.getvalue().splitlines()
    assert all(len(line) <= 80 for line in lines)
    rows = montecarlo_rows(mc.summary)
    assert all(any(line.startswith(f"│ {row[0].split()[0]} ") for line in lines) for row in rows)  # each name begins
    fits = NAME + sum(max(len(row[i]) for row in rows) for i in (1, 2, 3)) + 13 <= 80
    assert fits != huge
    for row in rows:  # a mean whole on its line; an interval too, or, where they do not fit, cut after its comma alone
        assert any(row[1] in line for line in lines)
        for cell in row[2:]:
            assert any(cell in line for line in lines) or not fits and all(
                any(part in line for line in lines) for part in cell.split(", "))
