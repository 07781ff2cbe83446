"""Nothing lost, nothing silently wrong: a failed command changes nothing that was there, riskmin never writes
through a symbolic link, and every file it loads is the one it checked."""

import errno
import hashlib
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import riskmin
import riskmin._files
import riskmin._runs._rundir
from riskmin import RiskminError
from riskmin._training._checkpoint import Checkpoints, TrainingInterrupted
from riskmin._cli._main import main
from riskmin._files import RunLock, atomic_write, load_tensors, safetensors_bytes
from snapshot import tree
from said import unwrapped

QUICK = ["--model", "linear", "--epochs", "2", "--progress", "off"]


def errors(capsys) -> list:
    return capsys.readouterr().err.strip().splitlines()


class CtrlCAt:
    """What SIGINT does to a run that checkpoints, at a step chosen in advance: it sets the flag, and the loop
    saves a checkpoint and leaves with TrainingInterrupted."""

    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, state):
        state.interrupted = state.step == self.step


def checkpointed(directory: Path, epochs: int) -> None:
    """A linear model on lab1 (25 steps an epoch) cut after `epochs` epochs: checkpoints in `directory`, no final files."""
    with pytest.raises(TrainingInterrupted):
        riskmin.fit("linear", "lab1", epochs=epochs + 1, progress=False, checkpoint_every=1, callbacks=[CtrlCAt(25 * epochs)],
                    directory=directory)


@pytest.fixture
def finished(tmp_path):
    """A finished run at tmp_path/runs/keep, trained through the command."""
    assert main(["train", *QUICK, "--out", str(tmp_path / "runs"), "--name", "keep"]) == 0
    return tmp_path / "runs" / "keep"


@pytest.mark.parametrize("bad, message", [(["--batch-size", "5000"], "batch_size = 5000 is larger than the training split"),
                                          (["--monitor", "typo"], "monitor 'typo' is not a reported metric"),
                                          (["--device", "cpux"], "device = 'cpux'")])
def test_a_failed_overwrite_leaves_the_old_run_untouched(finished, capsys, bad, message):
    before = tree(finished.parent)
    capsys.readouterr()
    assert main(["train", *QUICK, "--out", str(finished.parent), "--name", "keep", "--overwrite", *bad]) == 2
    err = errors(capsys)
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    assert tree(finished.parent) == before  # nor is a hidden folder left beside it


def test_a_crash_while_overwriting_leaves_the_old_run_untouched(finished, monkeypatch):
    import riskmin._training._loop

    def crash(*args, **kwargs):
        raise RuntimeError("a bug in training")

    before = tree(finished.parent)
    monkeypatch.setattr(riskmin._training._loop, "fit", crash)
    with pytest.raises(RuntimeError, match="a bug in training"):
        main(["train", *QUICK, "--out", str(finished.parent), "--name", "keep", "--overwrite"])
    assert tree(finished.parent) == before


def test_overwrite_swaps_the_new_run_in_and_leaves_nothing_beside_it(finished):
    old = json.loads((finished / "summary.json").read_text())["sha256"]
    assert main(["train", "--model", "linear", "--epochs", "3", "--progress", "off", "--out", str(finished.parent),
                 "--name", "keep", "--overwrite"]) == 0
    assert [p.name for p in finished.parent.iterdir()] == ["keep"]
    assert json.loads((finished / "summary.json").read_text())["epochs_run"] == 3
    assert json.loads((finished / "summary.json").read_text())["sha256"] != old
    assert not (finished / ".lock").exists()


def test_an_overwrite_interrupted_after_a_checkpoint_stays_beside_the_old_run_and_resumes_into_its_place(finished, capsys,
                                                                                                         signal_at):
    before = tree(finished)  # Ctrl-C at the end of the first epoch
    assert main(["train", *QUICK, "--out", str(finished.parent), "--name", "keep", "--overwrite", *signal_at(25, "SIGINT")]) == 130
    (building,) = finished.parent.glob(".keep.new-*")
    assert f"{finished} is as it was; the new run is in {building}: continue it with: riskmin train --resume {building}" \
        in unwrapped(capsys.readouterr().err)
    assert tree(finished) == before and not (building / "summary.json").exists()
    assert main(["train", "--resume", str(building)]) == 0
    assert [p.name for p in finished.parent.iterdir()] == ["keep"]
    assert json.loads((finished / "summary.json").read_text())["epochs_run"] == 2


def test_a_killed_overwrite_resumed_from_its_hidden_folder_takes_the_old_runs_place(finished):
    building = finished.parent / ".keep.new-0123abcd"
    checkpointed(building, epochs=1)  # a checkpoint, then the process ends
    (building / "config.toml").write_text(riskmin.Config(model="linear", epochs=3, progress=False).to_toml())
    assert main(["train", "--resume", str(building)]) == 0
    assert [p.name for p in finished.parent.iterdir()] == ["keep"]
    assert json.loads((finished / "summary.json").read_text())["epochs_run"] == 3


def test_overwrite_refuses_a_symbolic_link_and_deletes_nothing_through_it(tmp_path, capsys):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "precious.txt").write_text("mine")
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "keep").symlink_to(elsewhere)
    before = tree(tmp_path)
    assert main(["train", *QUICK, "--out", str(tmp_path / "runs"), "--name", "keep", "--overwrite"]) == 2
    err = errors(capsys)
    assert len(err) == 1 and "is a symbolic link; riskmin never writes through a link nor replaces one" in err[0], err
    assert tree(tmp_path) == before


def test_an_unfinished_run_of_the_same_name_points_to_resume_and_overwrite(tmp_path, capsys):
    run_dir = tmp_path / "early"
    run_dir.mkdir()
    (run_dir / "config.toml").write_text(riskmin.Config(model="linear", epochs=2, progress=False).to_toml())
    (run_dir / ".lock").write_text("riskmin process 1")  # killed before its first checkpoint
    assert main(["train", *QUICK, "--out", str(tmp_path), "--name", "early"]) == 2
    err = errors(capsys)
    assert len(err) == 1 and f"already exists; continue it with --resume {run_dir}, or pass --overwrite" in err[0], err


