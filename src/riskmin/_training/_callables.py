"""The user's own loss, optimizer, scheduler and metrics, given to `fit` as Python objects beside the names; and the
callbacks of the user's own that `riskmin train --callback` names.

`Config` stays flat and TOML-able: `fit` takes the objects out of its keyword settings, keeps
them in `Callables`, and records each in the config by name only (loss "custom" and
loss_callable "module.function", ...), so that config.toml says what code a rerun needs and
a resume without it is one sentence naming what to pass.

>>> callables, settings = user_objects({"loss": torch.nn.SmoothL1Loss(), "lr": 0.1})
>>> settings["loss"], settings["loss_callable"], settings["lr"]
('custom', 'torch.nn.modules.loss.SmoothL1Loss', 0.1)
"""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass, field
from typing import Callable, Optional

import torch

from ..config import Config, RiskminError, RiskminNote, warn
from ..metrics import METRICS

OBJECT_SETTINGS = ("loss", "optimizer", "scheduler")  # settings that take a name or an object of the user's
SCHEDULERS = (torch.optim.lr_scheduler.LRScheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)


@dataclass
class Callables:
    """The objects a run was given in place of names; None where the name in the config serves."""

    loss: Optional[Callable] = None
    optimizer: Optional[Callable] = None
    scheduler: Optional[Callable] = None
    metrics: dict = field(default_factory=dict)


def qualified_name(value) -> str:
    """module.name of a function or class, a partial's of what it calls; of an instance (a loss module), its class's."""
    import functools

    value = value.func if isinstance(value, functools.partial) else value
    named = value if hasattr(value, "__qualname__") else type(value)
    return f"{named.__module__}.{named.__qualname__}"


def user_objects(settings: dict) -> tuple:
    """(Callables, the settings with each object replaced by "custom" and its qualified name)."""
    settings, callables = dict(settings), Callables()
    for key in OBJECT_SETTINGS:
        value = settings.get(key)
        if value is None or isinstance(value, str):
            continue
        # built over parameters (an optimizer) riskmin may not train, or an optimizer it does not make
        if isinstance(value, (torch.optim.Optimizer, *SCHEDULERS)):
            over, name = (
                ("parameters", "the parameters it trains")
                if key == "optimizer"
                else ("optimizer", "the optimizer it makes")
            )
            raise RiskminError(
                f"{key} = {type(value).__name__}(...), built already, is not allowed: riskmin builds it over {name}; "
                f"pass a function of the {over}, {key}=lambda {over}: {type(value).__name__}({over}, ...)"
            )
        if not callable(value):
            shown = repr(value) if "\n" not in repr(value) else f"a {type(value).__name__}"
            raise RiskminError(f"{key} = {shown} is not allowed; give a name or a callable ({WHAT[key]})")
        setattr(callables, key, loss_object(value) if key == "loss" else value)
        settings.update({key: "custom", f"{key}_callable": qualified_name(value)})
        if key == "optimizer":
            optimizer_note(value, settings)
    metrics = settings.pop("metrics", None)
    if metrics is not None and not isinstance(metrics, str):
        callables.metrics = checked_metrics(metrics)
        settings["metrics"] = ",".join(f"{name}={qualified_name(fn)}" for name, fn in callables.metrics.items())
    elif metrics is not None:
        settings["metrics"] = metrics
    return callables, settings


def loss_object(value):
    """A loss given as a class (torch.nn.MSELoss, as an optimizer is given as one): an instance of it, built without
    arguments; anything else as it is."""
    if not isinstance(value, type):
        return value
    try:
        return value()
    except TypeError:
        raise RiskminError(
            f"loss = {qualified_name(value)} is a class that needs arguments to build; pass an instance, "
            f"loss={value.__name__}(...)"
        ) from None


WHAT = {
    "loss": "output, target -> scalar tensor",
    "optimizer": "a torch.optim.Optimizer class, or parameters -> optimizer",
    "scheduler": "optimizer -> learning-rate scheduler",
}


def checked_metrics(metrics) -> dict:
    if not isinstance(metrics, dict):
        raise RiskminError(
            f"metrics = {metrics!r} is not allowed; give a dict of name -> function (output, target) -> "
            "mean over the batch"
        )
    for name, fn in metrics.items():
        if (
            not isinstance(name, str)
            or not name.isidentifier()
            or name in METRICS
            or name.startswith(("val_", "test_", "train_"))
        ):
            raise RiskminError(
                f"metric name {name!r} is not allowed; use a plain word that is not one of riskmin's "
                f"own ({', '.join(METRICS)}) and has no val_/test_/train_ prefix"
            )
        if not callable(fn):
            raise RiskminError(f"metric {name} = {fn!r} is not a function (output, target) -> mean over the batch")
    return dict(metrics)


