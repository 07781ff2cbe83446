"""Property: whatever settings a user writes, riskmin either trains cleanly or says no in one line."""

import contextlib
import io
import json
import math
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from riskmin._cli._main import main
from riskmin.config import FIELDS

KEYS = sorted(FIELDS) + ["lrate", "epoch", "hiden", ""]
VALUES = st.one_of(
    st.integers(-3, 6), st.sampled_from([0.0, 0.5, 1.5, -1.0, 1e-3, math.nan, math.inf]), st.booleans(),
    st.sampled_from(["lab1", "line", "mlp", "linear", "sgd", "adam", "tutorial", "epoch", "random", "min", "cpu", "x", ""]),
    st.lists(st.integers(-1, 4), max_size=3),
)


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, list):
        return "[" + ", ".join(map(toml_value, value)) + "]"
    return json.dumps(value) if isinstance(value, str) else repr(value)


def outcome(argv: list, out: Path) -> None:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(argv)
    lines = err.getvalue().strip().splitlines()
    if code == 2:
        assert len(lines) == 1 and lines[0].startswith("error: "), lines
        assert not out.exists() or not any(out.iterdir()), "a refused run left files behind"
    else:
        assert code in (0, 1), code  # 1: the loss diverged, the run is written with its best weights
        assert len(list(out.glob("*/summary.json"))) == 1


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=5))
def test_random_config_files_give_clean_runs_or_clean_errors(entries):
    entries = {"n_samples": 60, "epochs": 2, **entries}  # keep the runs that succeed small
    entries.pop("out", None)
    entries.pop("progress", None)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "run.toml"
        key = lambda k: f'"{k}"' if not k else k
        path.write_text("".join(f"{key(k)} = {toml_value(v)}\n" for k, v in entries.items()))
        outcome(["train", "--config", str(path), "--out", str(Path(folder) / "runs"), "--progress", "off"], Path(folder) / "runs")


FLAGS = [name for name in sorted(FIELDS) if name not in ("out", "progress", "data")]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(FLAGS), st.text(alphabet="0123456789.,-eaflnotrux", max_size=6)), max_size=4))
def test_random_flag_values_give_clean_runs_or_clean_errors(flags):
    with tempfile.TemporaryDirectory() as folder:
        argv = ["train", "--n-samples", "60", "--epochs", "2"]
        for name, text in flags:
            argv += [f"--{name.replace('_', '-')}={text}"]
        outcome([*argv, "--out", str(Path(folder) / "runs"), "--progress", "off"], Path(folder) / "runs")
