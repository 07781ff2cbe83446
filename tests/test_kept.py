"""Experiments kept as they train: every finished run on disk at once, an interrupted experiment resumed to the table an
uninterrupted one gives, other data or settings refused by name, and nothing of an old result lost meanwhile."""

import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

import riskmin
import riskmin._experiments._montecarlo
from riskmin import RiskminError
from riskmin._training._checkpoint import TrainingInterrupted
from riskmin._experiments._kept import Keeper
from riskmin.callbacks import SignalAt

KILLER = Path(__file__).with_name("kill_at.py")
SLOW = os.environ.get("RISKMIN_SLOW") == "1"
SETTINGS = dict(runs=6, epochs=6, hidden=(8,), threads="1", progress=False)


def files(folder: Path) -> dict:
    """The result files of an experiment as they are compared: runs.csv and comparison.csv as bytes, summary.json
    without its timing."""
    found = {name: (folder / name).read_bytes() for name in ("runs.csv", "comparison.csv") if (folder / name).exists()}
    summary = json.loads((folder / "summary.json").read_text())
    summary.pop("seconds", None)
    for each in summary.get("candidates", {}).values() if isinstance(summary.get("candidates"), dict) else ():
        each.pop("seconds", None)
    return {**found, "summary.json": summary}


def interrupt_at(monkeypatch, call: int) -> None:
    """Make the `call`-th keeping of rows raise KeyboardInterrupt once they are on disk, as Ctrl-C there would."""
    keep, calls = Keeper.keep, []

    def keeping(self, group, rows):
        keep(self, group, rows)
        calls.append(group)
        if len(calls) == call:
            raise KeyboardInterrupt
    monkeypatch.setattr(Keeper, "keep", keeping)


