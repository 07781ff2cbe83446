import copy
import math
import types
import warnings

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

import riskmin
from riskmin import Config, models

FAST = dict(progress=False)


def hand_written(config: Config, data, epochs: int, model=None, frozen: int = 0, unfrozen_after: int = 0):
    """The loop a person writes by hand, with torch alone: the same split, scaling, initialization and batch order
    as riskmin documents them, and no riskmin code. With `frozen`, the first layer of `model` trains only after
    `unfrozen_after` epochs (never, when 0), then in a group of its own at twice the rate while the others' is halved."""
    n = len(data.x)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(config.seed))  # the split: a permutation by seed
    train = order[:n - int(config.val * n) - int(config.test * n)]
    x, y = data.x[train], data.y[train]
    x = (x - x.mean(0)) / x.std(0, unbiased=False)  # standardized with the training rows' statistics
    y64 = y.double()  # the target too: each column's mean off, divided by one scale, the root of the columns' mean variance
    y = (y - y64.mean(0).float()) / torch.tensor(math.sqrt(float((y64 - y64.mean(0)).square().mean())), dtype=torch.float32)
    torch.manual_seed(config.seed)  # the layers draw their initial weights in the order they are built
    widths = [data.n_features, *(config.hidden if config.model != "linear" else ()), data.n_targets]
    layers = []
    for width, next_width in zip(widths, widths[1:]):
        layers += [torch.nn.Linear(width, next_width), torch.nn.ReLU()]
    model = model if model is not None else torch.nn.Sequential(*layers[:-1])
    kind = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[config.optimizer]
    optimizer = kind(list(model.parameters())[2 * frozen:], lr=config.lr, weight_decay=config.weight_decay)
    # the batch order's own generator, seeded from the run's seed as riskmin documents (SeedSequence([seed, 1]))
    generator = torch.Generator().manual_seed(int(np.random.SeedSequence([config.seed, 1]).generate_state(1)[0]))
    for epoch in range(epochs):
        if frozen and unfrozen_after and epoch == unfrozen_after:
            optimizer.add_param_group({"params": list(model.parameters())[:2 * frozen], "lr": 2 * config.lr})
            optimizer.param_groups[0]["lr"] = config.lr / 2
        order = torch.randperm(len(x), generator=generator)
        xs, ys = x[order], y[order]
        for i in range(0, len(x), config.batch_size):
            loss = torch.nn.functional.mse_loss(model(xs[i:i + config.batch_size]), ys[i:i + config.batch_size])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model


@pytest.mark.parametrize("model", ["linear", "two_layer", "mlp"])
@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw"])
def test_fit_matches_a_hand_written_loop(lab1, model, optimizer):
    config = Config(model=model, hidden=(16,) if model == "two_layer" else (16, 8), optimizer=optimizer, lr=0.01,
                    weight_decay=0.01 if optimizer == "adamw" else 0.0, batch_size=50, seed=3, restore_best=False, **FAST)
    run = riskmin.fit(model, lab1, config, epochs=4)
    reference = hand_written(config, lab1, epochs=4)
    for (name, ours), theirs in zip(run.model.state_dict().items(), reference.state_dict().values()):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6, msg=name)
    # the weights moved: a parity test where nothing trained would prove nothing
    untrained = models.build(config, lab1.n_features, lab1.n_targets)
    assert not torch.allclose(next(iter(run.model.parameters())), next(iter(untrained.parameters())))


def test_same_seed_gives_bitwise_equal_runs(lab1):
    settings = dict(hidden=(16, 16), dropout=0.1, epochs=5, patience=3, **FAST)
    first, second = riskmin.fit("mlp", lab1, **settings), riskmin.fit("mlp", lab1, **settings)
    for a, b in zip(first.model.state_dict().values(), second.model.state_dict().values()):
        assert torch.equal(a, b)
    strip = lambda history: [{k: v for k, v in row.items() if k != "seconds"} for row in history]
    assert strip(first.history) == strip(second.history)
    other = riskmin.fit("mlp", lab1, **{**settings, "seed": 1})
    assert not torch.equal(next(iter(other.model.parameters())), next(iter(first.model.parameters())))


