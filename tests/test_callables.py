"""The user's own loss, optimizer, scheduler and metrics: the contract of each, and one clear message for each misuse."""

import numpy as np
import pytest
import torch

import riskmin
from riskmin import Config, RiskminError

FAST = dict(progress=False)


def squared_error(output, target):
    return ((output - target) ** 2).mean()


def one_cycle(optimizer):
    return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.05, total_steps=4 * 25)


def hand_written_one_cycle(config: Config, data, epochs: int, schedule=one_cycle):
    """The loop a person writes with torch alone: riskmin's split, feature scaling, initialization and batch order, a
    loss of their own on the targets as they are (riskmin standardizes only for its named regression losses), SGD and
    a one-cycle schedule stepped after every step."""
    n = len(data.x)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(config.seed))
    train = order[:n - int(config.val * n) - int(config.test * n)]
    x, y = data.x[train], data.y[train]
    x = (x - x.mean(0)) / x.std(0, unbiased=False)
    torch.manual_seed(config.seed)
    model = torch.nn.Sequential(torch.nn.Linear(data.n_features, config.hidden[0]), torch.nn.ReLU(),
                                torch.nn.Linear(config.hidden[0], data.n_targets))
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr)
    scheduler = schedule(optimizer)
    generator = torch.Generator().manual_seed(int(np.random.SeedSequence([config.seed, 1]).generate_state(1)[0]))
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        xs, ys = x[order], y[order]
        for i in range(0, len(x), config.batch_size):
            loss = squared_error(model(xs[i:i + config.batch_size]), ys[i:i + config.batch_size])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
    return model


def test_own_loss_optimizer_class_and_per_step_one_cycle_match_a_hand_written_loop(lab1):
    config = Config(model="two_layer", hidden=(16,), lr=0.01, batch_size=32, seed=2, restore_best=False, **FAST)
    run = riskmin.fit("two_layer", lab1, config, epochs=4, loss=squared_error, optimizer=torch.optim.SGD, scheduler=one_cycle,
                      scheduler_interval="step")
    reference = hand_written_one_cycle(config, lab1, epochs=4)
    assert run.summary["steps"] == 100
    for (name, ours), theirs in zip(run.model.state_dict().items(), reference.state_dict().values()):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6, msg=name)
    # the rate went up and came down again within the run: the schedule stepped per step, not per epoch
    rates = [row["lr"] for row in run.history]
    assert max(rates) > 10 * rates[-1] and rates[0] > rates[-1]
    assert (run.config.loss, run.config.loss_callable) == ("custom", f"{__name__}.squared_error")
    assert (run.config.optimizer_callable, run.config.scheduler_callable) == ("torch.optim.sgd.SGD", f"{__name__}.one_cycle")
    untrained = riskmin.models.build(config, lab1.n_features, lab1.n_targets)
    assert not torch.allclose(run.model.H1.weight, untrained.H1.weight)


def test_own_loss_optimizer_class_and_the_built_in_per_step_one_cycle_match_a_hand_written_loop(lab1):
    config = Config(model="two_layer", hidden=(16,), lr=0.05, batch_size=32, seed=1, restore_best=False, **FAST)
    run = riskmin.fit("two_layer", lab1, config, epochs=4, loss=squared_error, optimizer=torch.optim.SGD, scheduler="one_cycle",
                      scheduler_interval="step")
    # torch's OneCycleLR up to lr and down over the run's 100 steps, momentum left alone
    schedule = lambda optimizer: torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.05, total_steps=100, cycle_momentum=False)
    reference = hand_written_one_cycle(config, lab1, epochs=4, schedule=schedule)
    for (name, ours), theirs in zip(run.model.state_dict().items(), reference.state_dict().values()):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6, msg=name)


def test_own_metrics_are_reported_with_prefixes_in_the_targets_units_and_weighted_by_rows(lab1):
    # batch means weighted by their rows give the mean over all rows: a user's mean absolute error is riskmin's mae,
    # also on a target riskmin standardized for training (the metric sees the target's own units)
    run = riskmin.fit("linear", lab1, epochs=3, batch_size=64, metrics={"own_mae": lambda o, t: (o - t).abs().mean()}, **FAST)
    assert run.history[-1]["val_own_mae"] == pytest.approx(run.history[-1]["val_mae"], rel=1e-6)
    assert run.test["test_own_mae"] == pytest.approx(run.test["test_mae"], rel=1e-6)
    assert riskmin.evaluate(run, lab1)["own_mae"] == pytest.approx(riskmin.evaluate(run, lab1)["mae"], rel=1e-6)
    assert run.config.metrics.startswith("own_mae=")