def missing_callables(config: Config, callables: Callables) -> None:
    """Refuse a config that names an object of the user's (say from config.toml, to resume) without being given it."""
    wanted = [
        f"{key}={getattr(config, f'{key}_callable') or 'your ' + key}"
        for key in OBJECT_SETTINGS
        if getattr(config, key) == "custom" and getattr(callables, key) is None
    ]
    if config.metrics and not callables.metrics:
        wanted.append(
            "metrics={"
            + ", ".join(f"'{pair.split('=')[0]}': {pair.split('=')[-1]}" for pair in config.metrics.split(","))
            + "}"
        )
    if wanted:
        raise RiskminError(
            "this run uses Python code of your own that config.toml records by name only; pass "
            f"{', '.join(wanted)} to riskmin.fit (to resume: riskmin.fit(model, data, "
            "riskmin.Config.from_toml(RUN/config.toml), ..., directory=RUN, resume=True))"
        )


class OwnLoss:
    """A user's loss, checked at every call to return one number: a tensor of any other shape is one RiskminError.
    Called with (output, target), or with (batch,) for a model's own training_step."""

    def __init__(self, fn: Callable):
        self.fn, self.name = fn, qualified_name(fn).rsplit(".", 1)[-1]

    def __call__(self, *arguments):
        value = self.fn(*arguments)
        if isinstance(value, torch.Tensor) and value.dim() == 0:
            return value
        if not isinstance(value, torch.Tensor) or value.numel() != 1:
            raise RiskminError(
                f"loss {self.name} returned {kind_of(value)}, not a scalar tensor; reduce it to one "
                "number (e.g. .mean())"
            )
        return value.reshape(())


def model_step(model, callables: Callables, settings: dict) -> tuple:
    """A model that defines training_step(batch) -> loss trains by it, and by its configure_optimizers() when it has one
    and no optimizer is given: both recorded as its methods (loss custom, Class.training_step). The Callables and the
    settings to use."""
    if not hasattr(model, "training_step"):
        return callables, settings
    if callables.loss is not None or "loss" in settings:
        raise RiskminError("the model defines training_step, which computes its own loss; drop loss=")
    if callables.metrics:
        raise RiskminError(
            "metrics= measures the model's outputs, which a model with training_step does not hand "
            "over; return your metrics as sums over the batch from its validation_step instead"
        )
    name = qualified_name(type(model))
    callables = dataclasses.replace(callables, loss=model.training_step)
    settings = {**settings, "loss": "custom", "loss_callable": f"{name}.training_step"}
    if hasattr(model, "configure_optimizers") and callables.optimizer is None and "optimizer" not in settings:
        callables = dataclasses.replace(callables, optimizer=lambda parameters: model.configure_optimizers())
        settings.update(optimizer="custom", optimizer_callable=f"{name}.configure_optimizers")
    return callables, settings


def takes_index(method) -> bool:
    """Whether a model's step takes (batch, batch_idx), as a Lightning module's does, rather than (batch) alone."""
    try:
        return len(inspect.signature(method).parameters) >= 2
    except (TypeError, ValueError):
        return False


def indexed(method, state) -> Callable:
    """A step of (batch, batch_idx) called with the batch alone: its index is the step's place in the epoch."""
    return lambda batch: method(batch, state.epoch_step)


def step_sums(model, batch: tuple, rows: int, index: int = 0) -> dict:
    """What evaluation sums over a batch for a model with its own step: its validation_step's sums (a dict with "loss",
    each summed over the batch's rows), else its training_step's loss times the rows. `index`: the batch's place,
    for steps that take (batch, batch_idx)."""
    validation_step = getattr(model, "validation_step", None)
    if validation_step is None:
        step = model.training_step
        return {"loss": (step(batch, index) if takes_index(step) else step(batch)) * rows}
    sums = validation_step(batch, index) if takes_index(validation_step) else validation_step(batch)
    if not isinstance(sums, dict) or "loss" not in sums:
        raise RiskminError(
            "validation_step returned "
            f"{kind_of(sums) if not isinstance(sums, dict) else 'a dict without loss'}; return a dict "
            "of sums over the batch's rows, one of them 'loss'"
        )
    return {"loss": sums["loss"], **{"own:" + key: value for key, value in sums.items() if key != "loss"}}