@pytest.mark.parametrize("engine, chunk", [("vectorized", 2), ("sequential", 0)])
def test_an_interrupted_montecarlo_resumes_to_the_table_of_an_uninterrupted_one(tmp_path, monkeypatch, engine, chunk):
    whole = riskmin.montecarlo("two_layer", "lab1", engine=engine, chunk=chunk, directory=tmp_path / "whole", **SETTINGS)
    interrupt_at(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        riskmin.montecarlo("two_layer", "lab1", engine=engine, chunk=chunk, directory=tmp_path / "cut", **SETTINGS)
    kept = (tmp_path / "cut" / "kept" / "process-0.jsonl").read_text().splitlines()
    assert len(kept) == (4 if engine == "vectorized" else 2)  # two stacks of two runs, or two runs: on disk as they ended
    assert not (tmp_path / "cut" / "summary.json").exists()
    monkeypatch.undo()
    resumed = riskmin.montecarlo("two_layer", "lab1", engine=engine, chunk=chunk, directory=tmp_path / "cut", resume=True, **SETTINGS)
    assert resumed.table == whole.table
    assert files(tmp_path / "cut") == files(tmp_path / "whole")
    assert not (tmp_path / "cut" / "kept").exists() and not (tmp_path / "cut" / "experiment.json").exists()


def test_a_ctrl_c_as_a_run_of_an_experiment_finishes_stops_the_experiment_there(tmp_path, monkeypatch):
    """A run being measured and written lets its signal wait and is kept; the experiment then stops, and resumes to the
    whole."""
    from test_checkpoint import signals_while_finishing

    settings = dict(SETTINGS, runs=4, engine="sequential")
    whole = riskmin.montecarlo("two_layer", "lab1", **settings)
    signals_while_finishing(monkeypatch, 1, runs=2)
    with pytest.raises(KeyboardInterrupt):
        riskmin.montecarlo("two_layer", "lab1", directory=tmp_path / "cut", **settings)
    assert len((tmp_path / "cut" / "kept" / "process-0.jsonl").read_text().splitlines()) == 2  # run 2 was kept too
    monkeypatch.undo()
    resumed = riskmin.montecarlo("two_layer", "lab1", directory=tmp_path / "cut", resume=True, **settings)
    assert resumed.table == whole.table


def test_a_run_trained_by_fit_resumes_from_its_own_checkpoint(tmp_path, monkeypatch):
    """The sequential engine's runs checkpoint as `riskmin train` does: Ctrl-C in the middle of run 2 saves where it
    stood, and the resumed experiment continues that run from its checkpoint, to the uninterrupted table."""
    settings = dict(SETTINGS, runs=4, engine="sequential")
    whole = riskmin.montecarlo("two_layer", "lab1", **settings)
    fit_alone, resumed = riskmin._experiments._montecarlo.fit_alone, []

    def interrupted_in_run_2(model, data, config, seed, resume=False, **rest):
        resumed.append((seed, resume))
        callbacks = [SignalAt(20, "SIGINT")] if seed == 2 and not resume else []
        return fit_alone(model, data, config, callbacks=callbacks, seed=seed, resume=resume, **rest)
    monkeypatch.setattr(riskmin._experiments._montecarlo, "fit_alone", interrupted_in_run_2)
    with pytest.raises(TrainingInterrupted):
        riskmin.montecarlo("two_layer", "lab1", directory=tmp_path / "cut", **settings)
    assert list((tmp_path / "cut" / "kept" / "run-0-0-2" / "checkpoint").glob("step-000000020-*.manifest.json"))
    done = riskmin.montecarlo("two_layer", "lab1", directory=tmp_path / "cut", resume=True, **settings)
    assert resumed == [(0, False), (1, False), (2, False), (2, True), (3, False)]  # runs 0 and 1 kept, run 2 from step 20
    assert done.table == whole.table


def test_resuming_an_experiment_that_another_process_holds_is_one_sentence(tmp_path, monkeypatch):
    from riskmin._files import RunLock

    interrupt_at(monkeypatch, 1)
    with pytest.raises(KeyboardInterrupt):
        riskmin.montecarlo("two_layer", "lab1", chunk=2, directory=tmp_path / "cut", **SETTINGS)
    monkeypatch.undo()
    with RunLock(tmp_path / "cut"):  # as a process resuming it holds it
        with pytest.raises(RiskminError, match=r"is being written by riskmin process \d+; wait for it to finish"):
            riskmin.montecarlo("two_layer", "lab1", chunk=2, directory=tmp_path / "cut", resume=True, **SETTINGS)


def test_an_interrupted_comparison_resumes_to_the_same_comparison(tmp_path, monkeypatch):
    grid = {"linear": {"model": "linear"}, "small": {"model": "two_layer", "lr": 0.01}, "fast": {"model": "two_layer", "lr": 0.03}}
    settings = dict(SETTINGS, chunk=3, select=True)
    riskmin.compare(grid, "lab1", directory=tmp_path / "whole", **settings)
    interrupt_at(monkeypatch, 3)  # the linear stacks kept, and the first stack of the two two_layer candidates
    with pytest.raises(KeyboardInterrupt):
        riskmin.compare(grid, "lab1", directory=tmp_path / "cut", **settings)
    monkeypatch.undo()
    riskmin.compare(grid, "lab1", directory=tmp_path / "cut", resume=True, **settings)
    assert files(tmp_path / "cut") == files(tmp_path / "whole")


def test_resuming_with_other_settings_or_data_is_refused_by_name_and_touches_nothing(tmp_path, monkeypatch):
    interrupt_at(monkeypatch, 1)
    with pytest.raises(KeyboardInterrupt):
        riskmin.montecarlo("two_layer", "lab1", chunk=2, directory=tmp_path / "cut", **SETTINGS)
    monkeypatch.undo()
    before = {path: path.read_bytes() for path in (tmp_path / "cut").rglob("*") if path.is_file()}
    with pytest.raises(RiskminError, match=r"the settings changed since it began: lr 0.01 then, 0.02 now"):
        riskmin.montecarlo("two_layer", "lab1", chunk=2, directory=tmp_path / "cut", resume=True, **{**SETTINGS, "lr": 0.02})
    with pytest.raises(RiskminError, match=r"the data changed since it began: 1000 rows then, 500 now"):
        riskmin.montecarlo("two_layer", "lab1", chunk=2, directory=tmp_path / "cut", resume=True, n_samples=500, **SETTINGS)
    with pytest.raises(RiskminError, match=r"the settings changed since it began: seed 0 then, 1 now"):
        riskmin.montecarlo("two_layer", "lab1", chunk=2, directory=tmp_path / "cut", resume=True, **{**SETTINGS, "seed": 1})
    with pytest.raises(RiskminError, match=r"interrupted after 2 finished runs; pass resume=True to continue it"):
        riskmin.montecarlo("two_layer", "lab1", chunk=2, directory=tmp_path / "cut", **SETTINGS)
    assert {path: path.read_bytes() for path in (tmp_path / "cut").rglob("*") if path.is_file()} == before


def test_resuming_on_a_splits_file_that_changed_is_refused(tmp_path, monkeypatch):
    splits = tmp_path / "splits.csv"
    splits.write_text("train,test\n" + "".join(f"{' '.join(map(str, range(i, 80 + i)))},{' '.join(map(str, range(90, 100)))}\n"
                                              for i in range(4)))
    settings = dict(SETTINGS, runs=4, chunk=2, val=0.0, splits=str(splits))
    interrupt_at(monkeypatch, 1)
    with pytest.raises(KeyboardInterrupt):
        riskmin.montecarlo("linear", "line", directory=tmp_path / "cut", **settings)
    monkeypatch.undo()
    splits.write_text(splits.read_text().replace(" 99\n", " 85\n"))  # another test row in each split
    with pytest.raises(RiskminError, match=r"the data changed since it began: the same rows are split into other training"):
        riskmin.montecarlo("linear", "line", directory=tmp_path / "cut", resume=True, **settings)


def test_a_comparison_resumed_with_another_grid_names_the_candidate_that_changed(tmp_path, monkeypatch):
    interrupt_at(monkeypatch, 1)
    with pytest.raises(KeyboardInterrupt):
        riskmin.compare({"a": {"lr": 0.01}, "b": {"lr": 0.03}}, "lab1", directory=tmp_path / "cut", **SETTINGS)
    monkeypatch.undo()
    with pytest.raises(RiskminError, match=r"b\.lr 0\.03 then, 0\.1 now"):
        riskmin.compare({"a": {"lr": 0.01}, "b": {"lr": 0.1}}, "lab1", directory=tmp_path / "cut", resume=True, **SETTINGS)


def test_a_comparison_is_not_resumed_as_a_montecarlo_experiment(tmp_path, monkeypatch):
    interrupt_at(monkeypatch, 1)
    with pytest.raises(KeyboardInterrupt):
        riskmin.compare({"a": {"lr": 0.01}, "b": {"lr": 0.03}}, "lab1", directory=tmp_path / "cut", **SETTINGS)
    monkeypatch.undo()
    with pytest.raises(RiskminError, match=r"cut is an interrupted compare, not a montecarlo; continue it with: riskmin compare "):
        riskmin.montecarlo("two_layer", "lab1", directory=tmp_path / "cut", resume=True, **SETTINGS)


def test_an_interrupted_experiment_given_to_train_resume_names_its_own_command(tmp_path, monkeypatch, capsys):
    from riskmin._cli._main import main
    from snapshot import tree

    interrupt_at(monkeypatch, 1)
    with pytest.raises(KeyboardInterrupt):
        riskmin.montecarlo("linear", "lab1", directory=tmp_path / "cut", **SETTINGS)
    monkeypatch.undo()
    before = tree(tmp_path / "cut")
    capsys.readouterr()
    assert main(["train", "--resume", str(tmp_path / "cut")]) == 2
    assert capsys.readouterr().err == (f"error: {tmp_path / 'cut'} is an interrupted montecarlo, not a run of riskmin train; "
                                       f"continue it with: riskmin montecarlo --resume {tmp_path / 'cut'}, or "
                                       "riskmin.montecarlo(..., directory=..., resume=True)\n")
    assert tree(tmp_path / "cut") == before


def test_overwrite_keeps_the_old_result_until_the_new_one_is_complete(tmp_path, monkeypatch):
    riskmin.montecarlo("linear", "lab1", directory=tmp_path / "mc", **SETTINGS)
    old = files(tmp_path / "mc")
    interrupt_at(monkeypatch, 1)
    with pytest.raises(KeyboardInterrupt):
        riskmin.montecarlo("two_layer", "lab1", chunk=2, directory=tmp_path / "mc", overwrite=True, **SETTINGS)
    monkeypatch.undo()
    assert files(tmp_path / "mc") == old  # the old result whole, the new one's kept runs beside it
    building, = tmp_path.glob(".mc.new-*")
    new = riskmin.montecarlo("two_layer", "lab1", chunk=2, directory=building, resume=True, overwrite=True, **SETTINGS)
    assert not building.exists() and (tmp_path / "mc" / "runs.csv").read_text().count("\n") == len(new.table) + 1
    assert files(tmp_path / "mc") != old


def command(*args, cwd, killed=None):
    """`riskmin <args>` in a fresh process (run by tests/kill_at.py, SIGKILLed where `killed` = (call, phase) says)."""
    runner = [str(KILLER), *map(str, killed), "--"] if killed else ["-m", "riskmin"]
    return subprocess.run([sys.executable, *runner, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})


EXPERIMENTS = {  # (command line, how many times it keeps rows)
    "vectorized": (["montecarlo", "lab1", "--runs", "8", "--chunk", "2", "--epochs", "8", "--patience", "2", "--hidden", "8"], 4),
    "sequential": (["montecarlo", "lab1", "--runs", "4", "--engine", "sequential", "--epochs", "8", "--hidden", "8"], 4),
    "compare": (["compare", "lab1", "--model", "linear,two_layer", "--runs", "4", "--chunk", "2", "--epochs", "8", "--hidden", "8"], 4),
}


def trials(count: int, seed: int = 27) -> list:
    """`count` (experiment, call, phase) drawn at random, the first of each kind at the very start or the very end."""
    draw = random.Random(seed)
    chosen = [("vectorized", 1, "before"), ("sequential", 0, "result"), ("compare", 3, "torn")]
    while len(chosen) < count:
        kind = draw.choice(sorted(EXPERIMENTS))
        phase = draw.choice(["before", "torn", "after", "result"])
        chosen.append((kind, draw.randint(1, EXPERIMENTS[kind][1]), phase))
    return chosen[:count]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """Each experiment's result files, uninterrupted."""
    folder = tmp_path_factory.mktemp("whole")
    results = {}
    for kind, (args, _) in EXPERIMENTS.items():
        done = command(*args, "--threads", "1", "--progress", "off", "--name", kind, cwd=folder)
        assert done.returncode == 0, done.stderr[-2000:]
        results[kind] = files(folder / "runs" / kind)
    return results


@pytest.mark.parametrize("kind, call, phase", trials(24 if SLOW else 3))
def test_an_experiment_killed_at_any_moment_resumes_to_the_uninterrupted_result(tmp_path, uninterrupted, kind, call, phase):
    args = [*EXPERIMENTS[kind][0], "--threads", "1", "--progress", "off", "--name", "cut"]
    killed = command(*args, cwd=tmp_path, killed=(call, phase))
    assert killed.returncode == -9, killed.stderr[-2000:]  # SIGKILL: nothing of riskmin's ran after it
    folder = tmp_path / "runs" / "cut"
    again = command(*args, cwd=tmp_path)  # the same command again says how to go on
    assert again.returncode == 2 and f"continue it with --resume {Path('runs') / 'cut'}" in again.stderr
    resumed = command(kind.replace("vectorized", "montecarlo").replace("sequential", "montecarlo"), "--resume", folder, "--progress", "off",
                      cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert files(folder) == uninterrupted[kind]


def test_a_process_torchrun_restarts_goes_on_from_the_runs_kept(tmp_path):
    """Two processes under torchrun: the second is SIGKILLed once its second run is kept; torchrun starts both again,
    and they finish the experiment from what was kept, to the table of one process.

    torchrun may start them twice (--max-restarts 2): in two runs of the whole suite, the second process of the
    restart died within torch ("terminate called without an active exception", then SIGABRT once and SIGSEGV once,
    no riskmin message), which over 40 runs of this test alone did not happen again; a user's torchrun with restarts
    to spare starts it once more too. Every start after the first goes on from the runs kept, the only failures
    allowed are the planned SIGKILL and one such crash, and Python's fault handler puts its stack into the message."""
    args = ["montecarlo", "lab1", "--runs", "8", "--engine", "sequential", "--epochs", "6", "--hidden", "8", "--threads", "1",
            "--progress", "off"]
    launched = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                               "--max-restarts", "2", str(KILLER), "2", "after", "--", *args, "--name", "two"],
                              cwd=tmp_path, capture_output=True, text=True, timeout=600,
                              env={**os.environ, "OMP_NUM_THREADS": "1", "KILL_RANK": "1", "PYTHONFAULTHANDLER": "1"})
    assert launched.returncode == 0, launched.stderr[-3000:]
    assert launched.stdout.count("runs written to") == 1  # the first process alone writes the result
    failures = re.findall(r"failed \(exitcode: (-?\d+)\) local_rank: (\d)", launched.stderr)
    assert failures[0] == ("-9", "1"), launched.stderr[-3000:]  # the second process did die, SIGKILLed
    assert len(failures) <= 2 and all(code in ("-6", "-11") for code, _ in failures[1:]), launched.stderr[-3000:]
    alone = command(*args, "--name", "one", cwd=tmp_path)
    assert alone.returncode == 0, alone.stderr[-2000:]
    two, one = files(tmp_path / "runs" / "two"), files(tmp_path / "runs" / "one")
    assert two["runs.csv"] == one["runs.csv"]
    two["summary.json"].pop("processes"), one["summary.json"].pop("processes")
    assert two["summary.json"] == one["summary.json"]


