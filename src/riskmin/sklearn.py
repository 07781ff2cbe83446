"""scikit-learn estimators that train through `riskmin.fit`: `RiskminRegressor` and `RiskminClassifier`.

They follow scikit-learn's conventions: the constructor stores riskmin's settings as they are
given (so `get_params`, `set_params` and `clone` work), `fit(X, y)` validates its input, trains
a fresh model and returns the estimator, and what it learned ends in an underscore (`model_`,
`run_`, `history_`, `n_features_in_`, `feature_names_in_`, `classes_`). They work inside
`Pipeline`, `ColumnTransformer`, `GridSearchCV`, `cross_validate` and
`TransformedTargetRegressor`. Features, and a regression target, are standardized with
training-split statistics by riskmin itself, so no scaler is needed in front.

A fitted estimator pickles, as scikit-learn users expect (`pickle`, `joblib`); riskmin's own run
files stay free of pickle: `estimator.run_.save(path)` writes one, which `riskmin.Run.load`
reads back without unpickling anything.

>>> import numpy as np
>>> X = np.random.default_rng(0).standard_normal((200, 3)); y = X @ [1.0, 2.0, 3.0]
>>> RiskminRegressor(model="linear", lr=0.1, epochs=30, random_state=0).fit(X, y).score(X, y) > 0.99
True
"""

from __future__ import annotations

import copy
import inspect
from typing import Callable, Optional, Union

import numpy as np
import torch
from torch import nn

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.utils import check_random_state
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import check_is_fitted, validate_data
except ImportError as error:  # scikit-learn is an optional extra
    raise ImportError(
        "riskmin.sklearn needs scikit-learn 1.6 or newer; install it with pip install 'riskmin[sklearn]'"
    ) from error

from ._data._frames import array_of, is_sparse, row_index
from ._data._outputs import Kind
from ._training._loop import fit, predict
from .config import FIELDS, Config, RiskminError, settings_where
from .data import Data, split_sizes

__all__ = ["RiskminClassifier", "RiskminRegressor"]

SEEDS = 2**31 - 1  # a random_state that is not a number draws riskmin's seed below this
# every parameter but config is a setting too, which config= may give: Config's name where it has another
SETTING_OF = {"random_state": "seed", "verbose": "progress"}
# the estimator's split, which config= cannot change: every row fit(X, y) is given trains but the val share
OWN_SPLIT = {"test": 0.0, "train": None, "split": "random"}
# what an estimator has no use for: it is given X and y (no data to read), trains one model, and writes nothing
UNUSED = (
    *settings_where(group="Monte-Carlo"),
    *(name for name in settings_where(group="data") if name not in ("missing", "target_transform")),
    "out",
    "name",
    "overwrite",
    "checkpoint_every",
)


