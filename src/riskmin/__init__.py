"""riskmin: train any PyTorch model by empirical risk minimization, with everything around the loop.

>>> import riskmin
>>> run = riskmin.fit("linear", "line", split="tutorial", optimizer="sgd", lr=0.1, epochs=20, progress=False)
>>> sorted(run.summary)[:3]
['best_epoch', 'best_step', 'device']

The public names are imported when first used (PEP 562), so that `import riskmin` and
`riskmin --help` do not wait seconds for torch: PUBLIC says which module holds each.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

# public name -> the module that defines it; "models" is the module itself
# fmt: off
PUBLIC = {
    "Comparison": "._experiments._compare", "compare": "._experiments._compare",
    "Config": ".config", "RiskminError": ".config", "RiskminWarning": ".config", "RiskminNote": ".config",
    "RiskminNumerics": ".config",
    "Curve": "._experiments._curve", "curve": "._experiments._curve",
    "Data": ".data", "Splits": ".data", "Standardizer": ".data", "split": "._training._prepare",
    "DATASETS": ".datasets", "load": ".datasets",
    "evaluate": "._training._loop", "fit": "._training._loop", "predict": "._training._loop",
    "graph": "._training._graph",
    "MonteCarlo": "._experiments._montecarlo", "montecarlo": "._experiments._montecarlo",
    "Run": "._runs._rundir",
    "LrFinding": "._training._lr_find", "lr_find": "._training._lr_find",
    "models": ".models",
}
__all__ = ["Comparison", "Config", "Curve", "Data", "DATASETS", "LrFinding", "MonteCarlo", "RiskminError",
           "RiskminNote", "RiskminNumerics", "RiskminWarning", "Run", "Splits", "Standardizer",
           "compare", "curve", "evaluate", "fit", "graph", "load", "lr_find", "models", "montecarlo", "predict",
           "split"]  # a list type checkers read
# fmt: on

if TYPE_CHECKING:  # what type checkers and editors see: the same names, imported as usual
    from . import models
    from ._experiments._compare import Comparison, compare
    from ._experiments._curve import Curve, curve
    from ._experiments._montecarlo import MonteCarlo, montecarlo
    from ._training._graph import graph
    from ._training._loop import evaluate, fit, predict
    from ._training._lr_find import LrFinding, lr_find
    from ._runs._rundir import Run
    from .config import Config, RiskminError, RiskminNote, RiskminNumerics, RiskminWarning
    from ._training._prepare import split
    from .data import Data, Splits, Standardizer
    from .datasets import DATASETS, load


def __getattr__(name: str):
    if name not in PUBLIC:
        raise AttributeError(f"module 'riskmin' has no attribute {name!r}")
    module = importlib.import_module(PUBLIC[name], __name__)
    return module if name == "models" else getattr(module, name)


def __dir__() -> list:
    return [*__all__, "__version__"]