def test_an_experiment_resumed_with_a_flag_of_its_place_or_data_is_refused_and_touched_not(tmp_path, monkeypatch, capsys):
    from riskmin._cli._main import main
    from snapshot import tree

    interrupt_at(monkeypatch, 1)
    with pytest.raises(KeyboardInterrupt):
        riskmin.montecarlo("linear", "lab1", directory=tmp_path / "cut", **SETTINGS)
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)
    before = tree(tmp_path)
    capsys.readouterr()
    for flags, said in ((["--name", "other"], "--name"), (["--out", "elsewhere"], "--out"), (["--overwrite"], "--overwrite"),
                        (["lab1"], "DATA")):
        assert main(["montecarlo", "--resume", "cut", *flags]) == 2
        assert capsys.readouterr().err == f"error: --resume continues the experiment kept in cut, on its data; drop {said}\n"
    assert tree(tmp_path) == before


def test_a_python_experiment_interrupted_says_what_it_kept_and_the_call_that_goes_on(tmp_path, monkeypatch):
    interrupt_at(monkeypatch, 1)
    with pytest.raises(KeyboardInterrupt, match=r"^interrupted; \d+ finished runs? kept in .*cut: pass resume=True to "
                                                r"continue it$"):
        riskmin.compare({"a": {"lr": 0.01}, "b": {"lr": 0.03}}, "lab1", directory=tmp_path / "cut", **SETTINGS)
    monkeypatch.undo()
    assert riskmin.compare({"a": {"lr": 0.01}, "b": {"lr": 0.03}}, "lab1", directory=tmp_path / "cut", resume=True,
                           **SETTINGS).summary["runs"] > 0