def test_linear_model_reaches_the_least_squares_solution(lab1):
    run = riskmin.fit("linear", lab1, optimizer="sgd", lr=0.5, batch_size=0, epochs=300, **FAST)
    train = riskmin.split(lab1, seed=0).train
    x = run.preprocessing(lab1.x[train]).double()
    x = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], 1)
    solution = torch.linalg.lstsq(x, lab1.y[train].double()).solution
    target = run.preprocessing.target  # the model learned the standardized target: in the target's units,
    learned = torch.cat([run.model.H.weight.T, run.model.H.bias[None]]).double() * target.scale  # weights times its scale
    learned[-1] += target.mean  # and the bias moved by its mean
    assert (learned - solution).norm() / solution.norm() < 1e-3
    assert run.summary["test_loss"] == pytest.approx(run.summary["closed_form_test_loss"], rel=1e-3)


def test_history_rows_are_flat_and_test_uses_the_best_weights(lab1):
    run = riskmin.fit("two_layer", lab1, epochs=30, lr=0.05, patience=5, **FAST)
    assert set(run.history[0]) == {"epoch", "step", "loss", "lr", "seconds", *(f"val_{m}" for m in ("loss", "mse", "rmse", "mae", "r2"))}
    best = min(run.history, key=lambda row: row["val_loss"])
    assert run.best_epoch == best["epoch"]
    assert run.summary["val_loss"] == pytest.approx(best["val_loss"], rel=1e-5)
    assert set(run.test) == {f"test_{m}" for m in ("loss", "mse", "rmse", "mae", "r2")}
    test = riskmin.split(lab1).test
    assert run.test["test_loss"] == pytest.approx(riskmin.evaluate(run, (lab1.x[test], lab1.y[test]))["loss"], rel=1e-6)


def test_early_stopping_stops_and_restore_best_off_keeps_the_final_weights(lab1):
    run = riskmin.fit("mlp", lab1, hidden=(64, 64), lr=0.05, epochs=500, patience=3, restore_best=False, **FAST)
    assert run.summary["stopped_early"] and run.summary["epochs_run"] < 500
    assert run.summary["epochs_run"] - run.summary["best_epoch"] == 3
    assert not run.summary["restored_best"]
    assert run.summary["val_loss"] == pytest.approx(run.history[-1]["val_loss"], rel=1e-5)


class RunningCentre(torch.nn.Module):
    """Takes off a running mean of its inputs, a buffer assigned anew at each training step (not changed in place)."""

    def __init__(self, width: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(width))

    def forward(self, x):
        if self.training:
            self.mean = 0.9 * self.mean + 0.1 * x.mean(0)
        return x - self.mean


def test_the_best_weights_restored_hold_a_buffer_a_module_assigns_anew_as_it_was_at_the_best_validation():
    torch.manual_seed(0)
    x = torch.randn(400, 5) * 3 + 5
    y = x @ torch.randn(5, 1)
    states = {}  # the whole state at each validation, by epoch

    class Keep:
        def on_validation_end(self, state):
            states[state.epoch] = {k: v.clone() for k, v in state.model.state_dict().items()}

    model = torch.nn.Sequential(RunningCentre(5), torch.nn.Linear(5, 1))
    run = riskmin.fit(model, (x, y), epochs=10, standardize=False, callbacks=[Keep()], **FAST)
    best = states[run.best_epoch]
    assert run.best_epoch > 2  # improved after its second copy, where the copies were paired with the tensors of then
    # the copy kept the buffer of epoch 2, a tensor the module had let go of: the test loss was 0.39 where it is 0.05
    assert all(torch.equal(model.state_dict()[k], best[k]) for k in best)


def test_random_sampling_counts_steps_and_max_steps_stops(lab1):
    run = riskmin.fit("linear", lab1, sampling="random", batch_size=40, max_steps=50, val=0, test=0, **FAST)
    assert run.summary["steps"] == 50
    assert run.history[-1]["step"] == 50
    assert run.summary["val_loss"] is None and not run.summary["restored_best"]


def test_validation_every_n_steps(lab1):
    run = riskmin.fit("linear", lab1, batch_size=100, epochs=3, val_every=4, **FAST)
    assert [row["step"] for row in run.history] == [4, 8, 12, 16, 20, 24]


