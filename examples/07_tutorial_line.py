"""The line tutorial: fit y = a + b x to 80 noisy points of y = 1 + 2x by full-batch gradient descent.

Run with the tutorial's own split, seed and settings, and with neither x nor y scaled, it ends at
a ≈ 1.0235 and b ≈ 1.9690, the least-squares solution, as the tutorial prints.
"""
import torch

import riskmin


class LineRegression(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(42)  # the tutorial's initialization of a and b
        self.a = torch.nn.Parameter(torch.randn(1))
        self.b = torch.nn.Parameter(torch.randn(1))

    def forward(self, x):
        return self.a + self.b * x


data = riskmin.load("line")
run = riskmin.fit(LineRegression(), data, split="tutorial", standardize=False, standardize_target=False,
                  optimizer="sgd", lr=0.1, epochs=1000, batch_size=80, restore_best=False, progress=False)
a, b = run.model.a.item(), run.model.b.item()
print(f"a = {a:.4f}, b = {b:.4f}, validation loss {run.summary['val_loss']:.5f}")