def test_a_run_killed_before_its_first_checkpoint_resumes_from_the_beginning(tmp_path, capsys):
    run_dir = tmp_path / "early"
    run_dir.mkdir()
    (run_dir / "config.toml").write_text(riskmin.Config(model="linear", epochs=2, progress=False).to_toml())
    (run_dir / ".lock").write_text("riskmin process 1")
    assert main(["train", "--resume", str(run_dir)]) == 0
    assert f"{run_dir} has no checkpoint yet; the run starts again from the beginning" in unwrapped(capsys.readouterr().err)
    assert json.loads((run_dir / "summary.json").read_text())["epochs_run"] == 2
    assert not (run_dir / ".lock").exists()


def test_a_read_only_run_directory_on_resume_is_one_line_and_changes_nothing(tmp_path, capsys, monkeypatch):
    run_dir = tmp_path / "cut"
    checkpointed(run_dir, epochs=2)  # checkpoints, and no summary yet
    (run_dir / "config.toml").write_text(riskmin.Config(model="linear", epochs=4, progress=False).to_toml())
    before = tree(tmp_path)
    real_open = os.open

    def read_only(path, flags, *rest):  # what a read-only mount says, even to root
        if str(path).startswith(str(run_dir)) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_open(path, flags, *rest)

    monkeypatch.setattr(os, "open", read_only)
    assert main(["train", "--resume", str(run_dir)]) == 2
    monkeypatch.undo()
    err = errors(capsys)
    assert len(err) == 1 and f"error: run directory {run_dir} cannot be written (Read-only file system)" in err[0], err
    assert tree(tmp_path) == before


