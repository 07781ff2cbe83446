"""Built-in data sets by name, generated on the spot so that nothing is downloaded."""

from __future__ import annotations

import os

import numpy as np
import torch

from .config import Config, RiskminError
from .data import Data
from ._data._frames import for_python, in_python
from ._data._readers import read
from ._paths import DATASETS, GIVEN_IN_PYTHON, SUFFIXES, is_file_name

__all__ = ["DATASETS", "lab1", "line", "load"]


def lab1(n_samples: int = 1000, n_inputs: int = 10, n_outputs: int = 2, noise: float = 0.5, seed: int = 0) -> Data:
    """Linear data y = A x + w: x ~ N(0, I_n), A an m x n matrix of Bernoulli(1/2) entries, w ~ N(0, noise^2 I_m).

    Defaults: 1000 samples, n = 10 inputs, m = 2 outputs, noise 0.5, seed 0.

    >>> lab1(n_samples=4).x.shape
    torch.Size([4, 10])
    """
    generator = torch.Generator().manual_seed(seed)
    A = torch.bernoulli(torch.full((n_outputs, n_inputs), 0.5), generator=generator)
    x = torch.randn(n_samples, n_inputs, generator=generator)
    w = noise * torch.randn(n_samples, n_outputs, generator=generator)
    return Data(x, x @ A.T + w, name="lab1")


def line() -> Data:
    """The line y = 1 + 2x + 0.1 noise, 100 points, from NumPy's legacy generator seeded with 42.

    The same generator then shuffles the indices; the first 80 are the tutorial's
    training split and the last 20 its validation split (`split="tutorial"`).
    """
    generator = np.random.RandomState(42)
    x = generator.rand(100, 1)
    y = 1 + 2 * x + 0.1 * generator.randn(100, 1)
    order = np.arange(100)
    generator.shuffle(order)
    order = torch.from_numpy(order).long()
    return Data(
        torch.from_numpy(x), torch.from_numpy(y), ["x"], ["y"], name="line", tutorial_split=(order[:80], order[80:])
    )


def load(name: str | bytes | os.PathLike = "lab1", config: Config | None = None, **settings) -> Data:
    """A built-in data set by name, or a data file (.csv, .parquet, .npz), with the settings of `config` and the
    keywords (target=, features=, task=, n_samples=, ...) that apply, as fit takes them; what reading a file guessed
    or did (the task, the classes, columns left out) is told as RiskminNote warnings, and a mistake is said in
    Python's words (target=, not --target).

    >>> load("line").x.shape, load("lab1", n_samples=50).x.shape
    (torch.Size([100, 1]), torch.Size([50, 10]))
    """
    if not isinstance(name, (str, bytes, os.PathLike)):
        raise RiskminError(
            f"load reads a data set's name or a file's path, not a {type(name).__name__}; give a table or tensors to "
            "fit, montecarlo, compare or curve as they are (with target= for a table)"
        )
    config = (config or Config()).replace(**settings)
    return for_python(lambda: read_data(os.fsdecode(name), config, voice=in_python))


# what reads a file and draws a data set besides its name: what Data.source keeps for config.toml to record
FILE_SETTINGS = ("target", "features", "task", "missing")
DATA_SET_SETTINGS = {"lab1": ("n_samples", "n_inputs", "n_outputs", "noise", "data_seed")}


def read_data(name: str, config: Config | None = None, voice=None) -> Data:
    """`load` as the command line reads, saying nothing: what reading a file guessed or did is kept in `Data.notes`,
    in the flags' words (or as `voice` says them), for the command to print beside its results.

    >>> read_data("line").notes
    []
    """
    config = config or Config()
    if name.endswith(GIVEN_IN_PYTHON):  # what config.toml records of data passed as an object
        raise RiskminError(
            f"data '{name}' names no file or data set, only what a run was given in Python; give the data again, "
            "as DATA on the command line or as the data argument in Python"
        )
    if is_file_name(name):
        data = read(name, config.target, config.features, config.task, config.missing, config.loss, voice)
        data.source = {"data": os.path.abspath(name), **{key: getattr(config, key) for key in FILE_SETTINGS}}
        return data
    if config.target or config.features:
        raise RiskminError(
            f"--target and --features (target=, features=) choose columns of a table; built-in data set '{name}' has "
            "none"
        )
    if config.task == "classification":
        raise RiskminError(f"built-in data set '{name}' is regression data; drop --task classification (task=\"auto\")")
    built = {
        "lab1": lambda: lab1(config.n_samples, config.n_inputs, config.n_outputs, config.noise, config.data_seed),
        "line": line,
    }.get(name)
    if built is not None:
        data = built()
        data.source = {"data": name, **{key: getattr(config, key) for key in DATA_SET_SETTINGS.get(name, ())}}
        return data
    raise RiskminError(
        f"unknown data set '{name}'; built-in ones are {', '.join(DATASETS)} (see `riskmin datasets`), "
        f"or give a {', '.join(SUFFIXES)} file"
    )
