import json

import pytest
import torch
from torch import nn

import riskmin
from riskmin.cli import main
from riskmin.montecarlo import montecarlo
from riskmin.vectorized import step_unless_frozen
from riskmin.stats import describe, t_quantile

FAST = dict(progress=False)


@pytest.mark.parametrize("model", ["linear", "two_layer", "mlp"])
@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw"])
def test_vectorized_engine_equals_sequential(model, optimizer):
    settings = dict(runs=4, epochs=25, patience=3, batch_size=50, optimizer=optimizer, lr=0.05,
                    hidden=(16, 8) if model == "mlp" else (16,), n_samples=500, **FAST)
    vectorized = montecarlo(model, "lab1", engine="vectorized", **settings)
    sequential = montecarlo(model, "lab1", engine="sequential", **settings)
    assert (vectorized.summary["engine"], sequential.summary["engine"]) == ("vectorized", "sequential")
    assert any(row["stopped_early"] for row in sequential.table)  # early stopping really took part
    for v, s in zip(vectorized.table, sequential.table):
        assert (v["seed"], v["best_epoch"], v["epochs_run"], v["stopped_early"]) == (s["seed"], s["best_epoch"], s["epochs_run"], s["stopped_early"])
        for key in ("train_loss", "val_loss", "test_loss"):
            assert v[key] == pytest.approx(s[key], rel=1e-5), key


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


def test_a_frozen_replica_keeps_its_weights_and_optimizer_state():
    torch.manual_seed(0)
    weights = torch.randn(3, 4, requires_grad=True)
    optimizer = torch.optim.Adam([weights], lr=0.1)
    frozen = torch.tensor([False, True, False])
    for step in range(5):
        if step == 2:
            before = weights.detach().clone()
            state = {k: v.clone() for k, v in optimizer.state[weights].items() if v.shape == weights.shape}
        (weights ** 2).sum().backward()
        step_unless_frozen(optimizer, [weights], frozen if step >= 2 else torch.zeros(3, dtype=torch.bool))
        optimizer.zero_grad()
    assert torch.equal(weights[1], before[1])
    assert not torch.equal(weights[0], before[0]) and not torch.equal(weights[2], before[2])
    for key, value in state.items():
        assert torch.equal(optimizer.state[weights][key][1], value[1]), key


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
    assert (d["ci_low"], d["ci_high"]) == pytest.approx((10 - 2.0639 * 2 / 5, 10 + 2.0639 * 2 / 5), abs=1e-4)


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
    assert "95% CI" in capsys.readouterr().out
    assert main(["train", "--runs", "3"]) == 2  # montecarlo settings are not train flags