def test_a_full_disk_when_the_lock_is_written_is_one_line(tmp_path, capsys, monkeypatch):
    real_write = os.write

    def full(handle, data):
        if bytes(data).startswith(b"riskmin process"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(handle, data)

    monkeypatch.setattr(os, "write", full)
    assert main(["train", *QUICK, "--out", str(tmp_path), "--name", "full"]) == 2
    monkeypatch.undo()
    err = errors(capsys)
    assert len(err) == 1 and "cannot be written (No space left on device)" in err[0], err
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_when_the_final_files_are_written_leaves_the_run_resumable(tmp_path, capsys, monkeypatch):
    real_write = riskmin._runs._rundir.atomic_write

    def full(path, data):
        if Path(path).name == "model.safetensors":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real_write(path, data)

    monkeypatch.setattr(riskmin._runs._rundir, "atomic_write", full)
    assert main(["train", *QUICK, "--out", str(tmp_path), "--name", "full"]) == 1
    monkeypatch.undo()
    err = unwrapped(capsys.readouterr().err).strip().splitlines()
    assert err == [f"error: the trained run could not be written to {tmp_path / 'full'} (No space left on device); "
                   f"free space, then finish it with: riskmin train --resume {tmp_path / 'full'}"]
    assert not (tmp_path / "full" / "summary.json").exists()
    assert not [p for p in (tmp_path / "full").rglob(".*") if p.name != ".lock"]  # no temporary file left behind
    assert main(["train", "--resume", str(tmp_path / "full")]) == 0
    assert json.loads((tmp_path / "full" / "summary.json").read_text())["epochs_run"] == 2


@pytest.fixture
def table(finished, tmp_path):
    """A CSV file of rows with the finished run's feature columns."""
    path = tmp_path / "rows.csv"
    path.write_text("x0,x1,x2,x3,x4,x5,x6,x7,x8,x9\n" + "0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1.0\n" * 3)
    return path


@pytest.mark.parametrize("where, message", [("input", "is the input file"), ("run", "is inside the run directory"),
                                            ("existing", "already exists; pass --overwrite to replace it")])
def test_predict_never_writes_over_its_input_its_run_or_an_existing_file(finished, table, tmp_path, capsys, where, message):
    existing = tmp_path / "old.csv"
    existing.write_text("mine\n")
    out = {"input": table, "run": finished / "model.safetensors", "existing": existing}[where]
    before = tree(tmp_path)
    capsys.readouterr()
    assert main(["predict", str(finished), str(table), "--out", str(out)]) == 2
    err = errors(capsys)
    assert len(err) == 1 and message in err[0], err
    assert tree(tmp_path) == before


def test_predict_replaces_an_existing_file_with_overwrite(finished, table, tmp_path):
    out = tmp_path / "old.csv"
    out.write_text("mine\n")
    assert main(["predict", str(finished), str(table), "--out", str(out), "--overwrite"]) == 0
    assert out.read_text().splitlines()[0] == "predicted_y0,predicted_y1"


@pytest.mark.parametrize("damage, message", [
    ("preprocessing", "preprocessing.json does not match the checksum in summary.json"),
    ("model", "model.safetensors does not match the checksum in summary.json"),
    ("summary", "summary.json is not readable JSON"),
])
def test_a_damaged_run_is_one_error_line_at_predict_and_evaluate(finished, table, tmp_path, capsys, damage, message):
    if damage == "preprocessing":
        path = finished / "preprocessing.json"
        path.write_text(path.read_text().replace('"n_inputs": 10', '"n_inputs": 11'))  # still valid JSON
    elif damage == "model":
        data = bytearray((finished / "model.safetensors").read_bytes())
        data[-1] ^= 1
        (finished / "model.safetensors").write_bytes(bytes(data))
    else:
        (finished / "summary.json").write_text('{"best_epoch": ')
    capsys.readouterr()
    assert main(["predict", str(finished), str(table), "--out", str(tmp_path / "p.csv")]) == 2
    assert main(["evaluate", str(finished), str(table)]) == 2
    err = errors(capsys)
    assert len(err) == 2 and all(line.startswith("error: ") and message in line for line in err), err
    with pytest.raises(RiskminError, match=message):
        riskmin.Run.load(finished)


def rehashed(run):
    """summary.json's checksums made to agree with the files again, as after a hand edit that redid them."""
    summary = json.loads((run / "summary.json").read_text())
    summary["sha256"] = {name: hashlib.sha256((run / name).read_bytes()).hexdigest() for name in summary["sha256"]}
    (run / "summary.json").write_text(json.dumps(summary))


def edited(run, name, old, new):
    path = run / name
    assert old in path.read_text()
    path.write_text(path.read_text().replace(old, new))


def nan_weights(run):
    from safetensors.torch import load_file, save_file

    weights = load_file(run / "model.safetensors")
    next(iter(weights.values())).view(-1)[0] = float("nan")
    save_file(weights, run / "model.safetensors")
    rehashed(run)


def standardizer(run, std):
    preprocessing = json.loads((run / "preprocessing.json").read_text())
    preprocessing["standardizer"]["std"] = std(preprocessing["standardizer"]["std"])
    (run / "preprocessing.json").write_text(json.dumps(preprocessing))
    rehashed(run)


FORGED = [
    ("checksums that are no dict", lambda run: edited(run, "summary.json", '"sha256": {', '"sha256": "x", "was": {'),
     "summary.json holds no checksums riskmin wrote; the run is damaged, train it again"),
    ("config.toml edited", lambda run: edited(run, "config.toml", 'model = "linear"', 'model = "two_layer"'),
     "config.toml does not match the checksum in summary.json; the run is damaged, train it again"),
    ("config.toml edited and rehashed", lambda run: (edited(run, "config.toml", 'model = "linear"', 'model = "two_layer"'),
                                                     rehashed(run)),
     "do not fit the model its config.toml describes (the model has H1.weight, "),
    ("NaN weights", nan_weights, "model.safetensors holds NaN or infinite weights, which riskmin never writes"),
    ("a spread as text", lambda run: standardizer(run, lambda std: "abc"), "preprocessing.json lacks what riskmin wrote there"),
    ("too few spreads", lambda run: standardizer(run, lambda std: std[:3]),
     "preprocessing.json scales inputs that are not the run's 10, each with a spread above 0; the run is damaged"),
    ("spreads of 0", lambda run: standardizer(run, lambda std: [0.0] * len(std)), "scales inputs that are not the run's 10"),
]


@pytest.mark.parametrize("case, forge, message", FORGED, ids=[case for case, _, _ in FORGED])
def test_a_run_edited_by_hand_is_refused_in_one_sentence_even_with_its_checksums_redone(finished, table, capsys, case, forge,
                                                                                      message):
    forge(finished)
    capsys.readouterr()
    assert main(["evaluate", str(finished), str(table)]) == 2
    err = errors(capsys)
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    with pytest.raises(RiskminError, match=re.escape(message)):
        riskmin.Run.load(finished)


def two_checkpoints(tmp_path):
    """(older, newer) manifests of a run of three epochs."""
    riskmin.fit("linear", "lab1", epochs=3, progress=False, checkpoint_every=1, directory=tmp_path)
    newer, older = Checkpoints(tmp_path).complete()
    return older, newer


def data_of(manifest: Path) -> Path:
    return manifest.with_name(manifest.name.replace(".manifest.json", ".safetensors"))


def test_a_manifest_vouches_only_for_the_file_of_its_own_name(tmp_path):
    older, newer = two_checkpoints(tmp_path)
    newer.write_bytes(older.read_bytes())  # the older manifest, whose file is sound, beside the newer data
    # a tampered newer file: loaded unchecked if the manifest's own file were not the one loaded
    data_of(newer).write_bytes(safetensors_bytes({"model/H.weight": torch.zeros(2, 10)}, {"riskmin": "{}", "history": "[]"}))
    warnings = []
    tensors, values = Checkpoints(tmp_path).latest(warn=warnings.append)
    assert values["epoch"] == 2
    assert warnings == [f"checkpoint {data_of(newer).stem} is unusable (its manifest must list {data_of(newer).name} alone); "
                        "trying the one before it"]


def test_a_header_claiming_two_to_the_62_bytes_is_damage_not_a_crash(tmp_path):
    older, newer = two_checkpoints(tmp_path)
    data = bytearray(data_of(newer).read_bytes())
    data[:8] = (2 ** 62).to_bytes(8, "little")
    data_of(newer).write_bytes(bytes(data))
    manifest = json.loads(newer.read_text())  # a manifest that agrees with the damaged file
    manifest["files"][data_of(newer).name] = hashlib.sha256(bytes(data)).hexdigest()
    newer.write_text(json.dumps(manifest))
    warnings = []
    tensors, values = Checkpoints(tmp_path).latest(warn=warnings.append)
    assert values["epoch"] == 2 and "is not a safetensors file" in warnings[0]
    with pytest.raises(RiskminError, match="is not a safetensors file"):
        load_tensors(data_of(newer))


@pytest.mark.parametrize("cut", ["rng/order", "riskmin"])
def test_a_checkpoint_edited_with_its_checksum_redone_is_one_sentence_at_resume(tmp_path, cut):
    from riskmin.callbacks import SignalAt
    from safetensors import safe_open

    with pytest.raises(TrainingInterrupted):
        riskmin.fit("linear", "lab1", epochs=3, progress=False, directory=tmp_path, callbacks=[SignalAt(30, "SIGINT")])
    [manifest] = Checkpoints(tmp_path).complete()
    with safe_open(data_of(manifest), "pt") as file:
        tensors, metadata = {k: file.get_tensor(k) for k in file.keys()}, file.metadata()
    if cut == "riskmin":  # metadata of another shape
        metadata["riskmin"] = json.dumps({"numpy": 5})
    else:
        del tensors[cut]
    data = safetensors_bytes(tensors, metadata)
    data_of(manifest).write_bytes(data)
    manifest.write_text(json.dumps({"files": {data_of(manifest).name: hashlib.sha256(data).hexdigest()}}))
    with pytest.raises(RiskminError, match=rf"^the newest checkpoint of {re.escape(str(tmp_path))} does not hold what "
                                           r"riskmin writes in one \(KeyError\('(rng/order|step)'\)\); the run is "
                                           r"damaged: train it again from the start \(--overwrite, overwrite=True\)$"):
        riskmin.fit("linear", "lab1", epochs=3, progress=False, directory=tmp_path, resume=True)


class Remembers:
    """A callback with state of its own, whose load_state_dict has a bug."""

    def on_epoch_end(self, state):
        pass

    def state_dict(self):
        return {"seen": 1}, {}

    def load_state_dict(self, values, tensors):
        raise KeyError("a bug of the callback's own")


def test_a_callbacks_own_error_at_resume_is_its_own_not_a_damaged_checkpoint(tmp_path):
    from riskmin.callbacks import SignalAt

    with pytest.raises(TrainingInterrupted):
        riskmin.fit("linear", "lab1", epochs=3, progress=False, directory=tmp_path,
                    callbacks=[Remembers(), SignalAt(30, "SIGINT")])
    with pytest.raises(KeyError, match="a bug of the callback's own"):  # not "the run is damaged: train it again"
        riskmin.fit("linear", "lab1", epochs=3, progress=False, directory=tmp_path, resume=True, callbacks=[Remembers()])


def test_checkpoints_replace_symbolic_links_instead_of_writing_through_them(tmp_path):
    probe = riskmin.fit("linear", "lab1", epochs=1, progress=False, checkpoint_every=1, directory=tmp_path / "probe")
    names = [p.name for p in (tmp_path / "probe" / "checkpoint").iterdir()]
    victim = tmp_path / "victim.txt"
    victim.write_text("mine")
    (tmp_path / "run" / "checkpoint").mkdir(parents=True)
    for name in names:
        (tmp_path / "run" / "checkpoint" / name).symlink_to(victim)
    run = riskmin.fit("linear", "lab1", epochs=1, progress=False, checkpoint_every=1, directory=tmp_path / "run")
    assert victim.read_text() == "mine"
    assert all(not p.is_symlink() for p in (tmp_path / "run" / "checkpoint").iterdir())
    tensors, _ = Checkpoints(tmp_path / "run").latest()
    assert torch.equal(tensors["model/H.weight"], run.model.H.weight.detach()) and probe.summary["steps"] == run.summary["steps"]


def test_a_symbolic_link_at_the_lock_is_refused_and_never_written_through(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("mine")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / ".lock").symlink_to(victim)
    with pytest.raises(RiskminError, match="cannot be written"):
        with RunLock(tmp_path / "run"):
            pass
    assert victim.read_text() == "mine" and (tmp_path / "run" / ".lock").is_symlink()


def test_files_get_the_permissions_of_the_umask(tmp_path):
    previous = os.umask(0o022)
    try:
        riskmin.fit("linear", "lab1", epochs=2, progress=False, checkpoint_every=1, directory=tmp_path / "run").save(tmp_path / "saved")
        atomic_write(tmp_path / "one.txt", b"x")
    finally:
        os.umask(previous)
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(written) >= 8 and {oct(p.stat().st_mode & 0o777) for p in written} == {"0o644"}


def test_the_lock_goes_on_where_the_file_system_cannot_lock(tmp_path, capsys, monkeypatch):
    class NoLocks:
        LOCK_EX, LOCK_NB = 2, 4

        @staticmethod
        def flock(handle, operation):
            raise OSError(errno.EOPNOTSUPP, os.strerror(errno.EOPNOTSUPP))

    monkeypatch.setattr(riskmin._files, "fcntl", NoLocks)
    assert main(["train", *QUICK, "--out", str(tmp_path), "--name", "nfs"]) == 0
    err = unwrapped(capsys.readouterr().err).strip().splitlines()
    assert err == [f"warning: the file system of {tmp_path / 'nfs'} cannot lock files; make sure no other riskmin process writes this run"]
    assert not (tmp_path / "nfs" / ".lock").exists()


WITHOUT_FCNTL = """
import sys
sys.modules["fcntl"] = None  # as on Windows: importing it fails
import riskmin
from riskmin._cli._main import main
sys.exit(main(["train", "--model", "linear", "--epochs", "2", "--progress", "off", "--out", sys.argv[1], "--name", "plain"]))
"""


def test_riskmin_trains_where_fcntl_does_not_exist(tmp_path):
    result = subprocess.run([sys.executable, "-c", WITHOUT_FCNTL, str(tmp_path)], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "plain" / "summary.json").is_file() and "cannot lock files" in unwrapped(result.stderr)


def test_a_lock_left_by_a_process_that_is_gone_is_taken_and_removed(tmp_path):
    (tmp_path / ".lock").write_text("riskmin process 1")
    with RunLock(tmp_path):
        assert (tmp_path / ".lock").read_text() == f"riskmin process {os.getpid()}"
    assert not (tmp_path / ".lock").exists()


@pytest.fixture
def cut_csv(tmp_path):
    """A run on a CSV file that wrote its checkpoints and was cut off before its end, as `riskmin train` leaves it."""
    data = tmp_path / "rows.csv"
    generator = torch.Generator().manual_seed(0)
    rows = torch.randn(50, 3, generator=generator)
    data.write_text("a,b,y\n" + "".join(f"{a:.6f},{b:.6f},{y:.6f}\n" for a, b, y in rows.tolist()))
    settings = dict(model="linear", data=str(data), target="y", progress=False)
    run_dir = tmp_path / "cut"
    with pytest.raises(TrainingInterrupted):  # 40 training rows, 2 steps an epoch: cut at the end of epoch 2
        riskmin.fit("linear", str(data), riskmin.Config(**settings, epochs=4, checkpoint_every=1), callbacks=[CtrlCAt(4)],
                    directory=run_dir)
    (run_dir / "config.toml").write_text(riskmin.Config(**settings, epochs=4).to_toml())
    return data, run_dir


@pytest.mark.parametrize("change, message", [
    ("append", "the data changed since the checkpoint: 50 rows then, 53 now"),
    ("column", "the data changed since the checkpoint: feature column c added"),
    ("values", "the data changed since the checkpoint: the same rows and columns hold other values"),
    ("lr", "the settings changed since the checkpoint: lr 0.01 then, 0.02 now"),
])
def test_resume_refuses_data_or_settings_that_changed_since_the_checkpoint(cut_csv, capsys, change, message):
    data, run_dir = cut_csv
    lines = data.read_text().splitlines()
    if change == "append":
        data.write_text("\n".join(lines + ["0.1,0.2,0.3"] * 3) + "\n")
    elif change == "column":
        data.write_text("\n".join([lines[0] + ",c"] + [f"{line},{i}" for i, line in enumerate(lines[1:])]) + "\n")
    elif change == "values":
        data.write_text("\n".join(lines[:1] + ["9.0,9.0,9.0"] + lines[2:]) + "\n")
    else:
        config = run_dir / "config.toml"
        config.write_text(config.read_text().replace("lr = 0.01", "lr = 0.02"))
    before = tree(run_dir.parent)
    capsys.readouterr()
    assert main(["train", "--resume", str(run_dir)]) == 2
    err = errors(capsys)
    assert len(err) == 1 and err[0].startswith(f"error: cannot resume {run_dir}: ") and message in err[0], err
    assert tree(run_dir.parent) == before


def test_resume_with_the_same_data_and_more_epochs_goes_on(cut_csv):
    _, run_dir = cut_csv
    assert main(["train", "--resume", str(run_dir)]) == 0
    assert json.loads((run_dir / "summary.json").read_text())["epochs_run"] == 4


def test_a_feature_at_1e20_scale_is_standardized_not_zeroed():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(400, 2, generator=generator, dtype=torch.float64)
    y = x[:, :1] * 3 + 0.01 * torch.randn(400, 1, generator=generator, dtype=torch.float64)
    x[:, 0] *= 1e20  # squared, beyond float32: its std used to overflow to inf and scale the column to zeros
    run = riskmin.fit("linear", (x, y), optimizer="adam", lr=0.05, epochs=40, progress=False)
    assert torch.isfinite(run.preprocessing.std).all() and run.preprocessing.std[0] > 1e19
    assert run.summary["test_r2"] > 0.99


@pytest.mark.parametrize("x, message", [
    (torch.tensor([[1.0, 2.0], [3.0, 1e39], [0.0, 1.0]], dtype=torch.float64),
     "x column b holds 1e+39 at row 1 (counting from 0), beyond the float32 range riskmin trains in"),
    (torch.tensor([[1.0, 2.0], [3.0, 4.0], [float("inf"), 1.0]]), "x holds NaN or infinite values, first at row 2 (counting from 0), in column a"),
    (torch.tensor([[1.0, 2e-40], [3.0, -3e-45], [0.0, 0.0]], dtype=torch.float64),  # float32 keeps 0, 1e-45 and few digits
     "x column b's values are all smaller in size than 1.2e-38 (the largest is 2e-40), too small for the float32 precision"),
])
def test_a_value_float32_cannot_hold_is_one_error_naming_its_column(x, message):
    with pytest.raises(RiskminError) as error:
        riskmin.Data(x, torch.zeros(3, 1), feature_names=["a", "b"])
    assert message in str(error.value)


def test_a_column_float32_would_round_beyond_its_spread_is_refused_in_one_sentence(tmp_path, capsys):
    generator = torch.Generator().manual_seed(0)
    z = torch.randn(200, 1, generator=generator, dtype=torch.float64)
    x = torch.cat([1.7e9 + 100 * z, z, torch.full_like(z, 1e9 + 1)], 1)  # a time in seconds; a constant column too
    # float32 steps by 128 at 1.7e9: the column read as a few values, and trained on the rounding (r2 0.89 for 0.999)
    with pytest.raises(RiskminError, match=r"^x column x0's values lie near 1\.7e\+09 and differ by about \d+\.\d, where "
                                           r"float32, the precision riskmin trains in, rounds them by up to 6\d(\.\d)?; subtract a "
                                           r"constant from that column first \(such as 1\.7e\+09\)$"):
        riskmin.Data(x, z)
    with pytest.raises(RiskminError, match="^x column x0's values lie near 1.7e"):  # whole numbers of seconds too
        riskmin.Data(x[:, :1].round().long(), z)
    riskmin.Data(x[:, 1:], z)  # a constant far from 0 loses nothing that varies: said to be constant, as before
    riskmin.Data(torch.cat([1.7e9 + 1e7 * z, z], 1), z)  # a spread float32 keeps
    data = tmp_path / "big.csv"  # a target of a file, as the flags read it
    data.write_text("a,y\n" + "".join(f"{float(v)},{1e9 + 3 * float(v)!r}\n" for v in z[:, 0]))
    assert main(["train", str(data), "--target", "y", *QUICK, "--out", str(tmp_path / "runs")]) == 2
    err = errors(capsys)
    assert len(err) == 1 and err[0].startswith("error: y column y's values lie near 1e+09 and differ by about 2.9"), err
    assert not (tmp_path / "runs").exists()
    from riskmin.sklearn import RiskminRegressor

    with pytest.raises(RiskminError, match="^x column x0's values lie near 1.7e"):  # scikit-learn made it float32 first
        RiskminRegressor(epochs=1).fit(x[:, :2].numpy(), z[:, 0].numpy())


def test_float32_rounding_is_checked_in_several_inputs_and_in_columns_with_missing_values():
    generator = torch.Generator().manual_seed(0)
    z = torch.randn(200, 1, generator=generator, dtype=torch.float64)
    far = 1e9 + 3 * z  # float32 steps by 64 there
    # several inputs were made float32 before the check, which then saw float32 alone and passed them
    with pytest.raises(RiskminError, match=r"^x\[1\] column 0's values lie near 1e\+09 and differ by about 2\.\d+, where float32"):
        riskmin.Data((z, far), z)
    with pytest.raises(RiskminError, match=r"^x\['b'\] column 0's values lie near 1e\+09"):
        riskmin.Data({"a": z, "b": far}, z)
    riskmin.Data((z, far - 1e9), z)  # the remedy the sentence names
    # a missing value made the column's extremes NaN, and the check measured nothing
    holes = torch.cat([z, far], 1)
    holes[::7, 1] = float("nan")
    with pytest.raises(RiskminError, match=r"^x column x1's values lie near 1e\+09 and differ by about 2\.\d+, where float32"):
        riskmin.Data(holes, z, missing="mean")
    with pytest.raises(RiskminError, match=r"^x column x1's values lie near 1e\+09"):  # arrays, with missing= as a table's
        riskmin.fit("linear", (holes.numpy(), z.numpy()), missing="mean", epochs=1, progress=False)
    holes[:, 1] -= 1e9
    assert riskmin.fit("linear", (holes.numpy(), z.numpy()), missing="mean", epochs=1, progress=False).summary["epochs_run"] == 1
    tiny = torch.cat([z, 1e-40 * z], 1)
    tiny[::7, 1] = float("nan")
    with pytest.raises(RiskminError, match=r"^x column x1's values are all smaller in size than 1\.2e-38"):
        riskmin.Data(tiny, z, missing="mean")


def test_a_value_beyond_float32_in_a_file_is_named_with_its_column(tmp_path, capsys):
    data = tmp_path / "huge.csv"
    data.write_text("a,b,y\n" + "".join(f"{i},{1e39 if i == 3 else i % 7},{i % 5}.5\n" for i in range(20)))
    assert main(["train", str(data), "--target", "y", *QUICK, "--out", str(tmp_path / "runs")]) == 2
    err = errors(capsys)
    assert len(err) == 1 and "x holds NaN or infinite values, first at row 3 (counting from 0), in column b" in err[0] and "float32" in err[0], err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_a_column_too_small_for_float32_in_a_file_is_named_not_read_as_zeros(tmp_path, capsys, suffix):
    import pyarrow.csv
    import pyarrow.parquet

    data = tmp_path / "tiny.csv"
    data.write_text("a,b,y\n" + "".join(f"{i},{(i % 7 - 3) * 1e-50!r},{i % 5}.5\n" for i in range(20)))
    if suffix == "parquet":
        pyarrow.parquet.write_table(pyarrow.csv.read_csv(data), data.with_suffix(".parquet"))
    assert main(["train", str(data.with_suffix(f".{suffix}")), "--target", "y", *QUICK, "--out", str(tmp_path / "runs")]) == 2
    err = errors(capsys)
    assert len(err) == 1 and "column b's values are all smaller in size than 1.2e-38 (the largest is 3e-50)" in err[0], err
    assert not (tmp_path / "runs").exists()
    # a column left out is not refused, and a tiny value in rows to predict is no error: their scale is the run's
    assert main(["train", str(data.with_suffix(f".{suffix}")), "--target", "y", "--features", "a", "--batch-size", "8", *QUICK,
                 "--out", str(tmp_path / "runs"), "--name", "a"]) == 0
    run = riskmin.Run.load(tmp_path / "runs" / "a")
    assert riskmin.predict(run, np.array([[1e-45]], dtype=np.float64)).shape == (1, 1)


@pytest.mark.parametrize("progress", [True, False])  # a script's quiet fit hears it too
def test_a_run_far_worse_than_predicting_the_mean_is_warned_about(recwarn, progress):
    riskmin.fit("linear", "lab1", optimizer="adam", lr=1e6, epochs=2, restore_best=False, progress=progress)
    warned = [str(w.message) for w in recwarn if issubclass(w.category, riskmin.RiskminWarning)]
    assert len(warned) == 1 and warned[0].startswith("the final val r2 is -"), warned
    assert "far worse than predicting the training mean" in warned[0]
    recwarn.clear()
    riskmin.fit("linear", "lab1", optimizer="adam", lr=0.01, epochs=2)
    assert not [w for w in recwarn if issubclass(w.category, riskmin.RiskminWarning)]


class Pairs(torch.utils.data.Dataset):
    """A Dataset of 40 samples whose items are whatever `item(i)` makes of row i."""

    def __init__(self, item):
        self.item = item

    def __len__(self):
        return 40

    def __getitem__(self, i):
        return self.item(i)


class TwoOutputs(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(3, 1)

    def forward(self, x):
        return self.layer(x), x  # predictions and something else: a tuple


class Squeezed(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(3, 1)

    def forward(self, x):
        return self.layer(x).squeeze(1)


X = torch.randn(40, 3, generator=torch.Generator().manual_seed(0))
Y = X.sum(1, keepdim=True)
LABELS = torch.arange(40) % 3

MISUSE = [
    ("outputs that broadcast", lambda: riskmin.fit(torch.nn.Linear(3, 2), (X, Y)),
     "the model gives outputs of shape (2,) per sample but the targets have 1 column (y0), and mse would broadcast"),
    ("inputs of another size", lambda: riskmin.fit(torch.nn.Linear(4, 1), (X, Y)),
     "the model cannot take the data's inputs, 3 features per sample (mat1 and mat2 shapes cannot be multiplied"),
    ("cross entropy with one output", lambda: riskmin.fit(torch.nn.Linear(3, 1), (X, LABELS)),
     "the model gives outputs of shape (1,) per sample but cross entropy needs one score per class (3 classes)"),
    ("more outputs than named classes", lambda: riskmin.fit(torch.nn.Linear(3, 5), (X.numpy(), np.array(["a", "b", "c"])[LABELS])),
     "the model gives 5 scores per sample but the data has 3 classes (a, b, c), and it could predict an output that is "
     "no class; give its last layer 3 outputs"),
    ("more outputs than named classes, in an experiment",
     lambda: riskmin.montecarlo(lambda: torch.nn.Linear(3, 5), (X.numpy(), np.array(["a", "b", "c"])[LABELS]), runs=2, epochs=1),
     "the model gives 5 scores per sample but the data has 3 classes (a, b, c)"),
    ("indices for an embedding as one x", lambda: riskmin.fit(torch.nn.Embedding(9, 1), (LABELS[:, None], Y)),
     "the model cannot take the data's inputs (Expected tensor for argument #1 'indices' to have one of the following "
     "scalar types: Long, Int; but got torch.FloatTensor instead (while checking arguments for embedding)): it looks up "
     "indices, which x as one tensor gives as float32 features; give x as ((x,), y): several inputs reach the model as they are"),
    ("an optimizer built already", lambda: riskmin.fit(torch.nn.Linear(3, 1), (X, Y), optimizer=torch.optim.SGD(torch.nn.Linear(3, 1).parameters(), lr=0.1)),
     "optimizer = SGD(...), built already, is not allowed: riskmin builds it over the parameters it trains; pass a "
     "function of the parameters, optimizer=lambda parameters: SGD(parameters, ...)"),
    ("a scheduler built already", lambda: riskmin.fit(torch.nn.Linear(3, 1), (X, Y), scheduler=torch.optim.lr_scheduler.StepLR(
        torch.optim.SGD(torch.nn.Linear(3, 1).parameters(), lr=0.1), 3)),
     "scheduler = StepLR(...), built already, is not allowed: riskmin builds it over the optimizer it makes; pass a "
     "function of the optimizer, scheduler=lambda optimizer: StepLR(optimizer, ...)"),
    ("a scheduler class that needs more", lambda: riskmin.fit(torch.nn.Linear(3, 1), (X, Y), scheduler=torch.optim.lr_scheduler.StepLR),
     "scheduler = torch.optim.lr_scheduler.StepLR is a class that needs more than the optimizer to build; pass a "
     "function of the optimizer, scheduler=lambda optimizer: StepLR(optimizer, ...)"),
    ("images as one x", lambda: riskmin.fit(torch.nn.Linear(3, 1), (torch.zeros(40, 1, 2, 2), Y)),
     "x has shape (40, 1, 2, 2); one x is samples x features, and images or other shaped inputs go as a tuple, ((x,), y), "
     "which reaches the model as it is"),
    ("predict one tensor with a run of a tuple of inputs",
     lambda: riskmin.predict(riskmin.fit(torch.nn.Linear(3, 1), ((X,), Y), epochs=1, progress=False), X[:2]),
     "the run was trained on inputs given as a tuple or dict, not one tensor of shape (2, 3); pass the rows so, (x,) "
     "for one input"),
    ("a label the run does not know, from (x, y)",
     lambda: riskmin.evaluate(riskmin.fit("linear", (X.numpy(), LABELS.numpy() + 1), epochs=1, progress=False), (X[:3].numpy(), np.array([1, 2, 4]))),
     "y holds 4, which is not one of the run's classes (1, 2, 3)"),
    ("resume=True where no run is", lambda: riskmin.fit("linear", (X, Y), directory="/nonexistent/run", resume=True),
     "directory /nonexistent/run does not exist, so holds no run to resume; drop resume=True to begin one"),
    ("indices for an embedding as real numbers, given as several inputs",
     lambda: riskmin.fit(torch.nn.Embedding(9, 1), ((LABELS[:, None].float(),), Y)),
     "it looks up indices, which must be whole numbers; give them as x.long()"),
    ("a Dataset of three items", lambda: riskmin.fit(torch.nn.Linear(3, 1), Pairs(lambda i: (X[i], Y[i], i))),
     "the Dataset yields 3 items per sample; riskmin takes (x, y) pairs"),
    ("a Dataset of dicts", lambda: riskmin.fit(torch.nn.Linear(3, 1), Pairs(lambda i: {"x": X[i], "y": Y[i]})),
     "the Dataset yields a dict (keys x, y); riskmin takes (x, y) pairs"),
    ("a 0-d target", lambda: riskmin.fit(torch.nn.Linear(3, 1), (X, torch.tensor(1.0))), "y is a single number (a 0-d tensor)"),
    ("0-d targets from a Dataset", lambda: riskmin.fit(torch.nn.Linear(3, 1), Pairs(lambda i: (X[i], Y[i, 0]))),
     "the Dataset yields each target as a 0-d tensor"),
    ("labels -1, 0, 1 as Data", lambda: riskmin.fit(torch.nn.Linear(3, 3), riskmin.Data(X, LABELS - 1)),
     "class labels must count from 0"),
    ("a float64 model", lambda: riskmin.fit(torch.nn.Linear(3, 1).double(), (X, Y)),
     "the model cannot take the data's inputs (mat1 and mat2 must have the same dtype, but got Float and Double): its "
     "weights are float64 and riskmin gives it float32 inputs; make it float32 with model.float()"),
    ("outputs squeezed to a vector", lambda: riskmin.fit(Squeezed(), (X, Y)),
     "the model gives one number per sample as a vector, outputs of shape (n,), but the targets are a column, of "
     "shape (n, 1), as every loss gets them, and mse would broadcast one against the other; return the outputs as a "
     "column: leave out the squeeze in forward, or return output.unsqueeze(1)"),
    # a loss of one's own takes what it takes, but riskmin's metrics read the outputs: they were measured broadcast
    # (test r2 0.98 on diabetes for a mean and a variance per row), or failed after the first epoch
    ("a loss of one's own beside outputs squeezed to a vector",
     lambda: riskmin.fit(Squeezed(), (X, Y[:, 0]), loss=lambda out, y: ((out.reshape(-1) - y.reshape(-1)) ** 2).mean()),
     "the model gives one number per sample as a vector, outputs of shape (n,), but the targets are a column, of "
     "shape (n, 1), as every loss gets them, and riskmin's metrics would broadcast one against the other"),
    ("a loss of one's own beside a column too many",
     lambda: riskmin.fit(torch.nn.Linear(3, 2), (X, Y), loss=lambda out, y: ((out[:, :1] - y) ** 2).mean()),
     "the model gives outputs of shape (2,) per sample but the targets have 1 column (y0), and riskmin's metrics would "
     "broadcast one against the other; give its last layer 1 output"),
    ("a loss of one's own beside one logit for two classes",
     lambda: riskmin.fit(torch.nn.Linear(3, 1), (X, LABELS % 2), loss=lambda out, y: torch.nn.functional.binary_cross_entropy_with_logits(out[:, 0], y.float())),
     "the model gives outputs of shape (1,) per sample but riskmin's metrics read one score per class (2 classes); give "
     "its last layer 2 outputs, or use --loss bce"),
    ("a cross entropy of one's own beside too few outputs",
     lambda: riskmin.fit(torch.nn.Linear(3, 2), (X, LABELS), loss=torch.nn.CrossEntropyLoss()),
     "the model gives outputs of shape (2,) per sample but riskmin's metrics read one score per class (3 classes); give "
     "its last layer 3 outputs"),
    # torch's ValueError in the middle of the first epoch
    ("BatchNorm beside a last batch of one row",
     lambda: riskmin.fit(torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 1)), (X, Y),
                         batch_size=31, progress=False),
     "the last batch of each epoch holds 1 of the 32 training rows, which the model's BatchNorm cannot normalize in "
     "training; set --drop-last (drop_last=True), or a batch size that leaves more than one row"),
    ("BatchNorm beside batches of one row",  # drop_last said to set, set already
     lambda: riskmin.fit(torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 1)), (X, Y),
                         batch_size=1, drop_last=True, progress=False),
     "every batch holds 1 row, which the model's BatchNorm cannot normalize in training; give --batch-size (batch_size=) "
     "at least 2"),
    ("a model returning a tuple", lambda: riskmin.fit(TwoOutputs(), (X, Y)), "the model returns a tuple, not a tensor"),
    ("predict with a column too many", lambda: riskmin.predict(riskmin.fit("linear", (X, Y), epochs=1, progress=False), torch.randn(5, 4)),
     "the rows have 4 columns but the run was trained on 3 features"),
    ("predict through a bare model", lambda: riskmin.predict(torch.nn.Linear(3, 1), torch.randn(5, 4)),
     "the model cannot take rows of shape (5, 4)"),
    ("evaluate with a column too few", lambda: riskmin.evaluate(riskmin.fit("linear", (X, Y), epochs=1, progress=False), (X[:, :2], Y)),
     "the rows have 2 columns but the run was trained on 3 features"),
]


