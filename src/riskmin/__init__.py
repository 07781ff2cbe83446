"""riskmin: train any PyTorch model by empirical risk minimization, with everything around the loop.

>>> import riskmin
>>> run = riskmin.fit("linear", "line", split="tutorial", optimizer="sgd", lr=0.1, epochs=20, progress=False)
>>> sorted(run.summary)[:3]
['best_epoch', 'best_step', 'closed_form_test_loss']
"""

from . import models
from .config import Config, RiskminError
from .data import Data, Splits, Standardizer, split
from .datasets import DATASETS, load
from ._loop import evaluate, fit, predict
from ._rundir import Run
from ._experiments import MonteCarlo, montecarlo
from ._compare import Comparison, compare
from ._lr_find import LrFinding, lr_find

__all__ = ["Comparison", "Config", "Data", "DATASETS", "Run", "RiskminError", "Splits", "Standardizer",
           "LrFinding", "MonteCarlo", "compare", "evaluate", "fit", "load", "lr_find", "models", "montecarlo", "predict", "split"]
__version__ = "0.1.0"