def test_an_optimizer_factory_and_an_own_loss_module_train(lab1):
    run = riskmin.fit("linear", lab1, loss=torch.nn.SmoothL1Loss(), optimizer=lambda ps: torch.optim.Adam(ps, lr=0.05),
                      epochs=5, **FAST)
    assert run.history[-1]["val_loss"] < run.history[0]["val_loss"]
    assert run.history[-1]["val_r2"] > 0.9  # real-valued targets: the regression metrics beside the user's loss
    assert riskmin.evaluate(run, lab1)["loss"] == pytest.approx(run.summary["train_loss"], rel=0.2)


def test_lr_and_weight_decay_reach_an_optimizer_class_or_a_partial_of_one_and_a_factory_is_noted(lab1):
    import functools
    import warnings

    class Groups:  # the settings in force when training begins
        def on_fit_start(self, state):
            self.group = {key: state.optimizer.param_groups[0][key] for key in ("lr", "weight_decay")}

    def in_force(optimizer, **settings):
        seen = Groups()
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always")
            riskmin.fit("linear", lab1, optimizer=optimizer, epochs=1, callbacks=[seen], **settings, **FAST)
        return seen.group, [str(w.message) for w in said if "not used" in str(w.message)]

    # AdamW's own default is 0.01: a weight decay of 0 given was dropped, as if not given
    assert in_force(torch.optim.AdamW, weight_decay=0.0) == ({"lr": 0.01, "weight_decay": 0.0}, [])
    assert in_force(torch.optim.AdamW) == ({"lr": 0.01, "weight_decay": 0.01}, [])  # not given: the class's own
    # a partial of a class is the class with keywords of its own: it took neither lr nor weight_decay
    group, notes = in_force(functools.partial(torch.optim.SGD, momentum=0.9), lr=0.1, weight_decay=0.5)
    assert group == {"lr": 0.1, "weight_decay": 0.5} and notes == []
    assert in_force(functools.partial(torch.optim.SGD, lr=0.3), lr=0.1) == (  # its own keyword first, said
        {"lr": 0.3, "weight_decay": 0.0}, ["lr= is not used: the partial given as the optimizer sets lr=0.3 itself; leave it "
                                           "out of one or the other"])
    group, notes = in_force(lambda parameters: torch.optim.AdamW(parameters), lr=0.1, weight_decay=0.5)
    assert group == {"lr": 0.001, "weight_decay": 0.01} and notes == [
        "lr= and weight_decay= are not used with an optimizer given as a function, which builds it with its own; give "
        "them to the optimizer it builds, or pass the Optimizer class (optimizer=torch.optim.AdamW), which riskmin builds "
        "with them"]


class NeedsAWeight(torch.nn.Module):
    def __init__(self, weight):
        super().__init__()


def test_a_loss_class_is_taken_as_an_optimizer_class_is_by_fit_and_by_evaluate(lab1, tmp_path):
    by_class = riskmin.fit("linear", lab1, loss=torch.nn.SmoothL1Loss, epochs=2, **FAST)
    by_instance = riskmin.fit("linear", lab1, loss=torch.nn.SmoothL1Loss(), epochs=2, **FAST)
    timeless = [[{k: v for k, v in row.items() if k != "seconds"} for row in run.history] for run in (by_class, by_instance)]
    assert timeless[0] == timeless[1] and by_class.config.loss_callable == by_instance.config.loss_callable
    by_class.save(tmp_path / "run")
    loaded = riskmin.Run.load(tmp_path / "run")  # what its message asks for, the class by name, is taken
    assert riskmin.evaluate(loaded, lab1, loss=torch.nn.SmoothL1Loss) == riskmin.evaluate(by_class, lab1)
    with pytest.raises(RiskminError, match=r"^loss = test_callables.NeedsAWeight is a class that needs arguments to build; "
                                           r"pass an instance, loss=NeedsAWeight\(...\)$"):
        riskmin.fit("linear", lab1, loss=NeedsAWeight, epochs=1, **FAST)


def test_a_run_with_an_own_loss_loaded_from_disk_says_what_to_pass(lab1, tmp_path):
    run = riskmin.fit("linear", lab1, loss=squared_error, epochs=1, **FAST)
    run.save(tmp_path / "run")
    loaded = riskmin.Run.load(tmp_path / "run")
    with pytest.raises(RiskminError, match=rf"trained with loss {__name__}.squared_error, a function of your own .*"
                                           rf"riskmin.evaluate\(run, data, loss={__name__}.squared_error\)"):
        riskmin.evaluate(loaded, lab1)
    assert riskmin.evaluate(loaded, lab1, loss=squared_error)["loss"] == pytest.approx(riskmin.evaluate(run, lab1)["loss"])
    config = Config.from_toml(tmp_path / "run" / "config.toml")
    with pytest.raises(RiskminError, match=rf"pass loss={__name__}.squared_error to riskmin.fit .*resume=True"):
        riskmin.fit("linear", lab1, config, **FAST)