def test_drop_last_drops_the_incomplete_batch(lab1):
    full = riskmin.fit("linear", lab1, batch_size=300, epochs=1, **FAST)
    dropped = riskmin.fit("linear", lab1, batch_size=300, epochs=1, drop_last=True, **FAST)
    assert (full.summary["steps"], dropped.summary["steps"]) == (3, 2)


def test_a_diverging_loss_stops_with_epoch_step_and_remedy(lab1):
    with pytest.warns(riskmin.RiskminNumerics) as said:  # from Python too, where no console shows the reason
        run = riskmin.fit("mlp", lab1, optimizer="sgd", lr=1e6, epochs=50, **FAST)
    reason = run.summary["stop_reason"]
    assert [str(w.message) for w in said] == [reason] and said[0].filename == __file__
    assert run.summary["diverged"] and "epoch" in reason and "step" in reason and "learning rate" in reason
    assert run.summary["epochs_run"] < 50


def test_any_torch_dataset_trains_through_a_dataloader():
    x = torch.randn(200, 3)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]])
    run = riskmin.fit(torch.nn.Linear(3, 1), TensorDataset(x, y), optimizer="sgd", lr=0.1, batch_size=20, epochs=40, **FAST)
    assert run.summary["test_loss"] < 1e-3
    assert run.summary["steps"] == 40 * 8


def test_schedulers_change_the_learning_rate(lab1):
    step = riskmin.fit("linear", lab1, scheduler="step", step_size=2, gamma=0.5, epochs=4, lr=0.1, **FAST)
    assert [row["lr"] for row in step.history] == pytest.approx([0.1, 0.1, 0.05, 0.05])
    cosine = riskmin.fit("linear", lab1, scheduler="cosine", epochs=4, lr=0.1, **FAST)
    assert cosine.history[-1]["lr"] < cosine.history[0]["lr"]


def test_classification_reports_accuracy():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(600, 2, generator=generator)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()
    run = riskmin.fit("mlp", (x, y), loss="cross_entropy", hidden=(16,), lr=0.05, epochs=30, **FAST)
    assert run.model(torch.zeros(1, 2)).shape == (1, 3)
    assert run.test["test_accuracy"] > 0.9


def test_gradient_clipping_bounds_the_first_step(lab1):
    clipped = riskmin.fit("linear", lab1, optimizer="sgd", lr=1.0, clip_grad=1e-3, max_steps=1, val=0, test=0, **FAST)
    start = models.build(Config(model="linear"), lab1.n_features, lab1.n_targets)
    moved = torch.cat([(a - b).detach().flatten() for a, b in zip(clipped.model.parameters(), start.parameters())])
    assert float(moved.norm()) == pytest.approx(1e-3, rel=1e-3)


def test_predict_and_evaluate_use_the_run_preprocessing():
    data = riskmin.load("line")
    run = riskmin.fit("linear", data, split="tutorial", optimizer="sgd", lr=0.1, epochs=500, batch_size=80, **FAST)
    prediction = riskmin.predict(run, torch.tensor([[0.0], [1.0]]))
    assert prediction[:, 0].tolist() == pytest.approx([1.0, 3.0], abs=0.1)
    assert riskmin.evaluate(run, data)["loss"] == pytest.approx(0.01, abs=0.005)


def test_gpu_fast_path_keeps_data_on_the_device(lab1):
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    torch.cuda.set_sync_debug_mode("warn")  # torch warns at every operation that waits for the GPU
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            run = riskmin.fit("mlp", lab1, device="cuda", epochs=3, batch_size=8, **FAST)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    waits = [w for w in caught if "synchroniz" in str(w.message)]
    assert run.summary["device"].startswith("cuda") and next(run.model.parameters()).is_cuda
    assert math.isfinite(run.summary["test_loss"])
    # one wait per epoch's order and per validation, a few at the start and end; a wait per step would be 300 or more
    assert run.summary["steps"] == 300 and len(waits) < 40, f"{len(waits)} waits in {run.summary['steps']} steps"