class RiskminEstimator(BaseEstimator):
    """What both estimators share: riskmin's settings as parameters, and one training through `riskmin.fit`.

    `model` is a built-in name ("linear", "two_layer", "mlp"), an nn.Module (copied at every fit, so
    each fit starts from its weights) or a callable `model(n_inputs, n_outputs)` that returns a fresh one.
    `loss` and `optimizer` take a name, or an object of one's own as `riskmin.fit` does (a loss module, an Optimizer
    class or a function of the parameters). `val` is the fraction of the rows held out to pick the best epoch and stop
    early after `patience` epochs without improvement; with `val=0` (or too few rows to hold one out) training runs all
    `epochs` and keeps the last weights. `config`, a riskmin.Config or a dict of its fields, holds any
    other setting (weight_decay, scheduler, activation, dropout, ...); one that is a parameter (`seed` is
    random_state's, `progress` verbose's) is refused at fit, to be given as the parameter, and so is the split,
    which is the estimator's own (no test, train or split there). A dict gives the keys it holds, a Config the
    fields that differ from Config's defaults: a Config keeps no record of the fields it was given (Config(seed=0) ==
    Config()), so a field at its default is not refused but left to the parameter, which wins (random_state, not
    Config(seed=0), seeds the run); give config as a dict to have every setting in it checked.
    `random_state` an int gives the same split, initialization and batch order at every fit; None draws a seed from
    NumPy's global generator, as scikit-learn's estimators do. `device` is "cpu" unless set ("auto" takes a GPU
    where there is one). The parameters are many because scikit-learn searches only over constructor parameters.

    >>> X = np.random.default_rng(0).standard_normal((40, 2))
    >>> RiskminRegressor(epochs=3, config={"weight_decay": 0.01}).fit(X, X.sum(1)).run_.config.weight_decay
    0.01
    """

    def __init__(
        self,
        model: Union[str, nn.Module, Callable] = "two_layer",
        hidden=(32,),
        loss: Union[str, Callable] = "auto",
        optimizer: Union[str, Callable] = "adam",
        lr: float = 0.01,
        epochs: int = 100,
        batch_size: int = 32,
        val: float = 0.1,
        patience: int = 10,
        random_state=None,
        device: str = "cpu",
        verbose: bool = False,
        config: Optional[Union[Config, dict]] = None,
    ):
        self.model, self.hidden, self.loss, self.optimizer, self.lr = model, hidden, loss, optimizer, lr
        self.epochs, self.batch_size, self.val, self.patience = epochs, batch_size, val, patience
        self.random_state, self.device, self.verbose, self.config = random_state, device, verbose, config

    def _train(self, x: np.ndarray, y: np.ndarray, n_outputs: int, classes=None, index=None) -> None:
        """Train a fresh model on validated arrays and set the fitted attributes; a value riskmin refuses is named by
        its row's label in `index`, the index of the DataFrame X was, where it was one."""
        settings = self._settings(len(x))
        model = self._model(x.shape[1], n_outputs)
        names = [str(name) for name in getattr(self, "feature_names_in_", ())]  # a DataFrame's columns, for the run
        data = Data(tensor(x), tensor(y), feature_names=names, classes=classes, row_labels=index)
        run = fit(model, data, settings, **self._objects())
        self.run_, self.model_, self.history_ = run, run.model, run.history

    def _base(self) -> Config:
        """config= as a Config, the settings the parameters leave as they are. Refused: config= giving a setting that
        is a parameter (the parameter's default cannot be told from a value given on purpose, and GridSearchCV tunes
        the parameter alone), and a setting of the split, which the estimator makes itself."""
        base, given = given_in(self.config)
        for name, own in OWN_SPLIT.items():
            if name in given and given[name] != own:
                raise RiskminError(
                    f"config's {name}={given[name]!r} does not apply to {type(self).__name__}, which trains on "
                    "every row fit(X, y) is given but the val share; hold test rows out with scikit-learn "
                    "(train_test_split, cross_validate) and score them with score(X, y)"
                )
        for name in UNUSED:
            if name in given:
                raise RiskminError(
                    f"config's {name}={given[name]!r} means nothing to {type(self).__name__}, which is given X and y, "
                    "trains one model and writes no files; leave it out"
                )
        if given.get("missing", "error") != "error":  # scikit-learn refuses a NaN in X before riskmin could fill it
            raise RiskminError(
                f"config's missing={given['missing']!r} cannot apply to {type(self).__name__}: scikit-learn refuses a "
                "NaN in X before riskmin sees it; fill missing values in the pipeline, with "
                "sklearn.impute.SimpleImputer before the estimator"
            )
        parameters = [name for name in inspect.signature(RiskminEstimator.__init__).parameters if name != "self"]
        for parameter in parameters:
            name = SETTING_OF.get(parameter, parameter)
            if name in given:
                raise RiskminError(
                    f"config's {name}={given[name]!r} is the parameter {parameter} of {type(self).__name__}; give "
                    f"{type(self).__name__}({parameter}={given[name]!r}) instead, which GridSearchCV can tune"
                )
        return base

    def _chosen(self) -> dict:
        """The loss and the optimizer: names, which the Config holds, or objects of one's own (a loss module, an
        Optimizer class, ...), which fit takes beside it (_objects)."""
        return {"loss": self.loss, "optimizer": self.optimizer}

    def _objects(self) -> dict:
        return {name: value for name, value in self._chosen().items() if not isinstance(value, str)}

    def _settings(self, rows: int) -> Config:
        base = self._base()
        # too few rows for the val share to round to one: none held out, rather than the split's refusal
        few = isinstance(self.val, (int, float)) and 0 < self.val < 1 and round(self.val * rows) == 0
        _, n_val, _ = split_sizes(rows, val=0.0 if few else self.val, test=0.0)
        n_train = rows - n_val
        # no rows to judge by: no early stopping, the last weights kept, and a plateau schedule (if asked) follows the
        # training loss down
        judging = dict(patience=0, monitor="loss", mode="min", restore_best=False)
        stopping = dict(patience=self.patience) if n_val else judging
        batch_size = self.batch_size if self.batch_size and self.batch_size < n_train else 0
        # with its widths: hidden=(64, 64) is an mlp's
        named = dict(model=self.model) if isinstance(self.model, str) else {}
        return base.replace(
            **named,
            hidden=self.hidden,
            **{name: value for name, value in self._chosen().items() if isinstance(value, str)},
            lr=self.lr,
            epochs=self.epochs,
            batch_size=batch_size,
            val=self.val if n_val else 0.0,
            **OWN_SPLIT,
            seed=seed_of(self.random_state),
            device=self.device,
            progress=bool(self.verbose),
            **stopping,
        )

    def _model(self, n_inputs: int, n_outputs: int):
        if isinstance(self.model, str):
            return self.model
        if isinstance(self.model, nn.Module):
            return copy.deepcopy(self.model)  # no state kept between fits: each one trains its own copy
        if callable(self.model):
            return self.model(n_inputs, n_outputs)
        raise TypeError(
            "model must be a name, an nn.Module or a callable model(n_inputs, n_outputs), not "
            f"{type(self.model).__name__}"
        )

    def _checked(self, X, y, **checks) -> tuple:
        """X and y checked by scikit-learn at fit; X as a dense float array: float64 kept as it is, for riskmin's Data
        to check what float32, in which it trains, does to it, any other made float32 at once (a sparse or integer X
        made float64 first would take twice the memory)."""
        dtype = np.float32 if is_sparse(X) else (np.float32, np.float64)
        X, y = validate_data(self, X, y, dtype=dtype, accept_sparse=("csr", "csc", "coo"), **checks)
        return array_of(X), y

    def _outputs(self, X, kind: Kind = "value") -> np.ndarray:
        """The run's predictions of the rows of X, as float64 (scikit-learn's precision)."""
        check_is_fitted(self)
        X = array_of(validate_data(self, X, reset=False, dtype=np.float32, accept_sparse=("csr", "csc", "coo")))
        return predict(self.run_, tensor(X), kind=kind).double().numpy()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True  # densified: riskmin trains on dense rows
        return tags


