"""The learning-rate finder: an exponential sweep on a copy of the model, a suggested rate, its picture."""

import math
import warnings

import pytest
import torch

import riskmin
from riskmin import RiskminError
from riskmin._cli._main import main

FAST = dict(progress=False)


def test_the_sweep_grows_exponentially_leaves_the_model_alone_and_suggests_a_rate_that_trains(lab1):
    model = riskmin.models.MLP(lab1.n_features, lab1.n_targets, hidden=(16,))
    before = [p.clone() for p in model.parameters()]
    state = torch.get_rng_state()
    finding = riskmin.lr_find(model, lab1, optimizer="sgd", start=1e-4, end=10.0, steps=100, batch_size=128, **FAST)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters())) and torch.equal(state, torch.get_rng_state())
    ratios = [b / a for a, b in zip(finding.rates, finding.rates[1:])]
    assert finding.rates[0] == 1e-4 and ratios == pytest.approx([(1e5) ** (1 / 99)] * len(ratios))
    assert 0.05 < finding.suggestion < 2.0 and "steepest" in finding.rule
    slow = riskmin.fit(model, lab1, optimizer="sgd", lr=1e-4, epochs=3, **FAST)
    suggested = riskmin.fit(model, lab1, optimizer="sgd", lr=finding.suggestion, epochs=3, **FAST)
    assert suggested.summary["val_loss"] < 0.5 * slow.summary["val_loss"]


def test_the_sweep_stops_when_the_loss_diverges(lab1):
    finding = riskmin.lr_find("mlp", lab1, optimizer="sgd", start=1e-3, end=1e8, steps=100, **FAST)
    assert len(finding.rates) < 100 and all(math.isfinite(v) for v in finding.losses)


def test_a_loss_of_ones_own_below_zero_sweeps_as_its_shifted_self(lab1):
    # loss - 5 has no "four times its lowest": the sweep stopped at its first step, "diverged; lower start"
    plain = riskmin.lr_find("linear", lab1, optimizer="sgd", **FAST)
    shifted = riskmin.lr_find("linear", lab1, optimizer="sgd", loss=lambda o, t: ((o - t) ** 2).mean() - 5.0, **FAST)
    assert len(shifted.rates) > 50 and shifted.suggestion == pytest.approx(plain.suggestion, rel=0.5)
    diverging = riskmin.lr_find("mlp", lab1, optimizer="sgd", start=1e-3, end=1e8, loss=lambda o, t: ((o - t) ** 2).mean() - 5.0, **FAST)
    assert len(diverging.rates) < 100 and all(math.isfinite(v) for v in diverging.losses)  # and it still stops


@pytest.mark.parametrize("settings, message", [(dict(start=1.0, end=0.1), "need 0 < start < end"),
                                               (dict(end=math.inf), "a finite end"),
                                               (dict(steps=2), "steps of at least 5")])
def test_a_bad_sweep_is_one_clear_error(lab1, settings, message):
    with pytest.raises(RiskminError, match=message):
        riskmin.lr_find("linear", lab1, **settings, **FAST)


