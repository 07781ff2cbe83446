import pytest
import torch

import riskmin
from riskmin import RiskminError
from riskmin.callbacks import Best, BestModel, EarlyStopChecker, EarlyStopping, State


def test_early_stop_checker_counts_validations_without_improvement():
    checker = EarlyStopChecker(patience=2)
    assert [checker.update(v) for v in [0.4, 0.3, 0.28, 0.25, 0.26, 0.25]] == [False] * 5 + [True]


def test_early_stop_checker_in_max_mode_with_min_delta():
    checker = EarlyStopChecker(patience=2, mode="max", min_delta=0.05)
    assert [checker.update(v) for v in [0.5, 0.6, 0.62, 0.64, 0.7]] == [False, False, False, True, False]


def test_best_rule_needs_more_than_min_delta():
    rule = Best("min", min_delta=0.1)
    assert [rule.update(v) for v in [1.0, 0.95, 0.85, 0.9]] == [True, False, True, False]
    assert rule.value == 0.85


def test_best_model_keeps_the_weights_of_the_best_validation():
    model = torch.nn.Linear(1, 1)
    state = State(model, epochs=3, steps_per_epoch=1)
    keeper = BestModel()
    for epoch, (value, weight) in enumerate([(0.5, 1.0), (0.2, 2.0), (0.4, 3.0)], start=1):
        model.weight.data.fill_(weight)
        state.epoch, state.metrics = epoch, {"val_loss": value}
        keeper.on_validation_end(state)
    assert keeper.restore(model) and model.weight.item() == 2.0 and keeper.epoch == 2


def test_early_stopping_sets_the_flag_and_says_why():
    state = State(torch.nn.Linear(1, 1), epochs=10, steps_per_epoch=1)
    stopper = EarlyStopping(patience=1, monitor="val_accuracy", mode="max")
    for value in [0.8, 0.7]:
        state.metrics = {"val_accuracy": value}
        stopper.on_validation_end(state)
    assert state.should_stop and "val_accuracy" in state.stop_reason


def test_a_missing_monitor_key_lists_the_keys_that_exist():
    state = State(torch.nn.Linear(1, 1), epochs=1, steps_per_epoch=1, metrics={"loss": 1.0, "val_loss": 1.0})
    with pytest.raises(RiskminError, match="monitor 'val_acc' is not a reported metric; the metrics are loss, val_loss"):
        BestModel(monitor="val_acc").on_validation_end(state)


def test_user_callbacks_receive_every_event_and_can_stop_training(lab1):
    class Recorder:
        def __init__(self):
            self.events = []

        def on_fit_start(self, state):
            self.events.append("start")

        def on_validation_end(self, state):
            self.events.append("validation")

        def on_epoch_end(self, state):
            self.events.append("epoch")
            state.should_stop = state.epoch == 2

        def on_fit_end(self, state):
            self.events.append("end")

    recorder = Recorder()
    run = riskmin.fit("linear", lab1, epochs=10, progress=False, callbacks=[recorder])
    assert recorder.events == ["start", "validation", "epoch", "validation", "epoch", "end"]
    assert run.summary["epochs_run"] == 2