def test_a_scipy_sparse_x_trains_and_predicts_as_its_dense_rows():
    import scipy.sparse

    sparse = scipy.sparse.csr_matrix(X.numpy() * (X.numpy() > 0))
    dense = riskmin.fit("linear", (sparse.toarray(), Y.numpy()), epochs=2, progress=False)
    run = riskmin.fit("linear", (sparse, Y.numpy()), epochs=2, progress=False)
    assert run.summary["test_loss"] == dense.summary["test_loss"]
    assert np.array_equal(riskmin.predict(run, sparse[:5]), riskmin.predict(dense, sparse.toarray()[:5]))
    assert riskmin.evaluate(run, (sparse, Y.numpy()))["loss"] == riskmin.evaluate(dense, (sparse.toarray(), Y.numpy()))["loss"]


def test_class_indices_may_leave_outputs_for_classes_the_data_lacks():
    # a tensor of indices 0..2 for a model of 5 classes, two of them absent here: trained, where named classes are not
    run = riskmin.fit(torch.nn.Linear(3, 5), (X, LABELS), epochs=1, progress=False)
    assert run.model(X).shape == (40, 5) and run.data_names.get("classes") is None


@pytest.mark.parametrize("case, misuse, message", MISUSE, ids=[case for case, _, _ in MISUSE])
def test_a_misuse_in_python_is_one_sentence_not_a_torch_traceback(case, misuse, message):
    with pytest.raises(RiskminError) as error:
        misuse()
    assert message in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize("x", [X.double(), (X * 10).long()], ids=["float64", "integers"])