def kind_of(value) -> str:
    return f"a tensor of shape {list(value.shape)}" if isinstance(value, torch.Tensor) else f"a {type(value).__name__}"


def in_target_units(fn: Callable, target_scale) -> Callable:
    """`fn` called on outputs and targets in the target's own units, for a model that learned it standardized."""
    return lambda output, target: fn(target_scale.restore(output), target_scale.restore(target))


def user_metric(name: str, fn: Callable, target_scale=None) -> Callable:
    """A user's metric as evaluation calls it: checked to return one number, on outputs and targets in the target's
    units."""
    fn = fn if target_scale is None else in_target_units(fn, target_scale)

    def metric(output, target):
        value = fn(output, target)
        if not isinstance(value, torch.Tensor) or value.numel() != 1:
            raise RiskminError(
                f"metric {name} returned {kind_of(value)}, not a scalar tensor; return the mean over the batch"
            )
        return value.reshape(()).double()

    return metric


def optimizer_note(given, settings: dict) -> None:
    """Note lr= and weight_decay= given beside an optimizer that builds itself without them: a function of the
    parameters, or a partial of an Optimizer class whose own keywords set them."""
    import functools

    own = given.keywords if isinstance(given, functools.partial) else {}
    unused = [name for name in ("lr", "weight_decay") if name in settings]
    if optimizer_class(given) is not None:
        unused = [name for name in unused if name in own]
        if unused:
            warn(
                f"{' and '.join(f'{name}=' for name in unused)} {'is' if len(unused) == 1 else 'are'} not used: the "
                f"partial given as the optimizer sets {', '.join(f'{name}={own[name]!r}' for name in unused)} itself; "
                "leave it out of one or the other",
                RiskminNote,
            )
    elif unused:
        warn(
            f"{' and '.join(f'{name}=' for name in unused)} {'is' if len(unused) == 1 else 'are'} not used with an "
            "optimizer given as a function, which builds it with its own; give them to the optimizer it builds, or "
            "pass the Optimizer class (optimizer=torch.optim.AdamW), which riskmin builds with them",
            RiskminNote,
        )


def optimizer_class(given) -> Optional[type]:
    """The torch.optim.Optimizer class that riskmin builds with lr and weight_decay where `given` is one, or a
    functools.partial of one (optimizer=partial(torch.optim.SGD, momentum=0.9)); None for any other function."""
    import functools

    kind = given.func if isinstance(given, functools.partial) else given
    return kind if isinstance(kind, type) and issubclass(kind, torch.optim.Optimizer) else None


def user_optimizer(given: Callable, config: Config, parameters: list) -> torch.optim.Optimizer:
    """The user's optimizer: a torch.optim.Optimizer class, or a partial of one, built with lr (and weight_decay, when
    set, 0 too, where the class's default may be another), the partial's own keywords first; or a factory's."""
    if optimizer_class(given) is not None:
        fixed = getattr(given, "keywords", {})  # a partial's
        # the class's own keyword arguments, which Optimizer's signature (params, defaults) does not list
        options = {
            "lr": config.lr,
            **({"weight_decay": config.weight_decay} if config.weight_decay is not None else {}),
        }
        optimizer = given(parameters, **{key: value for key, value in options.items() if key not in fixed})
        check_steps_alone(optimizer)
        return optimizer
    # mypy narrows a class that is no Optimizer to type[object], as if it took no arguments
    optimizer = given(parameters)  # type: ignore[call-arg]
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise RiskminError(
            f"optimizer {qualified_name(given)} returned a {type(optimizer).__name__}, not a "
            "torch.optim.Optimizer; give an Optimizer class or a function parameters -> optimizer"
        )
    check_steps_alone(optimizer)
    return optimizer


def check_steps_alone(optimizer: torch.optim.Optimizer) -> None:
    """Refuse an optimizer whose step needs a closure that computes the loss again (LBFGS): riskmin's loop steps on
    the gradients of one backward pass, step() without arguments."""
    closure = inspect.signature(optimizer.step).parameters.get("closure")
    if closure is not None and closure.default is inspect.Parameter.empty:
        raise RiskminError(
            f"optimizer {type(optimizer).__name__} needs a closure at every step, which computes the loss again, and "
            "riskmin steps on the gradients of one backward pass; give an optimizer that steps on them alone (sgd, "
            "adam, adamw, rmsprop, or one of your own)"
        )


