"""What a comparison compares: its candidates, from a grid of alternatives or from named tables, and the metric that
ranks them; everything `riskmin compare` checks before it reads the data or trains anything.

A candidate is a name and a dict of settings (a model name or a callable that builds one,
and any Config field). A grid makes a candidate of every combination that makes sense (a
setting that does not apply to a model, optimizer or scheduler does not multiply it) and
names it by what sets it apart; `grid_toml` writes candidates back as the tables `--config` reads.
"""

from __future__ import annotations

import itertools
import json
from typing import Optional

from ..config import FIELDS, Config, RiskminError, RiskminNote, fact, given_settings, warn
from ..metrics import METRICS, base_metric, direction


def plan(alternatives: dict, shared: dict, tables: dict) -> tuple:
    """(shared settings, candidates) of `riskmin compare`: the candidates are the tables of its --config file, or else
    the
    grid of the flags' alternatives (setting -> list of values); one-valued flags are shared, as are the file's
    top-level keys.
    """
    shared = dict(shared)
    several = [key for key, values in alternatives.items() if len(values) > 1]
    if not tables and not several:
        raise RiskminError(
            "no setting has alternatives, so there is one candidate; separate alternatives with commas "
            "(--lr 0.01,0.001), with '/' for --hidden (--hidden 32/128), or give candidate tables in "
            "--config"
        )
    fixed = [key for key in several if fact(key, "shared")]
    if fixed:
        raise RiskminError(
            f"{', '.join(fixed)} takes one value in a comparison, as every candidate is trained on the "
            "same splits and written to one place; give alternatives of the other settings"
        )
    if tables:
        if several:
            raise RiskminError(
                f"the candidates come from the tables of the --config file, so {', '.join(several)} "
                "cannot take alternatives too; give one value, or put the alternatives in the tables"
            )
        for key, (value,) in alternatives.items():  # a flag for all beside a table's other value: either could be meant
            candidate = next(
                (name for name, table in tables.items() if key in table and differ(key, table[key], value)), None
            )
            if candidate is not None:
                raise RiskminError(
                    f"--{key.replace('_', '-')} and candidate {candidate}'s table in the --config file both set {key}; "
                    "give it in one place: in the tables, for each candidate apart, or as the flag, for all"
                )
        shared.update({key: values[0] for key, values in alternatives.items()})
        return shared, tables
    axes = {
        key: values for key, values in alternatives.items() if key in several or fact(key, "applies") or key == "model"
    }
    # one value is shared, those the grid leaves out of a model that has no use for them too (hidden beside linear),
    # so that the notes on settings left unused see what was given
    shared.update({key: values[0] for key, values in alternatives.items() if key not in axes or len(values) == 1})
    candidates = grid(axes, shared)
    if len(candidates) < 2:
        raise RiskminError(f"the alternatives give one candidate: {unused_alternatives(several, alternatives, shared)}")
    return shared, candidates


def differ(key: str, one, other) -> bool:
    """Whether two values of the setting `key` differ, taken alone (another setting's checks do not enter): hidden = 8
    in a file and --hidden 8 are the same widths.

    >>> differ("hidden", 8, [8]), differ("lr", 0.001, 1e-3), differ("hidden", [64, 64], (64,))
    (False, False, True)
    """
    if key == "hidden":  # one width, or a list of them
        one, other = (tuple(value) if isinstance(value, (list, tuple)) else (value,) for value in (one, other))
    return one != other


def unused_alternatives(several: list, alternatives: dict, shared: dict) -> str:
    """Why the alternatives of the settings `several` give one candidate, as the notes on unused settings say it: the
    settings left out of every combination (momentum under adam, hidden under linear)."""
    settings = {**shared, **{key: values[0] for key, values in alternatives.items()}}
    for key in several:  # a value other than the default, which given_settings passes over
        settings[key] = next(
            (value for value in alternatives[key] if value != FIELDS[key].default), alternatives[key][0]
        )
    try:
        reasons = given_settings(Config.from_dict(settings, source="the flags"), several, flags=True)
    except RiskminError:
        reasons = []
    return "; ".join([*reasons, "give alternatives of a setting the candidates use"])