def test_float64_and_integer_inputs_train_as_float32(x):
    for data in ((x, Y), Pairs(lambda i: (x[i], Y[i]))):
        run = riskmin.fit(torch.nn.Linear(3, 1), data, epochs=2, progress=False)
        assert run.model.weight.dtype == torch.float32 and math.isfinite(run.summary["train_loss"])


MC = ["montecarlo", "--model", "linear", "--runs", "5", "--epochs", "2", "--progress", "off"]


@pytest.fixture
def experiment(tmp_path):
    """A finished Monte-Carlo experiment at tmp_path/runs/mc, with a file of the user's beside its own."""
    assert main([*MC, "--out", str(tmp_path / "runs"), "--name", "mc"]) == 0
    (tmp_path / "runs" / "mc" / "notes.txt").write_text("mine")
    return tmp_path / "runs" / "mc"


def test_montecarlo_overwrite_swaps_a_complete_new_experiment_in(experiment):
    old = (experiment / "runs.csv").read_text()
    assert main([*MC, "--epochs", "3", "--out", str(experiment.parent), "--name", "mc", "--overwrite"]) == 0
    assert [p.name for p in experiment.parent.iterdir()] == ["mc"]  # nothing left beside it
    assert (experiment / "notes.txt").read_text() == "mine" and (experiment / "runs.csv").read_text() != old
    assert {p.name for p in experiment.iterdir()} == {"config.toml", "runs.csv", "montecarlo.png", "summary.json",
                                                      "notes.txt"}  # the user's own file moved into the new result