def test_the_command_prints_the_suggestion_and_draws_the_sweep(tmp_path, capsys):
    picture = tmp_path / "sweep.png"
    assert main(["lr-find", "lab1", "--model", "linear", "--steps", "30", "--plot", str(picture)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("suggested learning rate ") and "steepest descent" in out
    assert max(map(len, out.splitlines())) <= 80 and f"drawn in {picture}" in " ".join(out.split())
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_settings_the_sweep_leaves_unused_are_said_so_from_the_command_and_from_python(tmp_path, capsys, lab1):
    from said import unwrapped

    assert main(["lr-find", "lab1", "--model", "linear", "--steps", "30", "--plot", str(tmp_path / "s.png"), "--out",
                 str(tmp_path / "runs"), "--epochs", "3"]) == 0
    assert unwrapped(capsys.readouterr().out).splitlines()[0] == (
        "note: --epochs and --out are not used by lr-find, which sweeps the rate over --steps and writes only its picture (--plot)")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.png"]
    with pytest.warns(riskmin.RiskminNote, match=r"^patience= is not used by lr_find, which sweeps the rate over steps= "
                                                 r"and draws it with plot\(\)$"):
        riskmin.lr_find("linear", lab1, steps=30, patience=3, **FAST)
    assert "--out" not in main_help("lr-find") and "--optimizer" in main_help("lr-find")


def main_help(command: str) -> str:
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), pytest.raises(SystemExit):
        main([command, "--help"])
    return buffer.getvalue()


def test_the_sweep_is_a_fit_and_honours_gradient_clipping(lab1):
    free = riskmin.lr_find("linear", lab1, optimizer="sgd", start=1e-3, end=1.0, steps=20, **FAST)
    clipped = riskmin.lr_find("linear", lab1, optimizer="sgd", start=1e-3, end=1.0, steps=20, clip_grad=1e-6, **FAST)
    assert free.rates == clipped.rates
    assert free.losses[-1] < 0.75 * clipped.losses[-1]  # the clipped sweep barely moves: its loss stays at the batches' noise


def test_the_sweep_trains_through_a_models_own_training_step(lab1):
    class Own(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.layer, self.calls = torch.nn.Linear(lab1.n_features, lab1.n_targets), 0

        def forward(self, x):
            return self.layer(x)

        def training_step(self, batch):
            self.calls += 1
            x, y = batch
            return torch.nn.functional.mse_loss(self(x), y)

    model = Own()
    finding = riskmin.lr_find(model, lab1, optimizer="sgd", start=1e-3, end=1.0, steps=12, **FAST)
    assert model.calls == 0 and len(finding.rates) == 12  # a copy trained, by its own step


def test_plot_alone_draws_into_the_default_file_its_help_names(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["lr-find", "lab1", "--model", "linear", "--steps", "30", "--plot", "--progress", "off"]) == 0
    assert "drawn in lr_find.png" in " ".join(capsys.readouterr().out.split()) and (tmp_path / "lr_find.png").is_file()


def test_a_noisy_start_of_the_sweep_is_not_taken_for_the_descent():
    """On scikit-learn's diabetes table the loss of batches of 32 is noisy enough that the sweep's smoothed loss dips
    as steeply at 3e-6, where nothing is learned yet, as where it falls for good; the suggestion is taken from a
    descent that gets at least halfway down to the sweep's lowest loss."""
    from sklearn.datasets import load_diabetes

    x, y = load_diabetes(return_X_y=True)
    finding = riskmin.lr_find("linear", (x, y), task="regression", **FAST)
    assert 0.01 < finding.suggestion < 1.0  # where the loss falls for good (it was 3e-6, which trains to r2 -0.4)


def test_a_sweep_over_rates_that_learn_nothing_says_its_suggestion_may_be_noise(lab1, tmp_path, capsys):
    # from 1e-7 to 1e-6 the smoothed loss fell 10% with the batches alone, and 1.4e-7 was suggested without a word
    with pytest.warns(riskmin.RiskminWarning, match=r"^the weights moved by 0\.\d\d% of their size over the sweep from 1e-07 to 1e-06: little was learned at these rates and the suggestion may follow the batches' noise; raise end \(now 1e-06\) to sweep larger rates$"):
        riskmin.lr_find("linear", lab1, start=1e-7, end=1e-6, **FAST)
    with warnings.catch_warnings():
        warnings.simplefilter("error", riskmin.RiskminWarning)
        riskmin.lr_find("linear", lab1, **FAST)  # the default sweep reaches the rates that learn
    assert main(["lr-find", "lab1", "--model", "linear", "--start", "1e-7", "--end", "1e-6", "--plot", str(tmp_path / "s.png")]) == 0
    assert capsys.readouterr().err.startswith("warning: the weights moved by 0.")