def grid(alternatives: dict, shared: Optional[dict] = None) -> dict:
    """Every combination of `alternatives` (setting -> list of values) that makes sense, as candidates named by their
    differences.

    A setting that does not apply to a combination's model, optimizer or scheduler (hidden for
    linear, momentum for adam) is left out of it, so it does not multiply that combination;
    `shared` supplies the deciding setting where the alternatives do not. A name lists the
    values that set the candidate apart: the model bare, the rest as setting=value.

    >>> list(grid({"model": ["linear", "two_layer"], "hidden": [(32,), (128,)], "lr": [0.01, 0.001]}))[:3]
    ['linear lr=0.01', 'linear lr=0.001', 'two_layer hidden=32 lr=0.01']
    """
    shared = shared or {}
    combinations = []
    for values in itertools.product(*alternatives.values()):
        settings = dict(zip(alternatives, values))
        settings = {key: value for key, value in settings.items() if applies(key, {**shared, **settings})}
        if settings not in combinations:
            combinations.append(settings)
    combinations = distinct(fitting(combinations, shared), shared)
    differing = [key for key in alternatives if len({label(c.get(key, "")) for c in combinations}) > 1]
    return {candidate_name(settings, differing): settings for settings in combinations}


def fitting(combinations: list, shared: dict) -> list:
    """The combinations without those whose widths two_layer cannot take (--model two_layer,mlp --hidden 64/64,64 keeps
    two_layer with 64 and mlp with both), unless that leaves a model none: then its error says what to change."""

    def fits(settings: dict) -> bool:
        return (
            setting_of(settings, shared, "model") != "two_layer"
            or len(widths(setting_of(settings, shared, "hidden"))) == 1
        )

    kept = [settings for settings in combinations if fits(settings)]
    models = {setting_of(settings, shared, "model") for settings in combinations}
    return kept if models == {setting_of(settings, shared, "model") for settings in kept} else combinations


def distinct(combinations: list, shared: dict) -> list:
    """The combinations without repeats of the same network: two_layer is mlp with one hidden layer and no dropout, so
    with one width `mlp` and `two_layer` train the same weights; the later one is left out, with a note."""
    kept, seen = [], {}
    for settings in combinations:
        key = network(settings, shared)
        if key in seen:
            warn(
                f"{candidate_name(settings, list(settings))} is the same network as "
                f"{candidate_name(seen[key], list(seen[key]))} (one hidden layer, no dropout), so it is left out",
                RiskminNote,
            )
            continue
        seen[key] = settings
        kept.append(settings)
    return kept


def network(settings: dict, shared: dict) -> tuple:
    """The candidate's settings with a one-layer mlp and a two_layer written alike, as what they build.

    >>> network({"model": "two_layer"}, {}) == network({"model": "mlp", "hidden": (32,)}, {})
    True
    """
    model = setting_of(settings, shared, "model")
    if model not in ("two_layer", "mlp") or len(widths(setting_of(settings, shared, "hidden"))) != 1:
        return tuple(sorted((key, label(value)) for key, value in settings.items()))
    dropout = setting_of(settings, shared, "dropout") if model == "mlp" else 0.0
    same = {
        **settings,
        "model": "mlp",
        "hidden": widths(setting_of(settings, shared, "hidden")),
        "dropout": dropout,
        "activation": setting_of(settings, shared, "activation"),
    }
    return tuple(sorted((key, label(value)) for key, value in same.items()))


def setting_of(settings: dict, shared: dict, key: str):
    """Setting `key` of a candidate: its own, else the shared one, else the default."""
    return settings.get(key, shared.get(key, getattr(Config, key)))


