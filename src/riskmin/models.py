"""Parametrizations by name: linear (ŷ = Hx), two_layer (ŷ = H2 σ(H1 x)) and mlp.

Any `nn.Module` works with `fit`; these are the ones the command line can build.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from .config import Config, RiskminError

__all__ = ["ACTIVATIONS", "Linear", "MLP", "TwoLayerNN", "build"]

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "gelu": nn.GELU}


class Linear(nn.Module):
    """ŷ = H x (+ b): the simplest parametrization, whose ERM problem is least squares under MSE.

    >>> Linear(3, 2)(torch.zeros(4, 3)).shape
    torch.Size([4, 2])
    """

    def __init__(self, n_inputs: int, n_outputs: int, bias: bool = True):
        super().__init__()
        self.H = nn.Linear(n_inputs, n_outputs, bias=bias)

    def forward(self, x):
        return self.H(x)


class TwoLayerNN(nn.Module):
    """ŷ = H2 σ(H1 x): one hidden layer of width `hidden`.

    >>> TwoLayerNN(3, 2, hidden=8)(torch.zeros(4, 3)).shape
    torch.Size([4, 2])
    """

    def __init__(self, n_inputs: int, n_outputs: int, hidden: int = 32, activation: str = "relu", bias: bool = True):
        super().__init__()
        self.H1 = nn.Linear(n_inputs, hidden, bias=bias)
        self.sigma = ACTIVATIONS[activation]()
        self.H2 = nn.Linear(hidden, n_outputs, bias=bias)

    def forward(self, x):
        return self.H2(self.sigma(self.H1(x)))


class MLP(nn.Sequential):
    """Fully connected layers of the given hidden widths, each followed by σ and optional dropout.

    >>> MLP(3, 1, hidden=(16, 16))(torch.zeros(4, 3)).shape
    torch.Size([4, 1])
    """

    def __init__(
        self,
        n_inputs: int,
        n_outputs: int,
        hidden=(64, 64),
        activation: str = "relu",
        dropout: float = 0.0,
        bias: bool = True,
    ):
        layers = []
        width = n_inputs
        for next_width in hidden:
            layers += [nn.Linear(width, next_width, bias=bias), ACTIVATIONS[activation]()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = next_width
        layers.append(nn.Linear(width, n_outputs, bias=bias))
        super().__init__(*layers)


def build(config: Config, n_inputs: int, n_outputs: int, seed: Optional[int] = None) -> nn.Module:
    """The parametrization `config.model`, initialized from `seed` (default `config.seed`) without touching the global
    RNG."""
    if config.model == "custom":
        raise RiskminError(
            "model custom is a module of your own "
            f"({config.model_class or 'a class riskmin cannot build'}); pass a fresh instance of it in its place: "
            "riskmin.fit(MyNet(), data), or Run.load(directory, model=MyNet()) for a saved run"
        )
    # the layers draw their initial weights from the CPU's default generator: seeded here and given its state back
    # after, which is what torch.manual_seed under fork_rng does for them, at a fiftieth of the cost (it seeds every
    # device)
    generator = torch.default_generator
    state = generator.get_state()
    generator.manual_seed(config.seed if seed is None else seed)
    try:
        if config.model == "linear":
            return Linear(n_inputs, n_outputs, config.bias)
        if config.model == "two_layer":
            return TwoLayerNN(n_inputs, n_outputs, config.hidden[0], config.activation, config.bias)
        return MLP(n_inputs, n_outputs, config.hidden, config.activation, config.dropout, config.bias)
    finally:
        generator.set_state(state)


# layers whose forward is the same in training and evaluation mode
# fmt: off
MODE_FREE = (
    nn.Linear, nn.Bilinear, nn.Identity, nn.Flatten, nn.Unflatten, nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.Sigmoid, nn.GELU,
    nn.SiLU, nn.ELU, nn.Softplus, nn.Softmax, nn.LogSoftmax, nn.Conv1d, nn.Conv2d, nn.Embedding, nn.LayerNorm,
)
# fmt: on


def mode_free(model: nn.Module) -> bool:
    """Whether train() and eval() cannot change what `model` computes: riskmin's own models without dropout, and
    any model built only of the layers in MODE_FREE. Others (dropout, batch norm, any custom module) are switched.
    Decided by exact type: a subclass of nn.Linear may read `self.training` (a noisy or variational layer).

    Not switching such a model, and taking its final validation metrics from the last validation, saves a noticeable
    share of a small full-batch fit (benchmarks/overhead.py)."""
    built_in = (Linear, TwoLayerNN, MLP)
    return all(type(m) in MODE_FREE or type(m) in built_in for m in model.modules())


def build_settings(module: nn.Module) -> dict:
    """The settings that build `module` again: riskmin's own parametrizations by name and shape, any other as
    model "custom" with its class, which Run.load then asks for.

    >>> build_settings(TwoLayerNN(3, 1, hidden=8))["hidden"]
    (8,)
    """
    activation = {kind: name for name, kind in ACTIVATIONS.items()}
    if type(module) is Linear:
        return {"model": "linear", "bias": module.H.bias is not None}
    if type(module) is TwoLayerNN and type(module.sigma) in activation:
        return {
            "model": "two_layer",
            "hidden": (module.H1.out_features,),
            "activation": activation[type(module.sigma)],
            "bias": module.H1.bias is not None,
        }
    layers = list(module) if type(module) is MLP else []
    linear = [layer for layer in layers if isinstance(layer, nn.Linear)]
    kinds = {type(layer) for layer in layers} - {nn.Linear, nn.Dropout}
    if linear and len(kinds) == 1 and kinds <= set(activation):
        dropout = [layer.p for layer in layers if isinstance(layer, nn.Dropout)]
        return {
            "model": "mlp",
            "hidden": tuple(layer.out_features for layer in linear[:-1]),
            "activation": activation[kinds.pop()],
            "dropout": dropout[0] if dropout else 0.0,
            "bias": linear[0].bias is not None,
        }
    return {"model": "custom", "model_class": f"{type(module).__module__}.{type(module).__qualname__}"}