@pytest.mark.parametrize("loss", ["mse", "l1", "huber", "bce"])
@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw", "rmsprop"])
def test_every_loss_and_optimizer_by_name_lowers_the_loss(loss, optimizer):
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(400, 4, generator=generator)
    y = (x[:, :1] > 0).float() if loss == "bce" else x[:, :1] * 2 + 1
    run = riskmin.fit("mlp", (x, y), hidden=(16,), loss=loss, optimizer=optimizer, lr=0.1 if optimizer == "sgd" else 0.01,
                      momentum=0.5 if optimizer == "sgd" else 0.0,
                      epochs=15, **FAST)
    assert run.history[-1]["val_loss"] < 0.7 * run.history[0]["val_loss"]
    if loss == "bce":
        assert run.test["test_accuracy"] > 0.85


def test_plateau_scheduler_lowers_the_rate_when_validation_stalls(lab1):
    run = riskmin.fit("linear", lab1, scheduler="plateau", patience=0, gamma=0.5, lr=0.5, epochs=40, optimizer="sgd", **FAST)
    rates = [row["lr"] for row in run.history]
    assert rates[0] == 0.5 and rates[-1] < 0.5


class ThreadsSeen:
    def __init__(self):
        self.seen = set()

    def on_epoch_end(self, state):
        self.seen.add(torch.get_num_threads())


@pytest.mark.parametrize("threads, expected", [("auto", 1), ("2", 2)])
def test_threads_are_set_for_training_and_the_process_setting_comes_back(lab1, threads, expected):
    before = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        seen = ThreadsSeen()
        riskmin.fit("linear", lab1, epochs=2, threads=threads, callbacks=[seen], **FAST)
        assert seen.seen == {expected}  # auto: a 10 -> 2 linear model is far below the work that pays for a second thread
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)


def test_auto_threads_grow_with_the_work_of_a_step():
    from riskmin._training._threads import SERIAL_WORK, WORK_PER_THREAD, auto_threads

    small, big = torch.nn.Linear(32, 64), torch.nn.Linear(784, 256)
    assert auto_threads(small, 64, cores=64) == 1
    assert auto_threads(big, 128, cores=64) == 3 * 128 * 200_960 // WORK_PER_THREAD
    assert auto_threads(big, 128, cores=2) == 2
    assert 3 * 64 * sum(p.numel() for p in small.parameters()) < SERIAL_WORK


class Unfreeze:
    """After epoch 1: the first layer, frozen so far, joins the optimizer in a group of its own; the rate of the
    others is halved. The usual fine-tuning pattern, from a callback."""

    def on_epoch_end(self, state):
        if state.epoch == 1:
            first = state.model[0]
            first.requires_grad_(True)
            state.optimizer.add_param_group({"params": list(first.parameters()), "lr": 0.02})
            state.optimizer.param_groups[0]["lr"] = 0.005


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw"])
def test_a_callback_may_unfreeze_a_layer_and_change_the_rate(lab1, optimizer):
    config = Config(model="mlp", hidden=(16, 8), optimizer=optimizer, lr=0.01, weight_decay=0.0, batch_size=50, seed=3,
                    restore_best=False, **FAST)
    torch.manual_seed(config.seed)
    model = models.MLP(lab1.n_features, lab1.n_targets, hidden=(16, 8))
    start = copy.deepcopy(model)
    model[0].requires_grad_(False)
    run = riskmin.fit(model, lab1, config, epochs=3, callbacks=[Unfreeze()])

    # by hand, the same schedule of groups: epoch 1 without the first layer, then with it at its own rate
    reference = hand_written(config, lab1, epochs=3, model=copy.deepcopy(start), frozen=1, unfrozen_after=1)
    for (name, ours), theirs in zip(run.model.state_dict().items(), reference.state_dict().values()):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6, msg=name)
    assert not torch.allclose(run.model[0].weight, start[0].weight)  # the unfrozen layer moved


class NoisyLinear(torch.nn.Linear):
    """A linear layer that adds noise to its outputs in training mode only: what a variational or noisy layer does."""

    def forward(self, x):
        out = super().forward(x)
        return out + 100.0 * torch.randn_like(out) if self.training else out


def test_a_linear_subclass_that_reads_self_training_is_validated_and_tested_in_eval_mode(lab1):
    torch.manual_seed(0)
    model = torch.nn.Sequential(NoisyLinear(lab1.n_features, lab1.n_targets))
    run = riskmin.fit(model, lab1, epochs=3, lr=0.001, optimizer="sgd", **FAST)
    splits = riskmin.split(lab1, val=run.config.val, test=run.config.test, seed=run.config.seed)
    quiet = riskmin.evaluate(run, riskmin.Data(lab1.x[splits.test], lab1.y[splits.test]))
    assert run.summary["test_loss"] == pytest.approx(quiet["loss"], rel=1e-5)
    assert run.summary["val_loss"] < 100  # training-mode outputs would carry noise of size 100: a loss near 10,000