def widths(hidden) -> tuple:
    return (hidden,) if isinstance(hidden, int) else tuple(hidden)


def applies(key: str, settings: dict) -> bool:
    """Whether setting `key` means anything given the model, optimizer and scheduler in `settings` (or their
    defaults)."""
    if not fact(key, "applies"):
        return True
    decider, where = fact(key, "applies")
    return setting_of(settings, {}, decider) in where


def candidate_name(settings: dict, differing: list) -> str:
    parts = [
        label(settings[key]) if key == "model" else f"{key}={label(settings[key])}"
        for key in differing
        if key in settings
    ]
    return " ".join(parts) or "default"


def label(value) -> str:
    if isinstance(value, (tuple, list)):
        return ",".join(map(str, value))
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def shared_model_per_candidate(candidates: dict, settings: dict) -> tuple:
    """(candidates, settings) with a shared model that is a module class or factory moved into every candidate."""
    shared_model = settings.get("model")
    if shared_model is not None and not isinstance(shared_model, str) and isinstance(candidates, dict):
        # a module class or factory shared by all cannot live in Config: every candidate gets it as its own model
        settings = {key: value for key, value in settings.items() if key != "model"}
        candidates = {
            name: {"model": shared_model, **given} if isinstance(given, dict) else given
            for name, given in candidates.items()
        }
    return candidates, settings


def candidate_configs(candidates: dict, shared: Config) -> dict:
    """name -> (model for `montecarlo`, the candidate's Config), every candidate checked before anything trains."""
    if isinstance(candidates, (list, tuple)):
        raise RiskminError(
            f"candidates is a {type(candidates).__name__}; give a dict of name -> settings, e.g. "
            "{'linear': {'model': 'linear'}, 'two_layer': {'model': 'two_layer'}}"
        )
    if not isinstance(candidates, dict) or len(candidates) < 2:
        raise RiskminError(
            "a comparison needs at least two candidates, e.g. "
            "{'small': {'hidden': 8}, 'large': {'hidden': 64}}, or on the command line alternatives "
            "such as --lr 0.01,0.001"
        )
    configs = {}
    for name, settings in candidates.items():
        if not isinstance(settings, dict):
            raise RiskminError(
                f"candidate {name!r} is {type(settings).__name__}; give each candidate a dict of settings"
            )
        fixed = [key for key in settings if key in FIELDS and fact(key, "shared")]
        if fixed:
            raise RiskminError(
                f"candidate {name!r} sets {', '.join(fixed)}, which every candidate shares (they are "
                "compared on the same splits); set it once for all"
            )
        model = settings.get("model", shared.model)
        named = dict(settings)
        if not isinstance(model, str):  # a module class or factory: recorded by name, built by montecarlo
            named.update(model="custom", model_class=class_path(model))
        try:
            configs[name] = (model, shared.replace(**named))
        except RiskminError as error:
            raise RiskminError(f"candidate {name!r}: {error}") from None
        if model == "custom":
            raise RiskminError(
                f"candidate {name!r} has model custom, which riskmin cannot build; give the module "
                "class or a function that returns a fresh one as its model"
            )
    check_apart(configs)
    return configs


def check_apart(configs: dict) -> None:
    """Refuse two candidates that train the same model with the same settings: their runs would be the same twice."""
    seen: dict = {}
    for name, (model, candidate) in configs.items():
        key = (model if isinstance(model, str) else id(model), repr(candidate))  # two functions: two models
        if key in seen:
            raise RiskminError(
                f"candidates {seen[key]!r} and {name!r} train the same model with the same settings, so their runs "
                "would be the same twice; give each candidate a setting of its own"
            )
        seen[key] = name


def class_path(model) -> str:
    """module.Class of a module class or factory, as `model_class` records it."""
    return f"{getattr(model, '__module__', '')}.{getattr(model, '__qualname__', repr(model))}"


