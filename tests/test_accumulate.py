"""Gradient accumulation: N batches of B add up to one step that equals a batch of N*B, whatever counts steps (schedules,
validation, early stopping, clipping, max_steps); an epoch's last short group is stepped; a checkpoint taken between the
batches of a group resumes bitwise; both Monte-Carlo engines agree."""

import math

import pytest
import torch
from safetensors.torch import load_file

import riskmin
from riskmin._cli._main import main
from riskmin._training._checkpoint import Checkpoints
from riskmin._training._checkpoint import TrainingInterrupted
from riskmin.callbacks import SignalAt

QUIET = dict(progress=False, restore_best=False)


def weights(model) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()])


@pytest.fixture(scope="module")
def ragged():
    # 808 training rows: batches of 64 end with one of 40, batches of 16 with one of 8, so the last group holds 16 + 16 + 8
    data = riskmin.load("lab1", riskmin.Config(n_samples=1010))
    assert len(riskmin.split(data, seed=0).train) == 808
    return data


@pytest.mark.parametrize("optimizer, lr", [("sgd", 0.05), ("adam", 0.01)])
def test_four_batches_of_16_accumulated_give_the_weights_of_one_batch_of_64(ragged, optimizer, lr):
    # the tolerance for both: 1e-5 (measured after these 10 epochs: 1e-7; Adam after 50 epochs: 1e-6)
    big = riskmin.fit("mlp", ragged, hidden=(32, 32), optimizer=optimizer, lr=lr, batch_size=64, epochs=10, **QUIET)
    summed = riskmin.fit("mlp", ragged, hidden=(32, 32), optimizer=optimizer, lr=lr, batch_size=16, accumulate=4, epochs=10, **QUIET)
    assert big.summary["steps"] == summed.summary["steps"] == 130
    assert (weights(big.model) - weights(summed.model)).abs().max() <= 1e-5
    assert [row["loss"] for row in summed.history] == pytest.approx([row["loss"] for row in big.history], rel=1e-5)


@pytest.mark.parametrize("settings", [
    dict(scheduler="cosine", scheduler_interval="step"),  # drawn over the run's optimizer steps: lr reaches 0 at the last
    dict(scheduler="one_cycle", scheduler_interval="step"),
    dict(val_every=5, patience=1, min_delta=1e-2),  # validations every 5 steps, and early stopping by them
    dict(clip_grad=0.05),  # the summed gradient is clipped, once a step
    dict(max_steps=20),
], ids=["cosine", "one_cycle", "val_every+patience", "clip_grad", "max_steps"])
def test_everything_that_counts_steps_counts_optimizer_steps(lab1, settings):
    big = riskmin.fit("two_layer", lab1, optimizer="sgd", lr=0.1, batch_size=64, epochs=6, **QUIET, **settings)
    summed = riskmin.fit("two_layer", lab1, optimizer="sgd", lr=0.1, batch_size=16, accumulate=4, epochs=6, **QUIET, **settings)
    assert [(row["epoch"], row["step"], row["lr"]) for row in summed.history] == \
        [(row["epoch"], row["step"], pytest.approx(row["lr"], abs=1e-12)) for row in big.history]
    assert {k: summed.summary[k] for k in ("steps", "epochs_run", "stopped_early")} == \
        {k: big.summary[k] for k in ("steps", "epochs_run", "stopped_early")}
    assert (weights(big.model) - weights(summed.model)).abs().max() <= 1e-5


def test_the_step_counts_of_a_stopping_run_differ_from_batches(lab1):
    # the settings above are not idle: early stopping stops, max_steps cuts an epoch, cosine ends at 0
    stopped = riskmin.fit("two_layer", lab1, optimizer="sgd", lr=0.1, batch_size=16, accumulate=4, epochs=6, val_every=5,
                          patience=1, min_delta=1e-2, **QUIET)
    assert stopped.summary["stopped_early"] and stopped.summary["steps"] % 5 == 0 and stopped.summary["steps"] < 78
    cut = riskmin.fit("two_layer", lab1, batch_size=16, accumulate=4, max_steps=20, **QUIET)
    assert (cut.summary["steps"], cut.summary["epochs_run"]) == (20, 2)  # 13 steps an epoch: 50 batches in groups of 4
    cosine = riskmin.fit("two_layer", lab1, batch_size=16, accumulate=4, epochs=2, scheduler="cosine", scheduler_interval="step", **QUIET)
    assert cosine.history[-1]["step"] == 26 and cosine.history[-1]["lr"] == pytest.approx(0.0, abs=1e-12)


class Batches:
    """Records each batch's place in its group and each step, as the callbacks see them."""

    def __init__(self):
        self.seen = []

    def on_batch_end(self, state):
        self.seen.append(("batch", state.epoch, state.epoch_step, state.accumulated))

    def on_step_end(self, state):
        self.seen.append(("step", state.epoch, state.step))


def test_an_epochs_last_short_group_is_stepped():
    data = riskmin.Data(torch.randn(100, 3), torch.randn(100, 1))  # 80 training rows, 5 batches of 16 an epoch
    recorder = Batches()
    run = riskmin.fit("linear", data, batch_size=16, accumulate=2, epochs=2, callbacks=[recorder], **QUIET)
    assert recorder.seen[:9] == [("batch", 1, 1, 1), ("batch", 1, 2, 2), ("step", 1, 1), ("batch", 1, 3, 1), ("batch", 1, 4, 2),
                                 ("step", 1, 2), ("batch", 1, 5, 1), ("step", 1, 3), ("batch", 2, 1, 1)]
    assert run.summary["steps"] == 6