def test_frozen_layers_stay_put_and_the_rest_trains(lab1):
    torch.manual_seed(0)
    model = riskmin.models.MLP(lab1.n_features, lab1.n_targets, hidden=(16,))
    model[0].requires_grad_(False)
    frozen, trained = model[0].weight.clone(), model[2].weight.clone()
    run = riskmin.fit(model, lab1, epochs=2, batch_size=100, **FAST)
    assert torch.equal(model[0].weight, frozen) and not torch.equal(model[2].weight, trained)
    assert run.summary["steps"] == 16
    model.requires_grad_(False)
    with pytest.raises(riskmin.RiskminError, match="no parameters that require a gradient, so there is nothing to train"):
        riskmin.fit(model, lab1, epochs=1, **FAST)


@pytest.mark.parametrize("restore_best", [True, False])
def test_final_val_metrics_are_those_of_the_final_weights(lab1, restore_best):
    # the end of fit takes them from the validation that measured those weights instead of a second pass: they must match one
    run = riskmin.fit("mlp", lab1, epochs=30, patience=5, batch_size=64, restore_best=restore_best, **FAST)
    assert run.summary["stopped_early"] and run.summary["best_epoch"] < run.summary["epochs_run"]
    splits = riskmin.split(lab1, val=run.config.val, test=run.config.test, seed=run.config.seed)
    fresh = riskmin.evaluate(run, riskmin.Data(lab1.x[splits.val], lab1.y[splits.val]))
    assert {k: run.summary["val_" + k] for k in fresh} == fresh


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw"])
def test_fused_and_foreach_optimizers_give_the_weights_of_the_plain_one(name):
    from riskmin._training._optim import OPTIMIZERS

    generator = torch.Generator().manual_seed(0)
    x, y = torch.randn(256, 8, generator=generator), torch.randn(256, 1, generator=generator)
    options = {"lr": 0.01, "weight_decay": 0.01, **({"momentum": 0.9} if name == "sgd" else {})}
    results = {}
    for kind in ("plain", "foreach", "fused"):
        torch.manual_seed(0)
        model = riskmin.models.MLP(8, 1, hidden=(16, 16))
        flags = {"plain": {"foreach": False}, "foreach": {"foreach": True}, "fused": {"fused": True}}[kind]
        optimizer = OPTIMIZERS[name](model.parameters(), **options, **flags)
        for i in range(0, 256, 32):
            loss = torch.nn.functional.mse_loss(model(x[i:i + 32]), y[i:i + 32])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        results[kind] = torch.cat([p.detach().flatten() for p in model.parameters()])
    assert torch.allclose(results["foreach"], results["plain"], rtol=1e-6, atol=1e-7)
    assert torch.allclose(results["fused"], results["plain"], rtol=1e-6, atol=1e-7)
    torch.manual_seed(0)
    initial = torch.cat([p.detach().flatten() for p in riskmin.models.MLP(8, 1, hidden=(16, 16)).parameters()])
    assert (results["plain"] - initial).abs().max() > 1e-3  # the steps moved the weights: the comparison is not of untouched ones


@pytest.mark.parametrize("setting, command", [("runs", "montecarlo"), ("engine", "montecarlo"), ("folds", "montecarlo"),
                                              ("out", "riskmin train"), ("name", "riskmin train")])
def test_fit_refuses_a_setting_of_another_command(lab1, setting, command):
    value = {"runs": 7, "engine": "vectorized", "folds": 5, "out": "/nonexistent", "name": "mine"}[setting]
    with pytest.raises(riskmin.RiskminError, match=f"{setting} is a setting of .*{command}.*not of fit"):
        riskmin.fit("linear", lab1, epochs=1, **{setting: value}, **FAST)


