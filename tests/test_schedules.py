"""Schedules stepped per step or per epoch, and the optimizer and learning rate a callback can read."""

import pytest
import torch

import riskmin
from riskmin._training._checkpoint import TrainingInterrupted
from riskmin.callbacks import SignalAt

FAST = dict(progress=False)


class Rates:
    """The learning rate a callback reads after each step, through the State."""

    def __init__(self):
        self.rates = []

    def on_step_end(self, state):
        assert state.lr == state.optimizer.param_groups[0]["lr"]
        self.rates.append(state.lr)


def rates_of(lab1, **settings):
    seen = Rates()
    run = riskmin.fit("linear", lab1, epochs=2, lr=0.1, optimizer="sgd", callbacks=[seen], **settings, **FAST)  # 25 steps an epoch
    return run, seen.rates


def test_linear_warmup_rises_by_equal_steps_then_holds(lab1):
    _, rates = rates_of(lab1, scheduler="linear_warmup", warmup=5, scheduler_interval="step")
    assert rates[:6] == pytest.approx([0.04, 0.06, 0.08, 0.1, 0.1, 0.1])  # read after each step: the rate of the next
    assert len(rates) == 50 and rates[-1] == pytest.approx(0.1)
    _, default = rates_of(lab1, scheduler="linear_warmup", scheduler_interval="step")  # a tenth of the run's 50 steps
    assert default[3:6] == pytest.approx([0.1, 0.1, 0.1]) and default[0] == pytest.approx(0.04)


def test_cosine_and_one_cycle_per_step_span_the_run(lab1):
    _, cosine = rates_of(lab1, scheduler="cosine", scheduler_interval="step")
    assert cosine[-1] == pytest.approx(0.0, abs=1e-12) and all(a > b for a, b in zip(cosine, cosine[1:]))
    _, cycle = rates_of(lab1, scheduler="one_cycle", scheduler_interval="step")
    peak = cycle.index(max(cycle))
    assert max(cycle) == pytest.approx(0.1, rel=1e-3) and 5 < peak < 20 and cycle[-1] < 1e-3 < cycle[0]
    run, by_epoch = rates_of(lab1, scheduler="cosine")  # per epoch: one rate for all 25 steps of the first epoch
    assert len(set(by_epoch[:24])) == 1 and [row["lr"] for row in run.history] == pytest.approx([0.1, 0.05])


def test_a_per_step_schedule_resumes_exactly(lab1, tmp_path):
    settings = dict(scheduler="one_cycle", scheduler_interval="step", epochs=3, batch_size=100, checkpoint_every=0, **FAST)
    full = riskmin.fit("mlp", lab1, hidden=(8,), directory=tmp_path / "full", **settings)
    with pytest.raises(TrainingInterrupted):  # after step 11, inside the second epoch
        riskmin.fit("mlp", lab1, hidden=(8,), directory=tmp_path / "cut", callbacks=[SignalAt(11, "SIGINT")], **settings)
    resumed = riskmin.fit("mlp", lab1, hidden=(8,), directory=tmp_path / "cut", resume=True, **settings)
    for a, b in zip(full.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)
    assert [row["lr"] for row in full.history] == [row["lr"] for row in resumed.history]


def test_the_stacked_engine_leaves_per_step_schedules_to_fit_and_says_so(lab1):
    mc = riskmin.montecarlo("linear", lab1, runs=2, epochs=2, scheduler="one_cycle", scheduler_interval="step", **FAST)
    assert mc.summary["engine"] == "sequential" and "steps after every step" in mc.notes[0]


class CutAt:
    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, state):
        state.interrupted = state.step == self.step


@pytest.mark.parametrize("scheduler, interval", [("cosine", "epoch"), ("one_cycle", "step"), ("linear_warmup", "step"), ("step", "epoch")])
def test_resume_keeps_the_length_of_a_schedule_drawn_over_the_whole_run(tmp_path, capsys, scheduler, interval):
    from riskmin._cli._main import main

    settings = dict(model="linear", data="lab1", scheduler=scheduler, scheduler_interval=interval, optimizer="sgd", lr=0.05, **FAST)
    run_dir = tmp_path / "cut"
    with pytest.raises(TrainingInterrupted):  # 25 steps an epoch, cut inside epoch 3 of 6
        riskmin.fit("linear", "lab1", riskmin.Config(**settings, epochs=6), callbacks=[CutAt(60)], directory=run_dir)
    (run_dir / "config.toml").write_text(riskmin.Config(**settings, epochs=12).to_toml())  # the user asks for more epochs
    capsys.readouterr()
    status = main(["train", "--resume", str(run_dir)])
    err = capsys.readouterr().err
    if scheduler == "step":  # a step schedule does not depend on the length: the run goes on to epoch 12
        assert status == 0 and (run_dir / "summary.json").is_file()
        return
    assert status == 2 and not (run_dir / "summary.json").exists()
    assert err.strip() == (f"error: cannot resume {run_dir}: the settings changed since the checkpoint: epochs 6 then, 12 now "
                           f"(the {scheduler} schedule spans the run's length); resume with the data and settings the run "
                           "began with, or start a new run")


def test_a_length_changed_without_a_schedule_is_not_said_to_be_a_schedules():
    from riskmin._training._fingerprint import setting_changes

    assert setting_changes({"epochs": 200, "scheduler": "none"}, {"epochs": 50, "scheduler": "none"}) == ["epochs 200 then, 50 now"]
    assert setting_changes({"epochs": 200, "scheduler": "cosine"}, {"epochs": 50, "scheduler": "cosine"}) == [
        "epochs 200 then, 50 now (the cosine schedule spans the run's length)"]
