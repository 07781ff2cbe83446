import numpy as np
import pytest
import torch

import riskmin
from riskmin import RiskminError
from riskmin.callbacks import Best, BestModel, EarlyStopChecker, State
from riskmin.policy import Judge


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


def test_a_relative_min_delta_is_a_fraction_of_the_best_where_an_absolute_one_is_not():
    # 9.5 beats 10 by 0.5: more than 0.1, but less than a tenth of 10; 8.9 beats 10 by more than either
    values = [10.0, 9.5, 8.9]
    assert [Best("min", min_delta=0.1).update(v) for v in values[:2]] == [True, True]
    rule = Best("min", min_delta=0.1, threshold_mode="rel")
    assert [rule.update(v) for v in values] == [True, False, True] and rule.value == 8.9


def test_a_relative_min_delta_measures_the_size_of_a_negative_best_in_max_mode():
    # the best -2 has size 2: a half of it is 1, so -1.5 is not enough and -0.9 is; absolute 0.5 takes -1.4 already
    rule = Best("max", min_delta=0.5, threshold_mode="rel")
    assert [rule.update(v) for v in [-2.0, -1.5, -0.9]] == [True, False, True]
    absolute = Best("max", min_delta=0.5)
    assert [absolute.update(v) for v in [-2.0, -1.4]] == [True, True]


def test_a_relative_min_delta_judges_each_run_of_a_stack_by_its_own_best():
    rule = Best("min", min_delta=0.1, threshold_mode="rel", runs=3)
    assert rule.update(np.array([10.0, 1.0, np.nan])).tolist() == [True, True, False]  # NaN never improves, inf never a best
    assert rule.update(np.array([9.5, 0.85, 5.0])).tolist() == [False, True, True]


def test_the_judge_stops_by_a_relative_min_delta_where_an_absolute_one_goes_on():
    def leaving(mode):
        judge = Judge(riskmin.Config(patience=1, min_delta=0.1, threshold_mode=mode), runs=1, tracked=True)
        return [bool(judge.judge(epoch, epoch, loss=1.0, value=v).leaving) for epoch, v in enumerate([10.0, 9.5], 1)]

    assert leaving("abs") == [False, False] and leaving("rel") == [False, True]


def test_best_model_keeps_the_weights_of_the_validations_the_judge_finds_best():
    model = torch.nn.Linear(1, 1)
    state = State(model, epochs=3, steps_per_epoch=1)
    keeper = BestModel()
    for epoch, (improved, weight) in enumerate([(True, 1.0), (True, 2.0), (False, 3.0)], start=1):
        model.weight.data.fill_(weight)
        state.epoch, state.metrics, state.improved = epoch, {"val_loss": 1.0 / epoch}, improved
        keeper.on_validation_end(state)
    assert keeper.restore(model) and model.weight.item() == 2.0 and keeper.epoch == 2


def test_the_judge_decides_best_epoch_patience_and_divergence_for_several_runs_at_once():
    judge = Judge(riskmin.Config(patience=2), runs=3, tracked=True)
    values = [[0.4, 0.5, 0.9], [0.3, 0.6, 0.8], [0.35, 0.4, 0.7], [0.31, 0.45, 0.6]]
    left = [judge.judge(epoch, 10 * epoch, loss=[1.0, 1.0, 1.0], value=v).leaving.tolist() for epoch, v in enumerate(values, 1)]
    assert left == [[False] * 3, [False, False, False], [False, False, False], [True, False, False]]
    assert judge.best_epoch.tolist() == [2, 3, 4] and judge.fields(0)["stopped_early"] and judge.fields(0)["best_step"] == 20
    # one run alone, then a divergence: the runs not judged keep their counters; the diverged keeps its best weights
    verdict = judge.judge(5, 50, loss=[float("nan")], value=[0.1], runs=[2])
    assert verdict.diverged.tolist() == [True] and not verdict.improved.any()
    fields = judge.fields(2)
    assert fields["diverged"] and fields["best_epoch"] == 4 and fields["restored_best"] and fields["stop_reason"].endswith("; the best weights so far are kept")
    assert judge.checker.bad.tolist()[1] == 1


def test_a_run_that_diverges_before_any_best_has_no_best_epoch_and_nothing_restored():
    judge = Judge(riskmin.Config(restore_best=False), runs=1, tracked=True)
    judge.judge(1, 5, loss=float("inf"), value=0.3)
    assert judge.fields(0)["best_epoch"] is None and not judge.fields(0)["restored_best"]
    assert "no finite weights came before it" in judge.fields(0)["stop_reason"]


def test_the_judge_refuses_patience_without_anything_to_judge_by():
    from riskmin.policy import judged

    with pytest.raises(RiskminError, match="patience needs a validation split but val = 0"):
        judged(riskmin.Config(val=0.0, patience=3), has_val=False)
    with pytest.raises(RiskminError, match="scheduler plateau needs a validation split"):
        judged(riskmin.Config(val=0.0, scheduler="plateau"), has_val=False)
    with pytest.raises(RiskminError, match="monitor val_r2 needs a validation split"):
        judged(riskmin.Config(val=0.0, monitor="val_r2", mode="max"), has_val=False)
    assert not judged(riskmin.Config(val=0.0), has_val=False)  # the default monitor: nothing judged, nothing refused


def test_early_stopping_sets_the_flag_and_says_why(lab1):
    run = riskmin.fit("linear", lab1, epochs=200, patience=1, monitor="val_r2", mode="max", lr=0.5, optimizer="sgd", progress=False)
    assert run.summary["stopped_early"] and "early stop: val_r2 did not improve for 1 validations" in run.summary["stop_reason"]


def test_a_missing_monitor_key_lists_the_keys_that_exist(lab1):
    with pytest.raises(RiskminError, match="monitor 'val_acc' is not a reported metric; the metrics are .*val_loss"):
        riskmin.fit("linear", lab1, epochs=1, monitor="val_acc", progress=False)


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
    assert run.summary["stopped_early"] and run.summary["stop_reason"] == "stopped by a callback (state.should_stop)"


class EndsEpochs:
    def on_epoch_ends(self, state):  # misspelt: never called
        state.should_stop = True

    def on_fit_start(self, state):
        pass


@pytest.mark.parametrize("callbacks, message", [
    ([EndsEpochs], r"^callbacks holds the class EndsEpochs; pass an object of it, EndsEpochs\(\), whose methods the loop calls$"),
    (EndsEpochs(), r"^callbacks takes a list of callbacks, not a EndsEpochs; pass callbacks=\[...\] even for one$"),
    ([object()], r"^callback object has none of the methods a callback has \(on_fit_start, on_batch_end, "),
])
def test_a_callback_given_wrong_is_one_sentence_before_training(lab1, callbacks, message):
    with pytest.raises(riskmin.RiskminError, match=message):
        riskmin.fit("linear", lab1, epochs=1, progress=False, callbacks=callbacks)


def test_a_method_named_for_no_event_is_warned_of_as_never_called(lab1):
    with pytest.warns(riskmin.RiskminWarning, match="^EndsEpochs.on_epoch_ends is named for no event of the loop, so it "
                                                    "is never called; did you mean on_epoch_end\\?$"):
        run = riskmin.fit("linear", lab1, epochs=2, progress=False, callbacks=[EndsEpochs()])
    assert run.summary["epochs_run"] == 2