def test_a_users_module_is_recorded_as_custom_and_load_asks_for_it(lab1, tmp_path):
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(10, 2)

        def forward(self, x):
            return self.layer(x)

    run = riskmin.fit(Net(), lab1, epochs=1, **FAST)
    assert run.config.model == "custom" and run.config.model_class.endswith("Net")
    run.save(tmp_path / "run")
    with pytest.raises(riskmin.RiskminError, match=r"model custom .*Net.*pass a fresh instance"):
        riskmin.Run.load(tmp_path / "run")
    again = riskmin.Run.load(tmp_path / "run", model=Net())
    assert torch.equal(again.model.layer.weight, run.model.layer.weight)


def test_riskmins_own_module_passed_as_an_instance_is_recorded_by_name_and_shape(lab1, tmp_path):
    run = riskmin.fit(models.TwoLayerNN(10, 2, hidden=8, activation="tanh"), lab1, epochs=1, **FAST)
    assert (run.config.model, run.config.hidden, run.config.activation) == ("two_layer", (8,), "tanh")
    run.save(tmp_path / "run")
    assert torch.equal(riskmin.Run.load(tmp_path / "run").model.H1.weight, run.model.H1.weight)


def test_adamw_decays_weights_by_torchs_default_unless_told_otherwise():
    from riskmin._training._optim import make_optimizer

    parameters = [torch.nn.Parameter(torch.zeros(2))]
    decay = lambda **settings: make_optimizer(Config(**settings), parameters).param_groups[0]["weight_decay"]
    assert (decay(optimizer="adamw"), decay(optimizer="adamw", weight_decay=0.0), decay(optimizer="adam")) == (0.01, 0.0, 0.0)
    assert decay(optimizer="sgd", weight_decay=0.1) == 0.1


def test_max_steps_alone_says_how_long_to_train_and_epochs_set_with_it_still_bound(lab1):
    alone = riskmin.fit("linear", lab1, max_steps=130, **FAST)  # 25 steps an epoch: the default 100 epochs play no part
    assert alone.summary["steps"] == 130 and alone.config.epochs == 6
    many = riskmin.fit("linear", lab1, max_steps=3000, val=0, test=0, batch_size=800, **FAST)  # 2 steps an epoch
    assert many.summary["steps"] == 3000
    both = riskmin.fit("linear", lab1, max_steps=130, epochs=2, **FAST)
    assert both.summary["steps"] == 50


def said(recorded) -> str:
    """The riskmin warnings recorded so far, one per line; the record emptied."""
    text = "\n".join(str(w.message) for w in recorded if issubclass(w.category, riskmin.RiskminWarning))
    recorded.clear()
    return text


def test_a_model_that_ends_in_a_sigmoid_trained_with_bce_is_warned_about(recwarn):
    x = torch.randn(300, 3, generator=torch.Generator().manual_seed(0))
    y = (x[:, :1] > 0).float()
    torch.manual_seed(0)
    riskmin.fit(torch.nn.Sequential(torch.nn.Linear(3, 1), torch.nn.Sigmoid()), (x, y), loss="bce", epochs=1, **FAST)
    assert "every output of the model lies in [0, 1] but loss bce applies a sigmoid itself" in said(recwarn)
    riskmin.fit(torch.nn.Sequential(torch.nn.Linear(3, 1), torch.nn.Sigmoid()), (x, y), loss=torch.nn.BCELoss(), epochs=1, **FAST)
    riskmin.fit("mlp", (x, y), loss="bce", epochs=1, **FAST)
    assert "lies in [0, 1]" not in said(recwarn)


BATCHES = [dict(batch_size=32), dict(batch_size=30, drop_last=True), dict(batch_size=0), dict(batch_size=30, sampling="random")]


@pytest.mark.parametrize("given, settings", [("tensors", s) for s in BATCHES] + [("Dataset", s) for s in BATCHES]
                         + [("Dataset", dict(batch_size=1000)), ("Dataset", dict(batch_size=1000, drop_last=True))])
def test_the_batches_of_an_epoch_are_counted_before_the_data_is_prepared_as_they_are_cut(lab1, given, settings):
    from riskmin._training._prepare import Prepared, as_splits, batches_per_epoch

    config = Config(**settings)
    splits = as_splits(lab1 if given == "tensors" else TensorDataset(lab1.x, lab1.y), config)
    prepared = Prepared(splits, config, torch.device("cpu"))
    assert batches_per_epoch(splits, config) == len(prepared.batches(config))