def test_a_models_own_training_step_accumulates_and_sees_each_batchs_index():
    class Own(torch.nn.Linear):
        def __init__(self):
            super().__init__(3, 1)
            self.indices = []

        def training_step(self, batch, batch_idx):
            if self.training:  # validation sums the same step, in eval mode
                self.indices.append(batch_idx)
            x, y = batch
            return torch.nn.functional.mse_loss(self(x), y)

    data = riskmin.Data(torch.randn(100, 3), torch.randn(100, 1))
    torch.manual_seed(0)
    big = Own()
    torch.manual_seed(0)
    summed = Own()
    riskmin.fit(big, data, batch_size=32, epochs=3, optimizer="sgd", lr=0.1, **QUIET)
    riskmin.fit(summed, data, batch_size=16, accumulate=2, epochs=3, optimizer="sgd", lr=0.1, **QUIET)
    assert summed.indices == [0, 1, 2, 3, 4] * 3
    assert (weights(big) - weights(summed)).abs().max() <= 1e-6


def test_accumulating_more_batches_than_an_epoch_holds_is_said():
    data = riskmin.Data(torch.randn(100, 3), torch.randn(100, 1))
    with pytest.warns(riskmin.RiskminWarning, match=r"^accumulate 8 is more than the 3 batch\(es\) of an epoch, whose last group "
                                                    r"is stepped however short, so each step adds up 3; lower accumulate or the batch size$"):
        run = riskmin.fit("linear", data, batch_size=32, accumulate=8, epochs=2, **QUIET)
    assert run.summary["steps"] == 2


def test_a_checkpoint_between_the_batches_of_a_group_resumes_bitwise(tmp_path, lab1):
    # dropout and batches of 16 in groups of 3: 50 batches, 17 steps an epoch; interrupted after step 22 and 2 batches more
    settings = dict(model="mlp", hidden=(16, 16), dropout=0.1, batch_size=16, accumulate=3, epochs=3, patience=100,
                    checkpoint_every=1, progress=False)
    full = riskmin.fit(settings["model"], lab1, directory=tmp_path / "full", **{k: v for k, v in settings.items() if k != "model"})
    cut = tmp_path / "cut"
    with pytest.raises(TrainingInterrupted, match="^interrupted in epoch 2 after step 22 and 2 batch\\(es\\) of the next"):
        riskmin.fit("mlp", lab1, directory=cut, callbacks=[SignalAt(22, "SIGINT", batches=2)],
                    **{k: v for k, v in settings.items() if k != "model"})
    newest = Checkpoints(cut).complete()[0]
    held = load_file(str(newest.with_name(newest.name.replace(".manifest.json", ".safetensors"))))
    assert {k for k in held if k.startswith("grad/")} == {f"grad/{name}" for name, _ in full.model.named_parameters()}
    resumed = riskmin.fit("mlp", lab1, directory=cut, resume=True, **{k: v for k, v in settings.items() if k != "model"})
    assert torch.equal(weights(resumed.model), weights(full.model))
    assert [{k: v for k, v in row.items() if k != "seconds"} for row in resumed.history] == \
        [{k: v for k, v in row.items() if k != "seconds"} for row in full.history]


def test_the_flags_accumulate_4_batch_size_16_train_the_weights_of_batch_size_64(tmp_path):
    common = ["train", "lab1", "--optimizer", "sgd", "--lr", "0.05", "--epochs", "5", "--progress", "off", "--out", str(tmp_path)]
    assert main([*common, "--batch-size", "64", "--name", "big"]) == 0
    assert main([*common, "--batch-size", "16", "--accumulate", "4", "--name", "summed"]) == 0
    big, summed = (load_file(str(tmp_path / name / "model.safetensors")) for name in ("big", "summed"))
    assert max((big[k] - summed[k]).abs().max().item() for k in big) <= 1e-5
    assert "accumulate = 4" in (tmp_path / "summed" / "config.toml").read_text().splitlines()


@pytest.mark.parametrize("settings", [
    dict(optimizer="sgd", momentum=0.9, batch_size=8, accumulate=3, epochs=3),
    dict(optimizer="adam", batch_size=16, accumulate=2, epochs=4, patience=1),
    dict(optimizer="adamw", batch_size=8, accumulate=3, max_steps=7),
    dict(optimizer="sgd", batch_size=8, accumulate=4, epochs=3, sampling="random", scheduler="step", step_size=1),
])
def test_both_engines_accumulate_alike(settings):
    data = riskmin.load("lab1", riskmin.Config(n_samples=80))
    stacked = riskmin.montecarlo("two_layer", data, runs=3, engine="vectorized", progress=False, hidden=6, **settings)
    sequential = riskmin.montecarlo("two_layer", data, runs=3, engine="sequential", progress=False, hidden=6, **settings)
    for mine, theirs in zip(stacked.table, sequential.table):
        assert mine.keys() == theirs.keys()
        for key, value in mine.items():
            if isinstance(value, float):
                assert math.isclose(value, theirs[key], rel_tol=1e-4, abs_tol=1e-6), key
            else:
                assert value == theirs[key], key