def test_a_montecarlo_overwrite_that_fails_while_writing_leaves_the_old_experiment_whole(experiment, monkeypatch, capsys):
    real_write = riskmin._runs._rundir.atomic_write

    def full(path, data):  # the disk fills up after three of the four files
        if Path(path).name == "summary.json":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real_write(path, data)

    before = tree(experiment)
    monkeypatch.setattr(riskmin._runs._rundir, "atomic_write", full)
    capsys.readouterr()
    assert main([*MC, "--epochs", "3", "--out", str(experiment.parent), "--name", "mc", "--overwrite"]) == 2
    err = errors(capsys)
    building, = experiment.parent.glob(".mc.new-*")  # the new runs, kept beside the old experiment until they are written
    assert len(err) == 1 and err[0] == (f"error: the results could not be written to {building} (No space left on device); {experiment} "
                                        f"is as it was; free space or fix permissions, then continue it with: riskmin montecarlo "
                                        f"--resume {building}"), err
    assert tree(experiment) == before
    monkeypatch.undo()  # space again: the new experiment takes the old one's place, its runs not trained again
    assert main(["montecarlo", "--resume", str(building)]) == 0
    assert not building.exists() and (experiment / "notes.txt").read_text() == "mine" and tree(experiment) != before


def test_montecarlo_overwrite_refuses_a_symbolic_link_before_training(tmp_path, capsys):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "mc").symlink_to(tmp_path / "elsewhere")
    before = tree(tmp_path)
    assert main([*MC, "--out", str(tmp_path / "runs"), "--name", "mc", "--overwrite"]) == 2
    err = errors(capsys)
    assert len(err) == 1 and "is a symbolic link; riskmin never writes through a link nor replaces one" in err[0], err
    assert tree(tmp_path) == before