def ranking(metric: Optional[str], config: Config) -> tuple:
    """(metric name without its prefix, "min" or "max"): `metric` when given, else the one `monitor` names, with
    `mode`."""
    if metric is None:
        base = config.monitor.split("_", 1)[1] if config.monitor.startswith("val_") else "loss"
        return base, config.goal
    base = base_metric(metric)
    if base not in METRICS:
        raise RiskminError(f"metric {metric!r} is not one riskmin measures; choose one of {', '.join(METRICS)}")
    if metric not in (base, f"test_{base}"):  # train_loss, val_accuracy: the ranking is on the test rows
        raise RiskminError(
            f"metric {metric!r} is not what compare ranks by: it ranks the candidates on their test rows, where the "
            f"risk is estimated; give {base} (the test {base.replace('_', ' ')})"
        )
    return base, direction(base)


def setting_cells(candidates: dict, shared: Config) -> dict:
    """name -> the candidate's settings as table cells, with every setting any candidate sets: where it sets none, the
    value it trained with, the `shared` settings' (empty for one that is no setting of riskmin's); built once for
    all, so that a table of many candidates costs its size, not its size times the candidates."""
    keys = dict.fromkeys(key for settings in candidates.values() for key in settings)
    inherited = settings_as_cells({key: getattr(shared, key) for key in keys if key in FIELDS})
    cells = {}
    for name, settings in candidates.items():
        own = settings_as_cells(settings)
        cells[name] = {key: own[key] if key in own else inherited.get(key, "") for key in keys}
        for key in keys - own.keys():  # one its model, or optimizer, leaves unused: no value it trained with
            decider, where = fact(key, "applies") or (None, ())
            if decider is not None and settings.get(decider, getattr(shared, decider)) not in where:
                cells[name][key] = ""
    return cells


def settings_as_cells(settings: dict) -> dict:
    """A candidate's settings as table cells: widths as 64,64 and a model class or factory by its name."""
    cells = {}
    for key, value in settings.items():
        if isinstance(value, (tuple, list)):
            value = ",".join(map(str, value))
        elif callable(value):
            value = getattr(value, "__qualname__", repr(value))
        cells[key] = value
    return cells


# the table of a comparison's config.toml that holds what it was asked besides its settings, not a candidate
ASKED = "comparison"


def grid_toml(config: Config, candidates: dict, asked: Optional[dict] = None) -> str:
    """The grid as TOML that `riskmin compare --config` reads back: the shared settings, one table per candidate, and
    what the comparison was `asked` besides them (metric, rope, select) in a table of its own, [comparison]."""
    parts = [config.to_toml()]
    for name, settings in candidates.items():
        model = settings.get("model")
        named = dict(settings)
        if model is not None and not isinstance(model, str):
            named.update(model="custom", model_class=class_path(model))
        lines = config.replace(**named).to_toml().splitlines()
        kept = [line for line in lines if line.split(" = ", 1)[0] in named]
        parts.append(f"\n[{json.dumps(name)}]\n" + "\n".join(kept) + "\n")
    said = {key: value for key, value in (asked or {}).items() if value is not None and value is not False}
    if said:
        parts.append(f"\n[{ASKED}]\n" + "".join(f"{key} = {json.dumps(value)}\n" for key, value in said.items()))
    return "".join(parts)


def asked_in(path, tables: dict) -> dict:
    """What the comparison whose config.toml is `path` was asked besides its settings ([comparison]: metric, rope,
    select), taken out of its `tables`, which then hold the candidates alone; each checked by name."""
    asked = tables.pop(ASKED, {})
    unknown = [key for key in asked if key not in ("metric", "rope", "select")]
    if unknown:
        raise RiskminError(
            f"unknown key in [{ASKED}] of {path} '{unknown[0]}'; it holds metric, rope and select, as compare's "
            "flags of those names give them"
        )
    return asked
