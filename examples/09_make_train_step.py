"""Godoy's `make_train_step(model, loss_fn, optimizer)`: the loop that never changes, given a model, a loss and an
optimizer of one's own. riskmin takes the same three objects and runs that loop (and validation around it).

The tutorial trains y = a + b x on the 80 training points of the `line` data by full-batch
gradient descent with nn.MSELoss and SGD(lr=0.1) for 1000 epochs; here the loss object and an
optimizer factory are passed as they are, and the result is the tutorial's: a ≈ 1.0235, b ≈ 1.9690.
"""
import torch
from torch import nn, optim

import riskmin


class ManualLinearRegression(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(42)  # the tutorial's initialization of a and b
        self.a = nn.Parameter(torch.randn(1, requires_grad=True, dtype=torch.float))
        self.b = nn.Parameter(torch.randn(1, requires_grad=True, dtype=torch.float))

    def forward(self, x):
        return self.a + self.b * x


model = ManualLinearRegression()
loss_fn = nn.MSELoss(reduction="mean")  # the tutorial's loss, as an object
make_optimizer = lambda parameters: optim.SGD(parameters, lr=1e-1)  # the tutorial's optimizer, built on riskmin's parameters

run = riskmin.fit(model, riskmin.load("line"), loss=loss_fn, optimizer=make_optimizer, split="tutorial", standardize=False,
                  epochs=1000, batch_size=80, restore_best=False, progress=False)
print(f"a = {run.model.a.item():.4f}, b = {run.model.b.item():.4f}, validation loss {run.summary['val_loss']:.5f}")
print(f"config.toml records: loss = {run.config.loss} ({run.config.loss_callable}), optimizer = {run.config.optimizer}")