def given_in(config) -> tuple:
    """(config= as a Config, the settings it gives): a dict's keys, or a Config's fields that differ from Config's
    defaults (it holds every setting, and no record of which were given: a field at its default reads as left out),
    each as Config holds it (hidden=[64, 64] as (64, 64))."""
    if isinstance(config, Config):
        return config, {name: getattr(config, name) for name, f in FIELDS.items() if getattr(config, name) != f.default}
    values = dict(config or {})
    base = Config.from_dict(values, source="config=")
    return base, {name: getattr(base, name) for name in values}


def seed_of(random_state) -> int:
    """riskmin's seed for a random_state: an int as it is, else drawn as scikit-learn draws (None: NumPy's global
    generator)."""
    if isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool) and random_state >= 0:
        return int(random_state)
    return int(check_random_state(random_state).randint(SEEDS))


def tensor(array: np.ndarray) -> torch.Tensor:
    """The array as a tensor that shares its memory; a read-only one (a memory map) is copied, as torch writes to
    tensors."""
    return torch.from_numpy(array if array.flags.writeable else array.copy())


class RiskminRegressor(RegressorMixin, RiskminEstimator):
    """A riskmin model as a scikit-learn regressor: one target or several (y of shape n or n x k); `score` is r2.

    >>> RiskminRegressor(lr=0.05, hidden=16).get_params()["hidden"]
    16
    """

    def fit(self, X, y):
        index = row_index(X)  # taken before validation makes X an array
        X, y = self._checked(X, y, multi_output=True, y_numeric=True)
        # float64, made float32 by Data: a target beyond float32's range is named as such, not as an infinite value
        y = np.asarray(y, dtype=np.float64)
        self._single = y.ndim == 1
        self._train(X, y.reshape(len(y), -1), 1 if self._single else y.shape[1], index=index)
        return self

    def predict(self, X) -> np.ndarray:
        out = self._outputs(X)
        return out[:, 0] if self._single else out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


class RiskminClassifier(ClassifierMixin, RiskminEstimator):
    """A riskmin model as a scikit-learn classifier, of any labels (numbers, text, true/false); `score` is accuracy.

    loss "auto" is cross_entropy over one logit per class; "bce" takes two classes and one logit.

    >>> RiskminClassifier(model="linear").set_params(lr=0.1).lr
    0.1
    """

    def fit(self, X, y):
        X, y = self._checked(X, y)
        check_classification_targets(y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"y has 1 class ({self.classes_[0]!r}); a classifier needs samples of at least 2 classes")
        names = self.classes_.tolist()  # as Python values: a saved run gives back 10, not "10"
        if self.loss == "bce":
            if len(self.classes_) != 2:
                raise ValueError(f"loss bce takes 2 classes but y has {len(self.classes_)}; use loss='cross_entropy'")
            self._train(X, codes.astype(np.float32)[:, None], 1, names)
        else:
            self._train(X, codes.astype(np.int64), len(self.classes_), names)
        return self

    def predict_proba(self, X) -> np.ndarray:
        """The probability of every class, columns in the order of `classes_`: each row sums to 1 in float64, as
        scikit-learn's log_loss checks (the model's float32 ones miss it by up to 1e-7)."""
        shares = self._outputs(X, kind="proba")
        return shares / shares.sum(axis=1, keepdims=True)

    def predict(self, X) -> np.ndarray:
        shares = self.predict_proba(X)
        return self.classes_[shares.argmax(1)]
