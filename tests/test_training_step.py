"""A model's own training_step (and validation_step, configure_optimizers): riskmin calls it in place of
loss(model(x), y) and keeps everything around it."""

import pytest
import torch
import torch.nn.functional as F

import riskmin
from riskmin import RiskminError

FAST = dict(progress=False)


class Stepped(torch.nn.Module):
    def __init__(self, inputs=10, outputs=2):
        super().__init__()
        torch.manual_seed(0)
        self.layer = torch.nn.Linear(inputs, outputs)

    def forward(self, x):
        return self.layer(x)

    def training_step(self, batch):
        x, y = batch
        return F.mse_loss(self(x), y)


class Plain(Stepped):
    training_step = None  # the same module without a step of its own


del Plain.training_step


def test_a_training_step_gives_the_weights_of_the_same_loss_given_by_name(lab1):
    ours = riskmin.fit(Stepped(), lab1, optimizer="sgd", lr=0.05, epochs=3, standardize_target=False, restore_best=False, **FAST)
    plain = riskmin.fit(Plain(), lab1, optimizer="sgd", lr=0.05, epochs=3, standardize_target=False, restore_best=False, **FAST)
    assert torch.equal(ours.model.layer.weight, plain.model.layer.weight)
    assert ours.history[-1]["val_loss"] == pytest.approx(plain.history[-1]["val_loss"], rel=1e-5)
    assert (ours.config.loss, ours.config.loss_callable) == ("custom", f"{__name__}.Stepped.training_step")


class Classifier(Stepped):
    def __init__(self):
        super().__init__(2, 3)

    def training_step(self, batch):
        x, y = batch
        return F.cross_entropy(self(x), y)

    def validation_step(self, batch):
        x, y = batch
        logits = self(x)
        return {"loss": F.cross_entropy(logits, y, reduction="sum"), "hits": (logits.argmax(1) == y).sum()}

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.5)


def classes():
    x = torch.randn(600, 2, generator=torch.Generator().manual_seed(0))
    return x, (x[:, 0] > 0).long() + (x[:, 1] > 0).long()


def test_validation_step_sums_are_reported_per_row_and_configure_optimizers_is_used(tmp_path):
    x, y = classes()
    run = riskmin.fit(Classifier(), (x, y), epochs=20, patience=5, monitor="val_hits", mode="max", **FAST)
    assert set(run.history[-1]) >= {"val_loss", "val_hits"} and 0.6 < run.test["test_hits"] <= 1  # a fraction of the rows
    assert run.history[0]["lr"] == 0.5  # the module's optimizer, not riskmin's default rate
    assert run.config.optimizer_callable.endswith("Classifier.configure_optimizers")
    assert run.summary["best_epoch"] == max(run.history, key=lambda row: row["val_hits"])["epoch"]


@pytest.mark.parametrize("settings, message", [
    (dict(loss="mse"), "the model defines training_step, which computes its own loss; drop loss="),
    (dict(metrics={"m": lambda o, t: o.mean()}), "return your metrics as sums over the batch from its validation_step"),
])
def test_a_training_step_with_a_loss_or_output_metrics_is_refused(lab1, settings, message):
    with pytest.raises(RiskminError, match=message):
        riskmin.fit(Stepped(), lab1, epochs=1, **settings, **FAST)


def test_a_bad_step_is_one_clear_error(lab1):
    class NotScalar(Stepped):
        def training_step(self, batch):
            return (self(batch[0]) - batch[1]) ** 2

    class NoLoss(Stepped):
        def validation_step(self, batch):
            return {"hits": 1}

    with pytest.raises(RiskminError, match=r"loss training_step returned a tensor of shape \[32, 2\], not a scalar tensor"):
        riskmin.fit(NotScalar(), lab1, epochs=1, **FAST)
    with pytest.raises(RiskminError, match="validation_step returned a dict without loss; return a dict of sums"):
        riskmin.fit(NoLoss(), lab1, epochs=1, **FAST)


def test_montecarlo_trains_a_model_with_its_own_step_sequentially(lab1):
    mc = riskmin.montecarlo(Stepped, lab1, runs=2, epochs=1, **FAST)
    assert mc.summary["engine"] == "sequential" and "own training_step" in mc.notes[0]


def test_a_lightning_step_of_batch_and_batch_idx_gets_each_batchs_place_in_its_epoch(lab1):
    class Indexed(Stepped):
        def __init__(self):
            super().__init__()
            self.seen = []

        def training_step(self, batch, batch_idx):
            if self.training:  # validation without a validation_step calls it too, in eval mode
                self.seen.append(batch_idx)
            return super().training_step(batch)

    model = Indexed()
    run = riskmin.fit(model, lab1, epochs=2, batch_size=400, val=0.1, test=0.1, **FAST)  # 2 batches an epoch
    assert model.seen[:2] == [0, 1] and model.seen[-2:] == [0, 1] and run.summary["steps"] == 4


def test_a_saved_run_of_a_model_with_its_own_step_evaluates_by_that_step(lab1, tmp_path):
    run = riskmin.fit(Stepped(), lab1, epochs=1, **FAST)
    run.save(tmp_path / "run")
    loaded = riskmin.Run.load(tmp_path / "run", model=Stepped())
    assert riskmin.evaluate(loaded, lab1)["loss"] == pytest.approx(riskmin.evaluate(run, lab1)["loss"], rel=1e-6)