def test_a_monte_carlo_run_trains_alone_under_torchrun_told_so_not_by_a_global(lab1, monkeypatch):
    from riskmin._training._loop import fit_alone

    monkeypatch.setenv("WORLD_SIZE", "2")  # as torchrun sets it: fit would join the other process, fit_alone does not
    run = fit_alone("linear", lab1, Config(epochs=2, progress=False))
    assert run.summary["epochs_run"] == 2 and run.summary["n_train"] == 800  # every training row, no process' share


def test_a_monitored_accuracy_keeps_its_highest_epoch_without_a_mode():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(200, 2, generator=generator)
    y = ((x[:, 0] + 0.8 * torch.randn(200, generator=generator)) > 0).long()  # noisy classes: accuracy goes up and down
    run = riskmin.fit("linear", (x, y), monitor="val_accuracy", epochs=15, lr=0.5, optimizer="sgd", val=0.3, progress=False)
    accuracies = [row["val_accuracy"] for row in run.history]
    assert len(set(accuracies)) > 2 and accuracies.index(max(accuracies)) + 1 == run.summary["best_epoch"]


def test_a_table_smaller_than_the_default_batch_trains_on_its_whole_split_with_a_note():
    x = torch.randn(20, 2, generator=torch.Generator().manual_seed(0))
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        run = riskmin.fit("linear", (x, x.sum(1, keepdim=True)), epochs=3, progress=False)
    assert run.config.batch_size == 0 and run.summary["steps"] == 3  # 16 training rows, one step an epoch
    assert [str(w.message) for w in said if w.category is riskmin.RiskminNote] == [
        "the training split has 16 rows, fewer than the default batch of 32; batch_size 0 is used: each step takes its "
        "whole training split"]
    with pytest.raises(riskmin.RiskminError, match=r"batch_size = 40 is larger than the training split \(16 samples\)"):
        riskmin.fit("linear", (x, x.sum(1, keepdim=True)), epochs=3, batch_size=40, progress=False)


class UnfreezeOnly:
    """Unfreezes the first layer after epoch 1 and adds it to no optimizer group: the layer does not train."""

    def on_epoch_end(self, state):
        if state.epoch == 1:
            state.model[0].requires_grad_(True)


def test_a_layer_unfrozen_without_its_optimizer_group_is_said_once_and_stays_put(lab1):
    torch.manual_seed(0)
    model = models.MLP(lab1.n_features, lab1.n_targets, hidden=(16,))
    model[0].requires_grad_(False)
    start = model[0].weight.clone()
    with pytest.warns(riskmin.RiskminWarning) as said:
        riskmin.fit(model, lab1, epochs=3, batch_size=100, callbacks=[UnfreezeOnly()], restore_best=False, **FAST)
    # a warning of training, not a note of how the data was read
    unfrozen = [str(w.message) for w in said if "no group of the optimizer" in str(w.message)
                and w.category is riskmin.RiskminWarning]
    assert unfrozen == ["parameters 0.weight, 0.bias now require a gradient but lie in no group of the optimizer, which "
                        "holds the parameters that required one when training began, so they do not train; the callback "
                        "that unfreezes a layer adds it too: state.optimizer.add_param_group({'params': "
                        "list(layer.parameters())})"]
    assert torch.equal(model[0].weight, start)  # as the sentence says: a loop by hand with this optimizer moves it no more


def test_a_layer_unfrozen_with_its_group_is_not_said(lab1, recwarn):
    torch.manual_seed(0)
    model = models.MLP(lab1.n_features, lab1.n_targets, hidden=(16,))
    model[0].requires_grad_(False)
    riskmin.fit(model, lab1, epochs=3, batch_size=100, callbacks=[Unfreeze()], **FAST)
    assert not [w for w in recwarn if "no group of the optimizer" in str(w.message)]


def test_parameters_ones_own_optimizer_leaves_out_from_the_start_are_not_said_to_be_unfrozen(lab1, recwarn):
    torch.manual_seed(0)
    model = models.MLP(lab1.n_features, lab1.n_targets, hidden=(16,))
    riskmin.fit(model, lab1, epochs=2, batch_size=100, optimizer=lambda ps: torch.optim.SGD(model[2].parameters(), lr=0.01),
                **FAST)
    assert not [w for w in recwarn if "no group of the optimizer" in str(w.message)]