def test_an_experiment_given_where_a_run_goes_is_said_to_be_one(experiment, table, tmp_path, capsys):
    capsys.readouterr()
    held = f"{experiment} holds an experiment (montecarlo, compare or curve), not a run"
    for command in (["predict", str(experiment), str(table), "--out", str(tmp_path / "p.csv")],
                    ["evaluate", str(experiment), str(table)], ["export", str(experiment)]):
        assert main(command) == 2
        assert errors(capsys)[0].startswith(f"error: {held}; give the folder of a run `riskmin train` wrote")
    assert main(["train", "--resume", str(experiment)]) == 2
    assert errors(capsys) == [f"error: experiment {experiment} already finished; there is nothing to resume"]


class Floored(torch.nn.Module):
    """A model with an infinite buffer, as an attention mask's -inf is: a value it holds on purpose."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.layer = torch.nn.Linear(3, 1)
        self.register_buffer("floor", torch.tensor(-math.inf))

    def forward(self, x):
        return torch.maximum(self.layer(x), self.floor)


def test_an_infinite_buffer_is_kept_and_loaded_as_a_value_the_model_holds_on_purpose(tmp_path):
    run = riskmin.fit(Floored(), (X, Y), epochs=2, progress=False, directory=tmp_path / "run")
    assert (tmp_path / "run" / "model.safetensors").is_file()
    loaded = riskmin.Run.load(tmp_path / "run", Floored())
    assert loaded.model.floor.item() == -math.inf and torch.equal(riskmin.predict(loaded, X), riskmin.predict(run, X))