def user_scheduler(given: Callable, optimizer: torch.optim.Optimizer):
    try:
        scheduler = given(optimizer)
    except TypeError:
        if not isinstance(given, type):  # a function of the user's: its own mistake, raised as it is
            raise
        raise RiskminError(
            f"scheduler = {qualified_name(given)} is a class that needs more than the optimizer to build; pass a "
            f"function of the optimizer, scheduler=lambda optimizer: {given.__name__}(optimizer, ...)"
        ) from None
    if not isinstance(scheduler, SCHEDULERS):
        raise RiskminError(
            f"scheduler {qualified_name(given)} returned a {type(scheduler).__name__}, not a "
            "learning-rate scheduler; give a function optimizer -> torch.optim.lr_scheduler.LRScheduler"
        )
    return scheduler


def named_callback(spec: str):
    """The callback that `riskmin train --callback FILE.py:NAME` (or MODULE:NAME) names: the object NAME of that Python
    file or importable module, or, when NAME is a class, one made by calling it with no arguments.

    >>> type(named_callback("riskmin.callbacks:BestModel")).__name__
    'BestModel'
    """
    import importlib
    import importlib.util
    from pathlib import Path

    from ..callbacks import EVENTS

    where, _, name = spec.rpartition(":")
    if not where or not name.isidentifier():
        raise RiskminError(
            f"--callback {spec} is not FILE.py:NAME or MODULE:NAME; name the object after a colon, "
            "as in --callback my_callbacks.py:Logger"
        )
    try:
        if where.endswith(".py"):
            found = importlib.util.spec_from_file_location(Path(where).stem, where)
            if found is None or found.loader is None or not Path(where).is_file():  # no file Python can load
                raise FileNotFoundError(f"no file {where}")
        elif importlib.util.find_spec(where) is None:
            raise ModuleNotFoundError(f"No module named {where!r}")
    except (FileNotFoundError, ModuleNotFoundError, ValueError) as error:  # ValueError: a relative module name
        raise RiskminError(
            f"--callback {spec}: {where} cannot be found ({error}); give the path of a .py file or a "
            "module that Python can import"
        ) from None
    try:  # found: what its code raises as it runs is that code's, said in one sentence with where it stands
        if where.endswith(".py"):
            assert found is not None and found.loader is not None  # found just above
            module = importlib.util.module_from_spec(found)
            found.loader.exec_module(module)  # the user's file, run as `python FILE.py` runs it, but not as __main__
        else:
            module = importlib.import_module(where)
    except Exception as error:  # a SyntaxError's text names its line
        raise RiskminError(
            f"--callback {spec}: importing {where} raised {type(error).__name__}: {error}; fix it there"
        ) from None
    if not hasattr(module, name):
        raise RiskminError(f"--callback {spec}: {where} defines no {name}")
    callback = getattr(module, name)
    if isinstance(callback, type):
        try:
            callback = callback()
        except TypeError as error:
            raise RiskminError(
                f"--callback {spec}: the class {name} cannot be made with no arguments ({error}); name "
                f"an object made of it instead, as in callback = {name}(...)"
            ) from None
    if not any(hasattr(callback, event) for event in EVENTS):
        raise RiskminError(f"--callback {spec}: {name} has none of the methods a callback has ({', '.join(EVENTS)})")
    return callback


def checked_callbacks(callbacks) -> list:
    """fit's `callbacks` as a list, each an object with methods named for the loop's events (callbacks.EVENTS). One
    callback not in a list, a class in place of an object of it, an object with no event's method are refused in one
    sentence; a method named like an event that is none (on_epoch_ends) is warned of, as it would never be called."""
    import difflib

    from ..callbacks import EVENTS

    if not isinstance(callbacks, (list, tuple)):
        raise RiskminError(
            f"callbacks takes a list of callbacks, not {kind_of(callbacks)}; pass callbacks=[...] even for one"
        )
    for callback in callbacks:
        if isinstance(callback, type):
            raise RiskminError(
                f"callbacks holds the class {callback.__name__}; pass an object of it, {callback.__name__}(), "
                "whose methods the loop calls"
            )
        if not any(hasattr(callback, event) for event in EVENTS):
            raise RiskminError(
                f"callback {type(callback).__name__} has none of the methods a callback has ({', '.join(EVENTS)})"
            )
        for name in dir(type(callback)):
            if name.startswith("on_") and name not in EVENTS:
                close = difflib.get_close_matches(name, EVENTS, n=1)
                warn(
                    f"{type(callback).__name__}.{name} is named for no event of the loop, so it is never called"
                    + (f"; did you mean {close[0]}?" if close else f"; the events are {', '.join(EVENTS)}")
                )
    return list(callbacks)