def not_a_scalar(output, target):
    return (output - target) ** 2


@pytest.mark.parametrize("settings, message", [
    (dict(loss=not_a_scalar), r"loss not_a_scalar returned a tensor of shape \[32, 2\], not a scalar tensor; reduce it"),
    (dict(loss=lambda o, t: 1.0), r"returned a float, not a scalar tensor"),
    (dict(loss=3), r"loss = 3 is not allowed; give a name or a callable \(output, target -> scalar tensor\)"),
    (dict(optimizer=lambda ps: None), r"returned a NoneType, not a torch.optim.Optimizer"),
    # torch's "step() missing 1 required positional argument: 'closure'", from the first step
    (dict(optimizer=torch.optim.LBFGS), r"^optimizer LBFGS needs a closure at every step, which computes the loss again, and riskmin steps"),
    (dict(optimizer=lambda ps: torch.optim.LBFGS(ps)), r"^optimizer LBFGS needs a closure at every step"),
    (dict(scheduler=lambda o: o), r"returned a SGD, not a learning-rate scheduler"),
    (dict(metrics={"mse": squared_error}), r"metric name 'mse' is not allowed"),
    (dict(metrics={"val_x": squared_error}), r"metric name 'val_x' is not allowed"),
    (dict(metrics=[squared_error]), r"give a dict of name -> function"),
    (dict(metrics={"rows": not_a_scalar}), r"metric rows returned .*not a scalar tensor; return the mean over the batch"),
    (dict(loss="custom"), r"pass loss=your loss to riskmin.fit"),
    (dict(scheduler=one_cycle, scheduler_interval="step", optimizer="sgd", lr=0.1, epochs=1, scheduler_callable="x"), None),
])
def test_each_misuse_of_an_own_callable_is_one_clear_error(lab1, settings, message):
    if message is None:  # a setting that is right: the control that the parametrization can pass
        riskmin.fit("linear", lab1, **{k: v for k, v in settings.items() if k != "scheduler_callable"}, **FAST)
        return
    with pytest.raises(RiskminError, match=message):
        riskmin.fit("linear", lab1, epochs=1, optimizer=settings.pop("optimizer", "sgd"), **settings, **FAST)


def test_config_holds_names_and_says_where_objects_go():
    with pytest.raises(RiskminError, match=r"not allowed in Config, which holds names; pass your own loss to riskmin.fit\(loss=...\)"):
        Config(loss=squared_error)
    with pytest.raises(RiskminError, match="scheduler plateau follows the validations"):
        Config(scheduler="plateau", scheduler_interval="step")


def test_montecarlo_asks_for_the_object_an_own_loss_names(lab1):
    with pytest.raises(RiskminError, match="pass loss="):
        riskmin.montecarlo("linear", lab1, runs=2, epochs=1, loss="custom", engine="sequential", **FAST)


def test_montecarlo_trains_with_your_own_objects_run_by_run_as_fit_does(lab1):
    own = dict(loss=torch.nn.SmoothL1Loss(), optimizer=torch.optim.SGD, lr=0.05,
               metrics={"max_error": lambda out, y: (out - y).abs().amax(1).mean()})
    mc = riskmin.montecarlo("two_layer", lab1, runs=2, epochs=3, **own, **FAST)
    assert mc.summary["engine"] == "sequential" and "your own loss, optimizer, metrics" in mc.notes[0]
    assert (mc.config.loss, mc.config.loss_callable) == ("custom", "torch.nn.modules.loss.SmoothL1Loss")
    for row in mc.table:  # each row is the fit of its seed, with the same objects
        run = riskmin.fit("two_layer", lab1, epochs=3, seed=row["seed"], **own, **FAST)
        assert row["test_loss"] == pytest.approx(run.summary["test_loss"], rel=1e-6)
        assert row["test_max_error"] == pytest.approx(run.summary["test_max_error"], rel=1e-6)
    with pytest.raises(RiskminError, match="cannot run this experiment: runs given your own loss"):
        riskmin.montecarlo("two_layer", lab1, runs=2, epochs=1, loss=torch.nn.SmoothL1Loss(), engine="vectorized", **FAST)


def test_the_command_line_cannot_give_code_and_says_so_writing_nothing(tmp_path, capsys):
    from riskmin._cli._main import main

    assert main(["train", "lab1", "--loss", "custom", "--out", str(tmp_path / "runs"), "--progress", "off"]) == 2
    assert "--loss custom stands for a loss function of your own, given in Python" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # not even an empty runs/
