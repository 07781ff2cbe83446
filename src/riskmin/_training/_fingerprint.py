"""What a checkpoint was trained on: a fingerprint of the data and of the settings, so that a resume
with other rows, other columns or other settings is refused instead of continuing on them silently.

The data's part holds its row count, its columns and a SHA-256 of x, y and the split's indices
(hashed where they lie, without a copy); the settings' part every setting that changes what is trained.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Optional

import torch

from ..config import FIELDS, Config, RiskminError, settings_where


def schedule_spans_the_run(config: Config) -> bool:
    """Whether the learning-rate schedule is drawn over the whole run (cosine and one_cycle end at its last epoch or
    step,
    linear_warmup without `warmup` warms up over its first tenth): then a resumed run keeps its length, for a schedule
    redrawn over another length would jump or climb back from where it was."""
    return config.scheduler in ("cosine", "one_cycle") or (config.scheduler == "linear_warmup" and not config.warmup)


def fingerprint(splits, config: Config) -> dict:
    """The data and settings a run trains on, as JSON values a checkpoint carries."""
    inputs = data_fingerprint(splits.data)
    inputs["split"] = tensors_sha256(
        *(torch.as_tensor(part, dtype=torch.long) for part in (splits.train, splits.val, splits.test))
    )
    # what a resumed run may change (its settings' `resume` fact): what it shows and where it writes, how many threads,
    # and how long it goes on, unless its schedule's length is that of the run
    free = settings_where(resume="free") + (() if schedule_spans_the_run(config) else settings_where(resume="length"))
    settings = {key: value for key, value in fingerprinted(config).items() if key not in free}
    # as a checkpoint gives it back: tuples as lists
    return json.loads(json.dumps({"data": inputs, "settings": settings}))


def fingerprinted(config: Config) -> dict:
    """A config's settings as a fingerprint holds them: mode as the direction it stands for (`Config.goal`), so that
    a run or experiment begun with mode min on a loss resumes under auto."""
    return {**config.to_dict(), "mode": config.goal}


def data_fingerprint(data) -> dict:
    """The data's part of a fingerprint: its row count and, for Data, its columns, their layout and a SHA-256 of x and
    y (a Dataset is read item by item, so its rows are counted alone)."""
    from ..data import Data
    from .._data._inputs import input_tensors

    inputs: dict = {"rows": len(data)}
    if isinstance(data, Data):
        inputs.update(
            features=list(data.feature_names),
            targets=list(data.target_names),
            layout=data.layout,
            sha256=tensors_sha256(*input_tensors(data.x), data.y),
        )
    return inputs


def tensors_sha256(*tensors) -> str:
    """The SHA-256 of the tensors' shapes, types and bytes, read where they lie (no copy of a contiguous CPU tensor)."""
    digest = hashlib.sha256()
    for tensor in tensors:
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{tuple(tensor.shape)} {tensor.dtype}|".encode())
        if tensor.numel():
            digest.update(tensor.numpy())
    return digest.hexdigest()


def check_same(then: Optional[dict], now: dict, where, what: str = "run") -> None:
    """Raise one RiskminError naming what changed between the checkpoint's fingerprint `then` and the run's `now` (or
    an experiment's, `what`); a checkpoint written before fingerprints existed (`then` None) is taken as it is."""
    since = "the checkpoint" if what == "run" else "it began"
    if not then:
        return
    data, settings = data_changes(then["data"], now["data"]), setting_changes(then["settings"], now["settings"])
    if not data and not settings and then["data"]["split"] != now["data"]["split"]:
        data = ["the same rows are split into other training, validation and test sets"]
    said = ([f"the data changed since {since}: {'; '.join(data)}"] if data else []) + (
        [f"the settings changed since {since}: {'; '.join(settings)}"] if settings else []
    )
    if said:
        raise RiskminError(
            f"cannot resume {where}: {'; and '.join(said)}; resume with the data and settings the "
            f"{what} began with, or start a new {what}"
        )


def data_changes(then: dict, now: dict) -> list:
    changes = []
    if then["rows"] != now["rows"]:
        changes.append(f"{then['rows']} rows then, {now['rows']} now")
    for kind in ("features", "targets"):
        before, after = then.get(kind) or [], now.get(kind) or []
        if before == after:
            continue
        added, removed = [c for c in after if c not in before], [c for c in before if c not in after]
        what = "feature" if kind == "features" else "target"
        if added:
            changes.append(f"{what} column{'s' * (len(added) > 1)} {', '.join(added)} added")
        if removed:
            changes.append(f"{what} column{'s' * (len(removed) > 1)} {', '.join(removed)} removed")
        if not added and not removed:
            changes.append(f"the {what} columns are in another order ({', '.join(after)} now)")
    if not changes and then.get("layout") != now.get("layout"):
        changes.append("the categories of a column changed")
    if not changes and then.get("sha256") != now.get("sha256"):
        changes.append("the same rows and columns hold other values")
    return changes


def setting_changes(then: dict, now: dict) -> list:
    """What changed, as "lr 0.01 then, 0.02 now"; a length the checkpoint did not record (it began free) or that is
    free now (the schedule that spanned it changed, which is said) is taken as it is, and so is a setting it did not
    record because riskmin had no such setting yet, where it stands at its default.

    >>> (setting_changes({"lr": 0.1}, {"lr": 0.1, "accumulate": 1}),
    ...  setting_changes({"lr": 0.1}, {"lr": 0.1, "accumulate": 2}))
    ([], ['accumulate None then, 2 now'])
    >>> setting_changes({"scheduler": "cosine", "epochs": 6}, {"scheduler": "none"})
    ["scheduler 'cosine' then, 'none' now"]
    """
    changes, length = [], settings_where(resume="length")
    for key in sorted(set(then) | set(now)):
        if (
            then.get(key) == now.get(key)
            or (key == "splits" and same_file(then.get(key), now.get(key)))
            or (key in length and (key not in then or key not in now))
            or (key not in then and at_default(key, now[key]))
        ):
            continue
        scheduled = key in length and now.get("scheduler") not in (None, "none")
        why = f" (the {now.get('scheduler')} schedule spans the run's length)" if scheduled else ""
        changes.append(f"{key} {then.get(key)!r} then, {now.get(key)!r} now{why}")
    return changes


def same_file(then, now) -> bool:
    """Whether two paths of a splits file name the same file: one recorded relative to the folder a command ran in, as
    riskmin recorded it before it recorded absolute paths, read from the folder of the resume, as it was then.

    >>> import os; same_file("s.npz", os.path.abspath("s.npz")), same_file("s.npz", "/elsewhere/s.npz")
    (True, False)
    """
    return isinstance(then, str) and isinstance(now, str) and bool(then) and os.path.abspath(then) == now


def at_default(key: str, value) -> bool:
    """Whether `value`, as a fingerprint holds it, is the default of setting `key`."""
    return key in FIELDS and json.loads(json.dumps(Config().to_dict()[key])) == value
