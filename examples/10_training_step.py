"""Raschka's PyTorch Lightning example: a module that holds its own `training_step` and `configure_optimizers`.

riskmin calls the module's training_step(batch) in place of loss(model(x), y), and takes its
optimizer from configure_optimizers(); everything around the step (validation by the module's
validation_step, the best weights, early stopping, the test set, checkpoints) is riskmin's.
A step may take (batch) or, as here and in Lightning, (batch, batch_idx).
"""
import torch
import torch.nn.functional as F

import riskmin


class PyTorchMLP(torch.nn.Module):
    def __init__(self, num_features, num_classes):
        super().__init__()
        self.all_layers = torch.nn.Sequential(
            torch.nn.Linear(num_features, 25), torch.nn.ReLU(),
            torch.nn.Linear(25, 20), torch.nn.ReLU(),
            torch.nn.Linear(20, num_classes))

    def forward(self, x):
        return self.all_layers(x)


class LightningModel(torch.nn.Module):  # a pl.LightningModule in the original; riskmin needs no base class
    def __init__(self, model, learning_rate):
        super().__init__()
        self.model, self.learning_rate = model, learning_rate

    def forward(self, x):
        return self.model(x)

    def training_step(self, batch, batch_idx):
        features, targets = batch
        forward_pass_outputs = self.model(features)
        loss = F.cross_entropy(forward_pass_outputs, targets)
        return loss  # riskmin runs backward and the optimizer's step

    def validation_step(self, batch, batch_idx):
        features, targets = batch
        logits = self.model(features)
        return {"loss": F.cross_entropy(logits, targets, reduction="sum"),  # sums over the batch; riskmin divides by the rows
                "accuracy": (logits.argmax(1) == targets).sum()}

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.learning_rate)


# two interleaved half moons of 1000 points, as small stand-ins for the article's data
generator = torch.Generator().manual_seed(1)
angle = torch.rand(1000, generator=generator) * torch.pi
label = torch.randint(0, 2, (1000,), generator=generator)
x = torch.stack([torch.cos(angle) + label * 1.0, torch.sin(angle) * (1 - 2 * label) + label * 0.5], 1)
x = x + 0.25 * torch.randn(1000, 2, generator=generator)

torch.manual_seed(123)
lightning_model = LightningModel(PyTorchMLP(num_features=2, num_classes=2), learning_rate=0.1)
run = riskmin.fit(lightning_model, (x, label), epochs=100, batch_size=32, patience=10, progress=False)
print(f"trained {run.summary['epochs_run']} epochs; test accuracy {run.test['test_accuracy']:.3f}")
print(f"config.toml records: loss = {run.config.loss_callable}, optimizer = {run.config.optimizer_callable}")
