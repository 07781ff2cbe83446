"""Nothing lost, part two: no command writes inside a run or experiment other than its own, over an existing file without
--overwrite, or through a symbolic link; --overwrite replaces a run or experiment only with a success; and mistakes that
used to end in a traceback are one sentence, with nothing written."""

import copy
import io
import json
import os
import re
import shutil
import sys
import types
from pathlib import Path

import pytest
import torch

import riskmin
from riskmin import RiskminError, RiskminNote
from riskmin._cli._main import main
from riskmin.callbacks import CsvLog, SignalAt, State, TensorBoard
from riskmin._training._checkpoint import TrainingInterrupted
from snapshot import tree
from said import unwrapped

QUICK = ["--model", "linear", "--epochs", "2", "--progress", "off"]
SWEEP = ["lr-find", "line", "--model", "linear", "--steps", "10", "--progress", "off"]


def error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


@pytest.fixture
def runs(tmp_path, monkeypatch):
    """Two finished runs, runs/a and runs/b, and a file of new rows, in a fresh working folder."""
    monkeypatch.chdir(tmp_path)
    for name in ("a", "b"):
        assert main(["train", "line", *QUICK, "--name", name]) == 0
    Path("new.csv").write_text("x\n1\n2\n")
    return tmp_path / "runs"


# A. No command writes where it was not asked to, and never through a link

@pytest.mark.parametrize("out", ["runs/b/model.safetensors", "runs/b/new.csv", "to_b/model.safetensors", "b_summary"])
@pytest.mark.parametrize("command", ["predict", "export"])
def test_predict_and_export_never_write_into_another_run(runs, capsys, command, out):
    Path("to_b").symlink_to(runs / "b")  # a link to the other run
    Path("b_summary").symlink_to(runs / "b" / "summary.json")  # and one to a file of it
    before = tree(runs)
    args = ["predict", "runs/a", "new.csv"] if command == "predict" else ["export", "runs/a", "--format", "torchscript"]
    capsys.readouterr()
    assert main([*args, "--out", out, "--overwrite"]) == 2
    assert "is inside the run directory" in error_line(capsys)
    assert tree(runs) == before


def test_predict_into_a_missing_folder_or_onto_a_folder_is_one_sentence(runs, capsys):
    capsys.readouterr()
    assert main(["predict", "runs/a", "new.csv", "--out", "nowhere/p.csv"]) == 2
    assert error_line(capsys) == "error: --out nowhere/p.csv: the folder nowhere does not exist; create it or choose another --out"
    assert main(["predict", "runs/a", "new.csv", "--out", "runs"]) == 2
    assert error_line(capsys) == "error: --out runs is a folder; give the name of a file to write"


@pytest.mark.parametrize("out", ["p.npz", "p.json", "p"])
def test_predict_writes_csv_and_says_so_of_any_other_name(runs, capsys, out):
    capsys.readouterr()
    assert main(["predict", "runs/a", "new.csv", "--out", out]) == 2
    assert error_line(capsys) == f"error: --out {out}: predictions are written as CSV; name a .csv file"
    assert not Path(out).exists()
    assert main(["predict", "runs/a", "new.csv", "--out", "P.CSV"]) == 0 and Path("P.CSV").read_text().startswith("predicted_y")


def test_predict_with_overwrite_replaces_a_link_instead_of_writing_through_it(runs, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("mine")
    Path("p.csv").symlink_to(victim)
    assert main(["predict", "runs/a", "new.csv", "--out", "p.csv", "--overwrite"]) == 0
    assert victim.read_text() == "mine" and not Path("p.csv").is_symlink()
    assert Path("p.csv").read_text().startswith("predicted_y\n")


@pytest.mark.parametrize("where", [["--out", "runs/a"], ["--out", "runs/a/deeper"], ["--out", "runs/a/checkpoint"]])
@pytest.mark.parametrize("command", ["train", "montecarlo"])
def test_no_run_or_experiment_is_written_inside_another(runs, capsys, command, where):
    before = tree(runs)
    capsys.readouterr()
    extra = ["--runs", "2"] if command == "montecarlo" else []
    assert main([command, "line", *QUICK, *extra, *where]) == 2
    assert "the run directory runs/a; choose an --out outside every run" in error_line(capsys)
    assert tree(runs) == before


def test_a_run_given_to_fit_inside_another_is_refused_before_training(runs):
    before = tree(runs)
    with pytest.raises(RiskminError, match="would be inside the run directory .*runs/a; choose another directory"):
        riskmin.fit("linear", "line", epochs=2, progress=False, directory=runs / "a" / "inner")
    assert tree(runs) == before


def test_overwrite_replaces_only_riskmins_own_folders(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "mine").mkdir(parents=True)
    (tmp_path / "runs" / "mine" / "thesis.tex").write_text("years of work")
    before = tree(tmp_path / "runs")
    assert main(["train", "line", *QUICK, "--name", "mine", "--overwrite"]) == 2
    assert "runs/mine exists and is not a riskmin run; --overwrite replaces only riskmin's runs" in error_line(capsys)
    assert tree(tmp_path / "runs") == before


def test_lr_find_replaces_no_picture_without_overwrite_the_default_included(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name, plot in (("precious.png", ["--plot", "precious.png"]), ("lr_find.png", [])):
        Path(name).write_bytes(b"precious")
        capsys.readouterr()
        assert main([*SWEEP, *plot]) == 2
        assert error_line(capsys) == f"error: {name} already exists; pass --overwrite to replace it or choose another --plot"
        assert Path(name).read_bytes() == b"precious"
    assert main([*SWEEP, "--plot", "precious.png", "--overwrite"]) == 0
    assert Path("precious.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_lr_find_replaces_a_link_instead_of_drawing_through_it_and_draws_the_format_its_name_says(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("victim.png").write_bytes(b"mine")
    Path("sweep.png").symlink_to(tmp_path / "victim.png")
    assert main([*SWEEP, "--plot", "sweep.png", "--overwrite"]) == 0
    assert Path("victim.png").read_bytes() == b"mine" and not Path("sweep.png").is_symlink()
    assert main([*SWEEP, "--plot", "sweep.svg"]) == 0
    assert b"<svg" in Path("sweep.svg").read_bytes()[:400]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweep.png", "sweep.svg", "victim.png"]  # no scratch left


def interrupted(signal_at, folder: Path, *flags) -> Path:
    """The run `riskmin train lab1` writes in `folder`, interrupted after its first epoch (25 steps) with a checkpoint."""
    assert main(["train", "lab1", *QUICK, "--out", str(folder.parent), "--name", folder.name, "--checkpoint-every", "1",
                 *flags, *signal_at(25, "SIGINT")]) == 130
    return folder


@pytest.fixture
def cut(tmp_path, signal_at):
    return interrupted(signal_at, tmp_path / "runs" / "cut")


def test_a_link_planted_at_metrics_csv_is_replaced_on_resume_not_written_through(cut, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("mine")
    (cut / "metrics.csv").unlink()
    (cut / "metrics.csv").symlink_to(victim)
    assert main(["train", "--resume", str(cut)]) == 0
    assert victim.read_text() == "mine" and not (cut / "metrics.csv").is_symlink()
    assert len((cut / "metrics.csv").read_text().splitlines()) == 3  # the header and both epochs


def test_a_link_planted_at_the_checkpoint_folder_is_refused_and_never_written_through(cut, tmp_path, capsys):
    elsewhere = tmp_path / "elsewhere"
    (cut / "checkpoint").rename(elsewhere)
    (cut / "checkpoint").symlink_to(elsewhere)
    before = tree(elsewhere)
    capsys.readouterr()
    assert main(["train", "--resume", str(cut)]) == 2
    assert "checkpoint is a symbolic link; riskmin never writes a checkpoint through one" in error_line(capsys)
    assert tree(elsewhere) == before


def test_the_csv_log_replaces_what_is_at_its_path_and_keeps_appending_to_its_own_file(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("mine")
    (tmp_path / "metrics.csv").symlink_to(victim)
    log = CsvLog(tmp_path / "metrics.csv")
    state = State(model=torch.nn.Linear(1, 1), epochs=2, steps_per_epoch=1, history=[{"epoch": 1, "loss": 0.5}])
    log.on_fit_start(state)
    state.metrics = {"epoch": 2, "loss": 0.25}
    log.on_validation_end(state)
    log.close()
    assert victim.read_text() == "mine"
    assert (tmp_path / "metrics.csv").read_text() == "epoch,loss\n1,0.5\n2,0.25\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_tensorboard_files_get_a_name_no_link_can_wait_at(tmp_path, monkeypatch):
    made = []
    fake = types.ModuleType("torch.utils.tensorboard")
    fake.SummaryWriter = lambda **settings: made.append(settings)
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", fake)
    for _ in range(2):
        TensorBoard(tmp_path).on_fit_start(State(model=torch.nn.Linear(1, 1), epochs=1, steps_per_epoch=1))
    suffixes = [settings["filename_suffix"] for settings in made]
    assert len(set(suffixes)) == 2 and all(len(suffix) == 17 for suffix in suffixes)


# B. --overwrite replaces only with a success

def test_an_overwrite_that_diverges_leaves_the_old_run_and_keeps_the_new_one_beside(runs, capsys):
    before = tree(runs / "b")
    capsys.readouterr()
    assert main(["train", "line", *QUICK, "--optimizer", "sgd", "--lr", "1e12", "--name", "b", "--overwrite"]) == 1
    (building,) = runs.glob(".b.new-*")
    last = unwrapped(capsys.readouterr().err).strip().splitlines()[-1]
    assert last.startswith("error: the training loss became") and last.endswith(
        f"; runs/b is as it was; the new run is in {building.relative_to(runs.parent)}: discard it with: rm -r "
        f"{building.relative_to(runs.parent)}")
    assert tree(runs / "b") == before
    assert not (building / "model.safetensors").exists()  # its weights diverged: it keeps no model
    assert main(["train", "line", *QUICK, "--name", "b", "--overwrite"]) == 0  # neither the old nor the kept one blocks


def test_an_overwrite_stopped_by_sigterm_leaves_the_old_run_and_resumes_into_its_place(runs, capsys, signal_at):
    before = tree(runs / "b")
    capsys.readouterr()
    assert main(["train", "lab1", *QUICK, "--name", "b", "--overwrite", *signal_at(30, "SIGTERM")]) == 130
    (building,) = runs.glob(".b.new-*")
    building = building.relative_to(runs.parent)
    assert unwrapped(capsys.readouterr().err).strip().endswith(
        f"the checkpoint is saved; runs/b is as it was; the new run is in {building}: continue it with: riskmin train "
        f"--resume {building} (it takes the place of runs/b once it succeeds), or discard it with: rm -r {building}")
    assert tree(runs / "b") == before
    assert main(["train", "--resume", str(building)]) == 0
    assert sorted(p.name for p in runs.iterdir()) == ["a", "b"]
    assert json.loads((runs / "b" / "summary.json").read_text())["n_train"] == 800  # lab1's run, in b's place


def test_a_resumed_replacement_that_diverges_stays_beside_the_old_run(runs, capsys, signal_at):
    before = tree(runs / "b")
    # interrupted after step 2: line takes 3 steps an epoch; at this rate it diverges at step 6
    assert main(["train", "line", *QUICK, "--optimizer", "sgd", "--lr", "1e6", "--name", "b", "--overwrite",
                 *signal_at(2, "SIGINT")]) == 130
    (building,) = runs.glob(".b.new-*")
    capsys.readouterr()
    assert main(["train", "--resume", str(building)]) == 1
    assert unwrapped(capsys.readouterr().err).strip().endswith(f"runs/b is as it was; the new run is in {building}: discard it with: "
                                                    f"rm -r {building}")
    assert tree(runs / "b") == before and json.loads((building / "summary.json").read_text())["diverged"]


def test_an_overwrite_failing_after_a_checkpoint_keeps_the_old_run_and_names_the_resume(runs, capsys, monkeypatch):
    import errno

    import riskmin._training._checkpoint

    real_write, written = riskmin._training._checkpoint.files.atomic_write, []

    def full_disk_at_the_second_checkpoint(path, data):
        if path.name.endswith(".safetensors"):
            written.append(path.name)
            if len(written) == 2:
                raise OSError(errno.ENOSPC, "No space left on device")
        real_write(path, data)

    before = tree(runs / "b")
    capsys.readouterr()
    with monkeypatch.context() as patched:
        patched.setattr(riskmin._training._checkpoint.files, "atomic_write", full_disk_at_the_second_checkpoint)
        assert main(["train", "lab1", *QUICK, "--epochs", "3", "--checkpoint-every", "1", "--name", "b", "--overwrite"]) == 2
    (building,) = runs.glob(".b.new-*")
    building = building.relative_to(runs.parent)
    line = error_line(capsys)
    assert line.startswith("error: could not write a checkpoint in ") and "(No space left on device)" in line
    assert line.endswith(f"; runs/b is as it was; the new run is in {building}: continue it with: riskmin train --resume "
                         f"{building} (it takes the place of runs/b once it succeeds), or discard it with: rm -r {building}")
    assert tree(runs / "b") == before
    assert main(["train", "--resume", str(building)]) == 0
    assert sorted(p.name for p in runs.iterdir()) == ["a", "b"]


def test_a_montecarlo_overwrite_whose_runs_all_diverge_leaves_the_old_experiment(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    experiment = ["montecarlo", "line", *QUICK, "--runs", "2", "--name", "mc"]
    assert main(experiment) == 0
    before = tree(tmp_path / "runs" / "mc")
    capsys.readouterr()
    assert main([*experiment, "--optimizer", "sgd", "--lr", "1e12", "--overwrite"]) == 1
    (building,) = (tmp_path / "runs").glob(".mc.new-*")
    building = building.relative_to(tmp_path)
    assert unwrapped(capsys.readouterr().err).strip().splitlines()[-1].endswith(
        f"(the table is in {building}/runs.csv); runs/mc is as it was: discard the new one with: rm -r {building}")
    assert tree(tmp_path / "runs" / "mc") == before
    assert main([*experiment, "--overwrite"]) == 0
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == [".mc.new-" + building.name[-8:], "mc"]


def test_an_empty_folder_a_stopped_command_left_is_used_with_a_note_and_resume_says_so(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("runs/left").mkdir(parents=True)  # killed between making the folder and writing config.toml
    assert main(["train", "--resume", "runs/left"]) == 2
    assert error_line(capsys) == ("error: runs/left is empty: the command that made it stopped before the run began; run "
                                  "that command again, which uses the folder")
    assert main(["train", "line", *QUICK, "--name", "left"]) == 0
    assert ("note: runs/left is an empty folder, left by a command stopped before its run began; this run uses it"
            in unwrapped(capsys.readouterr().err).splitlines())
    assert (tmp_path / "runs" / "left" / "summary.json").is_file() and sorted(os.listdir("runs")) == ["left"]
    # the one an unnamed run would take: it wrote runs/line-linear-2 beside it, without a word
    Path("runs/line-linear").mkdir()
    assert main(["train", "line", *QUICK]) == 0
    assert ("note: runs/line-linear is an empty folder, left by a command stopped before its run began; this run uses "
            "it" in unwrapped(capsys.readouterr().err).splitlines())
    assert sorted(os.listdir("runs")) == ["left", "line-linear"] and Path("runs/line-linear/summary.json").is_file()


# C. Tracebacks where a sentence belongs: one sentence, status 2, nothing written

@pytest.mark.parametrize("plot, message", [
    ("runs/a/curves.png", "--plot runs/a/curves.png is inside the run directory runs/a; write the picture elsewhere"),
    ("runs/a/new.png", "--plot runs/a/new.png is inside the run directory runs/a"),
    ("rows.csv", "--plot rows.csv does not end in a picture format; name it .png, .svg or .pdf"),
    ("nowhere/sweep.png", "--plot nowhere/sweep.png: the folder nowhere does not exist; create it or choose another --plot"),
    ("sweep.txt", "--plot sweep.txt does not end in a picture format"),
    ("sweep", "--plot sweep does not end in a picture format"),
])
def test_lr_find_refuses_a_picture_it_must_not_draw_before_the_sweep(runs, capsys, plot, message):
    Path("rows.csv").write_text("x,y\n" + "".join(f"{i},{2 * i}\n" for i in range(20)))
    before = tree(runs.parent)
    capsys.readouterr()
    assert main(["lr-find", "rows.csv", "--target", "y", "--model", "linear", "--steps", "10", "--plot", plot,
                 "--overwrite"]) == 2
    assert message in error_line(capsys)  # said before the data's note lines
    assert tree(runs.parent) == before


def test_predict_on_a_file_with_a_header_and_no_rows_is_one_sentence(runs, capsys):
    Path("empty.csv").write_text("x\n")
    capsys.readouterr()
    assert main(["predict", "runs/a", "empty.csv", "--out", "p.csv"]) == 2
    assert error_line(capsys) == ("error: empty.csv has no rows to predict; give a file with at least one row under its "
                                  "header")
    assert not Path("p.csv").exists()


def test_a_one_cycle_schedule_with_epochs_edited_before_resume_is_one_sentence(tmp_path, capsys, signal_at):
    run = interrupted(signal_at, tmp_path / "runs" / "cycle", "--scheduler", "one_cycle")
    config = run / "config.toml"
    config.write_text(config.read_text().replace("epochs = 2\n", "epochs = 12\n"))
    before = tree(run)
    capsys.readouterr()
    assert main(["train", "--resume", str(run)]) == 2
    assert "one_cycle" in error_line(capsys)
    assert tree(run) == before


@pytest.mark.parametrize("given", ["tensors", "Dataset"])
def test_fit_with_integer_class_targets_of_shape_n_by_1_is_one_sentence(given):
    x, y = torch.randn(40, 2), torch.randint(0, 3, (40, 1))
    data = (x, y) if given == "tensors" else torch.utils.data.TensorDataset(x, y)
    fix = "a vector, y.squeeze(1)" if given == "tensors" else "plain integers from the Dataset's __getitem__"
    with pytest.raises(RiskminError) as refused:
        riskmin.fit("linear", data, epochs=1, progress=False)
    assert str(refused.value) == ("loss cross_entropy takes one class label per sample, but the integer targets have shape (1,) "
                                  f"per sample; give the labels as {fix}, or the targets as real numbers (y.float()) for regression")


@pytest.mark.parametrize("loss, message", [
    (lambda out, target: torch.tensor(1.0), "loss <lambda> returned a tensor without a gradient (requires_grad is False)"),
    (lambda out, target: ((out - target) ** 2).mean().detach(), "loss <lambda> returned a tensor without a gradient"),
])
def test_a_loss_without_a_gradient_is_one_sentence_at_the_first_step(loss, message):
    x, y = torch.randn(40, 2), torch.randn(40, 1)
    model = torch.nn.Linear(2, 1)
    before = [p.clone() for p in model.parameters()]
    with pytest.raises(RiskminError) as refused:
        riskmin.fit(model, (x, y), epochs=1, progress=False, loss=loss)
    assert str(refused.value).startswith(message) and "compute it from the model's outputs" in str(refused.value)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))  # refused before any step changed a weight


def test_a_fit_inside_no_grad_says_gradients_are_off():
    with torch.no_grad(), pytest.raises(RiskminError, match="gradients are switched off: fit was called inside torch.no_grad"):
        riskmin.fit("linear", "line", epochs=1, progress=False)


def test_a_seed_of_two_to_the_64_is_one_sentence(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "line", *QUICK, "--seed", str(2 ** 64)]) == 2
    assert error_line(capsys) == "error: seed = 18446744073709551616 is out of range; it must be at most 9223372036854775807"
    assert main(["train", "line", *QUICK, "--data-seed", str(2 ** 63)]) == 2
    assert error_line(capsys) == "error: data_seed = 9223372036854775808 is out of range; it must be at most 9223372036854775807"
    assert list(tmp_path.iterdir()) == []


def test_the_largest_seed_reads_back_from_config_toml_and_an_experiment_must_leave_room_for_its_runs(tmp_path, capsys,
                                                                                                      monkeypatch):
    from riskmin.config import LARGEST_SEED

    monkeypatch.chdir(tmp_path)
    for command, grid in (("montecarlo", []), ("compare", ["--lr", "0.1,0.01"])):
        assert main([command, "line", *QUICK, "--runs", "3", "--seed", str(LARGEST_SEED - 1), *grid]) == 2
        assert error_line(capsys) == (f"error: seed = {LARGEST_SEED - 1} with runs = 3 gives the last run the seed "
                                      f"{LARGEST_SEED + 1}, beyond {LARGEST_SEED}, the largest; choose a seed of at most "
                                      f"{LARGEST_SEED - 2}")
    mc = riskmin.montecarlo("linear", "line", runs=2, seed=LARGEST_SEED - 1, epochs=1, progress=False, engine="sequential")
    assert [row["seed"] for row in mc.table] == [LARGEST_SEED - 1, LARGEST_SEED]
    assert riskmin.Config.from_toml(mc.save(tmp_path / "mc") / "config.toml").seed == LARGEST_SEED - 1


def test_a_splits_index_beyond_int64_is_one_sentence(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for index, said in (("99999999999999999999", "holds row 99999999999999999999, but the data has 100 rows (0 to 99)"),
                        ("-99999999999999999999", "holds the negative row index -99999999999999999999; row indices count from 0")):
        Path("splits.csv").write_text(f'train,val,test\n"0 1 2 {index}","3 4","5"\n')
        assert main(["montecarlo", "line", *QUICK, "--runs", "1", "--splits", "splits.csv"]) == 2
        assert error_line(capsys) == f"error: splits file splits.csv line 2, column train, {said}"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["splits.csv"]  # no runs/ folder either


# D. An interrupted run of several processes says how to resume it with as many; they die with their launcher

@pytest.mark.parametrize("world, local, command", [
    ("1", "1", "riskmin train --resume runs/x"),
    ("2", "2", "riskmin train --resume runs/x --nproc 2"),
    ("16", "8", "torchrun with the options that started these 16 processes, -m riskmin train --resume runs/x"),
])
def test_the_resume_command_names_as_many_processes_as_trained_the_run(capsys, monkeypatch, world, local, command):
    from riskmin._training._checkpoint import TrainingInterrupted
    from riskmin._cli._commands import report_outcome

    monkeypatch.setenv("WORLD_SIZE", world)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", local)
    assert report_outcome(TrainingInterrupted("interrupted in epoch 1 after step 5; the checkpoint is saved"), Path("runs/x")) == 130
    said = capsys.readouterr().err
    assert unwrapped(said) == f"interrupted in epoch 1 after step 5; the checkpoint is saved; continue with: {command}\n"
    assert all(len(line) <= 80 for line in said.splitlines())  # wrapped, as every message


def process_state(pid: int) -> tuple:
    """(state letter, parent id) of a process from /proc (Linux), or (None, None) once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None, None
    fields = text[text.rindex(")") + 2:].split()
    return fields[0], int(fields[1])


def wait_for(condition, seconds: float):
    """Poll `condition()` until it gives something true, which is returned; the time limit only ends a hang."""
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.02)
    raise AssertionError(f"not reached within {seconds} s")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_the_processes_of_a_killed_launcher_save_stop_and_free_the_run(tmp_path, signal_at):
    import signal
    import subprocess

    from riskmin._files import RunLock

    run = tmp_path / "cut"
    # both processes stop themselves (SIGSTOP) after step 30 of 75: a moment chosen in advance, at which the test
    # kills the launcher outright and lets them go on; their parent-death signal, SIGTERM, is waiting for them then
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    launcher = subprocess.Popen([sys.executable, "-m", "riskmin", "train", "lab1", "--model", "linear", "--epochs", "3",
                                 "--progress", "off", "--out", str(tmp_path), "--name", "cut", "--nproc", "2",
                                 *signal_at(30, "SIGSTOP")],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        def both_stopped():
            workers = [int(p) for p in os.listdir("/proc") if p.isdigit() and process_state(int(p))[1] == launcher.pid]
            return workers if len(workers) == 2 and all(process_state(w)[0] == "T" for w in workers) else None
        workers = wait_for(both_stopped, 120)
        launcher.kill()
        launcher.wait()
        for worker in workers:
            os.kill(worker, signal.SIGCONT)
        _, err = launcher.communicate(timeout=120)  # the pipes close once both processes have ended
    finally:
        launcher.kill()
    assert all(process_state(w)[0] in (None, "Z") for w in workers)
    assert unwrapped(err).strip().splitlines()[-1:] == [f"interrupted in epoch 2 after step 48; the checkpoint is saved; "
                                                        f"continue with: riskmin train --resume {run} --nproc 2"], err[-2000:]
    with RunLock(run):  # nobody holds the run's lock
        pass
    resumed = subprocess.run([sys.executable, "-m", "riskmin", "train", "--resume", str(run), "--nproc", "2"],
                             capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert json.loads((run / "summary.json").read_text())["epochs_run"] == 3


# E. From Python, a result's plot(path) and save(directory) follow the rules of the command line

@pytest.fixture(scope="module")
def results():
    """An lr-find sweep, a Monte-Carlo experiment and a comparison, each small."""
    sweep = riskmin.LrFinding([1e-3, 1e-2, 1e-1], [1.0, 0.5, 0.8], 1e-2)
    mc = riskmin.montecarlo("linear", "line", runs=2, epochs=1, progress=False)
    comparison = riskmin.compare({"fast": {"lr": 0.1}, "slow": {"lr": 0.01}}, "line", runs=2, epochs=1, progress=False)
    run = riskmin.fit("linear", "line", epochs=1, progress=False)
    return {"LrFinding": sweep, "MonteCarlo": mc, "Comparison": comparison, "Run": run}


PNG = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("kind", ["LrFinding", "MonteCarlo", "Comparison"])
def test_plot_into_a_path_replaces_no_file_unless_asked_and_never_draws_through_a_link(runs, results, kind):
    result = results[kind]
    Path("mine.png").write_bytes(b"mine")
    with pytest.raises(RiskminError) as refused:
        result.plot("mine.png")
    assert str(refused.value) == "mine.png already exists; pass overwrite=True to replace it or choose another path"
    assert Path("mine.png").read_bytes() == b"mine"
    assert result.plot("mine.png", overwrite=True) == Path("mine.png") and Path("mine.png").read_bytes()[:8] == PNG
    Path("victim.png").write_bytes(b"victim")
    Path("link.svg").symlink_to(Path("victim.png").resolve())
    assert result.plot("link.svg", overwrite=True) == Path("link.svg")
    assert Path("victim.png").read_bytes() == b"victim" and not Path("link.svg").is_symlink()
    assert b"<svg" in Path("link.svg").read_bytes()[:400]
    assert not [p.name for p in Path(".").iterdir() if p.name.startswith(".")]  # no scratch file left


@pytest.mark.parametrize("kind", ["LrFinding", "MonteCarlo", "Comparison"])
def test_plot_into_a_path_refuses_what_the_command_line_refuses(runs, results, kind):
    Path("to_b").symlink_to(runs / "b")
    before = tree(runs.parent)
    for path, message in (
            ("runs/a/curves.png", "path runs/a/curves.png is inside the run directory runs/a; write the picture elsewhere"),
            ("to_b/new.png", "path to_b/new.png is inside the run directory to_b; write the picture elsewhere"),
            ("nowhere/p.png", "path nowhere/p.png: the folder nowhere does not exist; create it or choose another path"),
            ("runs", "path runs does not end in a picture format; name it .png, .svg or .pdf"),
            ("table.csv", "path table.csv does not end in a picture format; name it .png, .svg or .pdf")):
        with pytest.raises(RiskminError) as refused:
            results[kind].plot(path, overwrite=True)
        assert str(refused.value).startswith(message)
    assert tree(runs.parent) == before


@pytest.mark.parametrize("kind", ["MonteCarlo", "Comparison", "Run"])
def test_save_replaces_an_experiment_only_when_asked_and_only_with_a_whole_one(tmp_path, results, kind):
    result = results[kind]
    folder = tmp_path / "exp"
    assert result.save(folder) == folder and (folder / "summary.json").is_file()
    (folder / "summary.json").write_text("{}")  # told apart from what the next save writes
    before = tree(folder)
    with pytest.raises(RiskminError) as refused:
        result.save(folder)
    assert str(refused.value) == f"directory {folder} already exists; pass overwrite=True to replace it, or choose another directory"
    assert tree(folder) == before
    assert result.save(folder, overwrite=True) == folder
    assert json.loads((folder / "summary.json").read_text()) != {} and sorted(os.listdir(tmp_path)) == ["exp"]
    (tmp_path / "made").mkdir()  # an empty folder of one's own is written into
    assert (result.save(tmp_path / "made") / "summary.json").is_file()


@pytest.mark.parametrize("kind", ["MonteCarlo", "Comparison", "Run"])
def test_save_never_writes_through_a_link_into_a_run_or_over_a_folder_not_riskmins(runs, results, kind):
    result = results[kind]
    Path("elsewhere").mkdir()
    Path("linked").symlink_to(Path("elsewhere").resolve())
    Path("notes").mkdir()
    Path("notes/thesis.tex").write_text("years of work")
    before = tree(runs.parent)
    for directory, message in (
            ("linked", "linked is a symbolic link; riskmin never writes through a link nor replaces one: give the folder it "
                       "points to, or choose another directory"),
            ("runs/a/inner", "runs/a/inner would be inside the run directory runs/a; choose another directory"),
            ("notes", "notes exists and is not a riskmin run; overwrite=True replaces only riskmin's runs and experiments: "
                      "remove it or choose another directory")):
        with pytest.raises(RiskminError) as refused:
            result.save(directory, overwrite=True)
        assert str(refused.value) == message
    assert tree(runs.parent) == before


# F. Evaluation and the cases still open from the pass before: one sentence, said alone, with nothing written

def test_evaluate_of_a_file_without_rows_speaks_of_evaluation(runs, capsys):
    Path("empty.csv").write_text("x,y\n")
    Path("one.csv").write_text("x,y\n1,2\n")
    capsys.readouterr()
    assert main(["evaluate", "runs/a", "empty.csv"]) == 2
    assert error_line(capsys) == "error: empty.csv has no rows to evaluate; give at least 2 rows under its header"
    assert main(["evaluate", "runs/a", "one.csv"]) == 2
    assert error_line(capsys) == "error: one.csv has only 1 row to evaluate; give at least 2 rows under its header"
    with pytest.raises(RiskminError, match="^the data has only 1 row to evaluate; give at least 2 rows$"):
        riskmin.evaluate(riskmin.Run.load("runs/a"), (torch.ones(1, 1), torch.ones(1, 1)))


def write_table(path: str, header: list, rows: int = 40, cells=None) -> None:
    """A CSV of `rows` rows under `header` (written as a CSV writer quotes it), numbers unless `cells(i)` says."""
    import csv

    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        for i in range(rows):
            writer.writerow(cells(i) if cells else [(i * (7 + j)) % 11 / 3 for j in range(len(header))])


def test_columns_with_commas_or_edge_spaces_are_chosen_in_double_quotes(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_table("odd.csv", ["rooms, total", " id ", "y"])
    assert main(["train", "odd.csv", "--target", "y", "--features", '"rooms, total"," id "', *QUICK, "--name", "q"]) == 0
    assert json.loads(Path("runs/q/preprocessing.json").read_text())["features"] == ["rooms, total", " id "]
    capsys.readouterr()
    assert main(["train", "odd.csv", "--target", "y", "--features", "id", *QUICK]) == 2
    assert error_line(capsys) == ('error: feature column id does not exist in odd.csv; its column " id " has spaces at its '
                                  'edges: name it in double quotes, " id "')
    assert main(["train", "odd.csv", "--target", "y", "--features", "rooms total", *QUICK]) == 2
    assert error_line(capsys) == 'error: feature column rooms total does not exist in odd.csv; did you mean "rooms, total"?'
    write_table("new.csv", ["rooms, total", " id ", "y"], rows=3)
    assert main(["predict", "runs/q", "new.csv", "--out", "p.csv", "--keep", '" id "']) == 0
    assert Path("p.csv").read_text().splitlines()[0] == " id ,predicted_y"


def test_a_dataframe_target_named_with_a_comma_is_read_as_one_name():
    pandas = pytest.importorskip("pandas")
    x = pandas.DataFrame({"size": [float(i % 7) for i in range(40)], " age ": [float(i % 5) for i in range(40)]})
    y = pandas.Series([float(i % 3) / 2 for i in range(40)], name="price, total")
    with pytest.warns(riskmin.RiskminNote):
        run = riskmin.fit("linear", (x, y), epochs=1, progress=False)
        assert run.data_names["targets"] == ["price, total"]
        run = riskmin.fit("linear", x.assign(**{"price, total": y}), target='"price, total"', features='" age "', epochs=1,
                          progress=False)
    assert run.data_names["features"] == [" age "]


def test_a_folder_given_as_the_data_file_is_called_a_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("data.csv").mkdir()
    assert main(["train", "data.csv", "--target", "y", *QUICK]) == 2
    assert error_line(capsys) == "error: data file data.csv is a folder; give a .csv, .parquet or .npz file"
    assert sorted(os.listdir(tmp_path)) == ["data.csv"]


def test_complex_numbers_are_refused_not_cut_to_their_real_part(tmp_path, capsys, monkeypatch):
    import numpy as np

    monkeypatch.chdir(tmp_path)
    np.savez("waves.npz", x=np.ones((20, 2)) * (1 + 2j), y=np.ones(20))
    assert main(["train", "waves.npz", *QUICK]) == 2
    assert error_line(capsys) == ("error: waves.npz: x holds complex numbers (complex128), and riskmin trains on real ones; save "
                                  "the real and imaginary parts as columns of their own, x.real and x.imag")
    assert sorted(os.listdir(tmp_path)) == ["waves.npz"]
    for x, y, what in ((torch.ones(20, 2, dtype=torch.complex64), torch.ones(20, 1), "x"),
                       (np.ones((20, 2)), np.ones(20) * 1j, "y")):
        with pytest.raises(RiskminError, match=f"^{what} holds complex numbers"):
            riskmin.fit("linear", (x, y), epochs=1, progress=False)


def test_predict_on_a_run_that_has_not_finished_says_so(cut, capsys):
    from riskmin._files import RunLock

    Path(cut.parent.parent / "new.csv").write_text("".join(f"x{i}," for i in range(10)).rstrip(",") + "\n" + "0," * 9 + "0\n")
    capsys.readouterr()
    assert main(["predict", str(cut), str(cut.parent.parent / "new.csv"), "--out", str(cut.parent.parent / "p.csv")]) == 2
    assert error_line(capsys) == (f"error: run {cut} has not finished: its training stopped before the end; finish it with "
                                  f"riskmin train --resume {cut}, then use it")
    # as two processes (--nproc 2) write its checkpoint: --resume alone would be refused, so both commands name them
    manifest = sorted((cut / "checkpoint").glob("*.manifest.json"))[-1]
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "processes": 2}))
    for command in (["predict", str(cut), str(cut.parent.parent / "new.csv"), "--out", str(cut.parent.parent / "p.csv")],
                    ["export", str(cut), "--format", "torchscript", "--out", str(cut.parent.parent / "m.pt")]):
        assert main(command) == 2
        assert error_line(capsys) == (f"error: run {cut} has not finished: its training stopped before the end; finish it "
                                      f"with riskmin train --resume {cut} --nproc 2, then use it")
    with RunLock(cut):  # as a process training it holds it
        assert main(["evaluate", str(cut), str(cut.parent.parent / "new.csv")]) == 2
        assert error_line(capsys) == f"error: run {cut} is still training (riskmin process {os.getpid()} writes it); use it once it has finished"


def test_a_column_empty_in_every_row_is_named(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_table("holes.csv", ["a", "b", "y"], cells=lambda i: [i % 5, "", i % 3 / 2])
    for missing in ("mean", "drop", "error"):  # each said to give another --missing, which failed in turn
        assert main(["train", "holes.csv", "--target", "y", "--missing", missing, *QUICK]) == 2
        assert error_line(capsys) == ("error: column b of holes.csv is empty in every row, so it holds nothing to learn "
                                      "from; leave it out of the features (--features names the columns to use)")
    assert sorted(os.listdir(tmp_path)) == ["holes.csv"]


def test_a_run_far_worse_than_the_mean_is_warned_about_without_the_progress_display(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "line", *QUICK, "--optimizer", "adam", "--lr", "1e6"]) == 0
    warned = [line for line in unwrapped(capsys.readouterr().err).splitlines() if line.startswith("warning: ")]
    assert len(warned) == 1 and warned[0].startswith("warning: the final val r2 is ") and "lower --lr" in warned[0]


def test_a_constant_class_target_is_one_sentence_that_agrees_with_itself(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_table("same.csv", ["a", "y"], cells=lambda i: [i, 3])
    capsys.readouterr()
    assert main(["train", "same.csv", "--target", "y", *QUICK]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ("error: target column y of same.csv holds one class, 3, in every row; "
                                                   "classification needs rows of at least two classes\n")
    assert sorted(os.listdir(tmp_path)) == ["same.csv"]


@pytest.mark.parametrize("command, flags", [
    (["train"], ["--batch-size", "500"]),
    (["train"], ["--monitor", "val_accuracy"]),
    (["montecarlo"], ["--runs", "2", "--monitor", "val_accuracy"]),
    (["compare"], ["--runs", "2", "--lr", "0.1,0.01", "--monitor", "val_accuracy"]),
    (["lr-find"], ["--batch-size", "500"]),
])
def test_a_mistake_found_after_the_data_is_read_is_the_only_line_and_leaves_no_folder(tmp_path, capsys, monkeypatch, command,
                                                                                       flags):
    monkeypatch.chdir(tmp_path)
    write_table("rows.csv", ["id", "x", "y"], cells=lambda i: [i, i % 7, i % 5 / 4])  # reading it notes the id column left out
    capsys.readouterr()
    assert main([*command, "rows.csv", "--target", "y", "--model", "linear", "--epochs", "1", "--progress", "off", *flags]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.splitlines()) == 1 and captured.err.startswith("error: "), captured
    assert sorted(os.listdir(tmp_path)) == ["rows.csv"]


def test_a_run_of_a_file_resumes_from_any_folder_and_from_python(tmp_path, monkeypatch, signal_at):
    """config.toml records the data file by its absolute path, so that --resume finds it from another folder than the
    one it was named from; a resume checks the data's rows and values, not the name it was given by."""
    import numpy as np

    (tmp_path / "work" / "data").mkdir(parents=True)
    x = np.random.default_rng(0).normal(size=(500, 2)).astype(np.float32)
    np.savez(tmp_path / "work" / "data" / "pairs.npz", x=x, y=x.sum(1, keepdims=True))
    monkeypatch.chdir(tmp_path / "work")
    for name in ("cli", "python"):
        assert main(["train", "data/pairs.npz", *QUICK, "--out", "runs", "--name", name, "--checkpoint-every", "1",
                     *signal_at(15, "SIGINT")]) == 130
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--resume", "work/runs/cli"]) == 0
    resumed = riskmin.fit("linear", "work/data/pairs.npz", directory="work/runs/python", resume=True, epochs=2,
                          progress=False)
    done = json.loads((tmp_path / "work" / "runs" / "cli" / "summary.json").read_text())
    assert done["epochs_run"] == 2 and resumed.summary["test_loss"] == done["test_loss"]  # both went on to the same end


def test_an_interrupted_replacement_never_resumes_over_a_run_written_after_it(tmp_path, monkeypatch, capsys, signal_at):
    monkeypatch.chdir(tmp_path)
    quick = [*QUICK, "--checkpoint-every", "1"]
    assert main(["train", "lab1", *quick, "--name", "w"]) == 0
    assert main(["train", "lab1", *quick, "--name", "w", "--overwrite", "--lr", "0.02", *signal_at(15, "SIGINT")]) == 130
    (attempt,) = Path("runs").glob(".w.new-*")
    capsys.readouterr()
    assert main(["train", "lab1", *quick, "--name", "w", "--overwrite", "--lr", "0.03"]) == 0  # the newer run
    assert f"note: {attempt} holds an earlier, interrupted attempt to replace w;" in unwrapped(capsys.readouterr().err)
    newer = tree(Path("runs/w"))
    settings = attempt / "config.toml"  # edited since, as --resume's message on epochs invites: not a new beginning
    settings.write_text(settings.read_text().replace("epochs = 2", "epochs = 3"))
    assert main(["train", "--resume", str(attempt)]) == 2
    assert error_line(capsys).startswith(f"error: runs/w was written after {attempt} began to replace it, and resuming "
                                         "would replace that newer result;")
    assert tree(Path("runs/w")) == newer and attempt.is_dir()
    attempt.rename("runs/w-resumed")  # as the message says: under a name of its own it resumes as any run
    assert main(["train", "--resume", "runs/w-resumed"]) == 0 and tree(Path("runs/w")) == newer


def test_an_experiment_is_written_before_it_prints_so_a_closed_output_leaves_its_files(tmp_path):
    import subprocess

    command = [sys.executable, "-m", "riskmin", "montecarlo", "line", "--model", "linear", "--runs", "2", "--epochs", "1",
               "--out", str(tmp_path), "--name", "m"]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    child.stdout.close()  # as `| head -0` would: the first line printed finds no reader
    err = child.stderr.read().decode()
    assert child.wait() == 0 and "Traceback" not in err and "BrokenPipe" not in err  # done, though no one read it
    assert json.loads((tmp_path / "m" / "summary.json").read_text())["runs"] == 2


def test_ctrl_c_while_an_experiment_prints_says_where_it_was_written(tmp_path, monkeypatch, capsys):
    from riskmin._runs import _report

    def interrupted(summary, console):
        raise KeyboardInterrupt

    monkeypatch.setattr(_report, "montecarlo_table", interrupted)
    with pytest.raises(SystemExit) as stopped:
        main(["montecarlo", "line", "--model", "linear", "--runs", "2", "--epochs", "1", "--progress", "off", "--out",
              str(tmp_path), "--name", "m"])
    assert stopped.value.code == 130 and (tmp_path / "m" / "summary.json").is_file()
    assert unwrapped(capsys.readouterr().err).strip().endswith(f"interrupted while printing; runs written to {tmp_path / 'm'}")


def test_an_interrupted_experiment_replacement_never_resumes_over_one_written_after_it(tmp_path, monkeypatch, capsys):
    from riskmin._experiments import _montecarlo

    monkeypatch.chdir(tmp_path)
    args = ["montecarlo", "line", "--model", "linear", "--runs", "4", "--epochs", "1", "--engine", "sequential",
            "--progress", "off", "--name", "mc"]
    assert main(args) == 0
    calls = iter(range(100))
    fit = _montecarlo.fit_alone

    def interrupted_at_the_second_run(*given, **named):
        if next(calls) == 1:
            raise KeyboardInterrupt
        return fit(*given, **named)

    with monkeypatch.context() as patched:
        patched.setattr(_montecarlo, "fit_alone", interrupted_at_the_second_run)
        with pytest.raises(SystemExit):
            main([*args, "--overwrite", "--lr", "0.02"])
    (attempt,) = Path("runs").glob(".mc.new-*")
    assert main([*args, "--overwrite", "--lr", "0.03"]) == 0  # the newer experiment
    newer = tree(Path("runs/mc"))
    capsys.readouterr()
    assert main(["montecarlo", "--resume", str(attempt)]) == 2
    assert error_line(capsys).startswith(f"error: runs/mc was written after {attempt} began to replace it")
    assert tree(Path("runs/mc")) == newer


def test_a_resumed_run_says_where_it_takes_up(runs, capsys, signal_at):
    flags = ["lab1", "--model", "linear", "--epochs", "3", "--name", "r"]
    assert main(["train", *flags, *signal_at(30, "SIGINT")]) == 130  # 25 steps an epoch: 5 steps into the second
    assert "interrupted in epoch 2 after step 30" in capsys.readouterr().err
    assert main(["train", "--resume", str(runs / "r")]) == 0
    lines = capsys.readouterr().err.splitlines()
    assert lines[3] == "resume from step 30, in epoch 2 of 3"  # after data, model and train
    assert [line.split()[0] for line in lines[5:]] == ["2", "3"]  # then the epochs left


def test_fit_writes_no_run_into_a_folder_not_riskmins_overwrite_or_not(tmp_path):
    Path(tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "thesis.tex").write_text("years of work")
    before = tree(tmp_path)
    for overwrite in (False, True):
        with pytest.raises(RiskminError, match=r"^directory .*notes exists and is not a riskmin run \(it holds thesis.tex\); "
                                               "a run is written into a new or empty folder, or over a riskmin run with "
                                               "overwrite=True: choose another directory$"):
            riskmin.fit("linear", "line", epochs=1, progress=False, directory=tmp_path / "notes", overwrite=overwrite)
    assert tree(tmp_path) == before


class RaiseOnce:
    """A callback that raises `error` from `event` once the run is past step 30."""

    def __init__(self, event: str, error: type):
        self.raised = False

        def hook(state):
            if state.step >= 30 and not self.raised:
                self.raised = True
                raise error("from a callback")

        setattr(self, event, hook)


@pytest.mark.parametrize("event", ["on_step_end", "on_batch_end", "on_validation_end", "on_epoch_end"])
def test_a_keyboard_interrupt_a_callback_raises_stops_as_ctrl_c_does_and_resumes_exactly(tmp_path, event):
    settings = dict(hidden=(8,), dropout=0.1, batch_size=16, epochs=3, progress=False)
    whole = riskmin.fit("mlp", "lab1", directory=tmp_path / "whole", **settings)
    with pytest.raises(TrainingInterrupted, match="; the checkpoint is saved; continue with: riskmin.fit"):
        riskmin.fit("mlp", "lab1", directory=tmp_path / "stopped", callbacks=[RaiseOnce(event, KeyboardInterrupt)],
                    **settings)
    resumed = riskmin.fit("mlp", "lab1", directory=tmp_path / "stopped", resume=True, **settings)
    for name in ("model.safetensors", "preprocessing.json"):
        assert (tmp_path / "stopped" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes()
    assert [{k: v for k, v in row.items() if k != "seconds"} for row in resumed.history] == [
        {k: v for k, v in row.items() if k != "seconds"} for row in whole.history]


def test_a_fit_that_fails_with_nothing_to_resume_leaves_nothing_behind(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "logged").mkdir()  # a folder of the user's TensorBoard events, which a run may share
    (tmp_path / "logged" / "events.out.tfevents.1700000000.host.1.0").write_bytes(b"theirs")
    before = tree(tmp_path)
    for folder in (tmp_path / "new" / "run", tmp_path / "empty", tmp_path / "logged"):
        with pytest.raises(ValueError, match="^from a callback$"):
            riskmin.fit("linear", "lab1", epochs=3, progress=False, directory=folder,
                        callbacks=[RaiseOnce("on_step_end", ValueError)])
    assert tree(tmp_path) == before  # the folders made for it went, those that were there are as they were

    class NotesThenFails:  # a file the run did not write, put in its folder while it trains, stays
        def on_step_end(self, state):
            (tmp_path / "empty" / "notes.txt").write_text("mine")
            raise ValueError("from a callback")

    with pytest.raises(ValueError):
        riskmin.fit("linear", "lab1", epochs=1, progress=False, directory=tmp_path / "empty", callbacks=[NotesThenFails()])
    assert sorted(p.name for p in (tmp_path / "empty").iterdir()) == ["notes.txt"]
    (tmp_path / "empty" / "notes.txt").unlink()
    run = riskmin.fit("linear", "lab1", epochs=1, progress=False, directory=tmp_path / "empty")  # taken as new
    assert riskmin.Run.load(tmp_path / "empty").summary["epochs_run"] == run.summary["epochs_run"] == 1


def test_a_train_command_that_fails_with_nothing_to_resume_leaves_what_was_there_as_it_was(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("fails.py").write_text("class Fails:\n    def on_step_end(self, state):\n"
                                "        raise ValueError('from a callback')\n")
    Path("runs/left").mkdir(parents=True)  # left empty by a command stopped before its run began
    before = tree(tmp_path)
    for name in ("left", "new"):
        with pytest.raises(ValueError, match="^from a callback$"):
            main(["train", "line", *QUICK, "--name", name, "--callback", "fails.py:Fails"])
    assert tree(tmp_path) == before  # the empty folder stays empty, and no runs/new


def test_fit_into_a_stopped_run_asks_for_resume_or_overwrite_and_overwrite_leaves_none_of_its_checkpoints(tmp_path):
    folder = tmp_path / "stopped"
    with pytest.raises(KeyboardInterrupt):
        riskmin.fit("linear", "lab1", epochs=3, progress=False, directory=folder, callbacks=[SignalAt(30, "SIGINT")])
    old = sorted((folder / "checkpoint").glob("step-*"))
    assert old
    with pytest.raises(RiskminError, match="holds a run that stopped before it finished; pass resume=True to continue it, "
                                           "or overwrite=True to train it again from the start$"):
        riskmin.fit("linear", "lab1", epochs=3, progress=False, directory=folder)
    assert sorted((folder / "checkpoint").glob("step-*")) == old
    (folder / "notes.txt").write_text("mine")
    run = riskmin.fit("linear", "lab1", epochs=1, progress=False, directory=folder, overwrite=True, checkpoint_every=0)
    assert not any(path.exists() for path in old) and (folder / "notes.txt").read_text() == "mine"
    assert riskmin.Run.load(folder).summary["epochs_run"] == run.summary["epochs_run"] == 1


def test_fit_refuses_an_experiments_folder_and_one_another_process_writes(tmp_path):
    import subprocess

    riskmin.montecarlo("linear", "line", runs=2, epochs=1, progress=False, directory=tmp_path / "mc")
    with pytest.raises(RiskminError, match="holds an experiment, not a run; give fit a directory of its own$"):
        riskmin.fit("linear", "line", epochs=1, progress=False, directory=tmp_path / "mc", overwrite=True)
    (tmp_path / "busy").mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from riskmin._files import RunLock\n"
         f"with RunLock(__import__('pathlib').Path({str(tmp_path / 'busy')!r})):\n    print('held', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    try:
        assert holder.stdout.readline() == "held\n"  # the other process has the lock: waited for, not slept on
        with pytest.raises(RiskminError, match=f"is being written by riskmin process {holder.pid}; wait for it"):
            riskmin.fit("linear", "line", epochs=1, progress=False, directory=tmp_path / "busy")
    finally:
        holder.communicate("")
    assert not (tmp_path / "busy" / "summary.json").exists()


def test_a_fit_holds_its_folder_so_a_second_fit_there_is_refused_and_removes_nothing(tmp_path, monkeypatch):
    import subprocess

    folder = tmp_path / "new" / "r"
    script = ("import sys, riskmin\n"
              "class Held:\n"
              "    def on_epoch_end(self, state):\n"
              "        if state.epoch == 1:\n"
              "            print('training', flush=True); sys.stdin.read()\n"
              f"riskmin.fit('linear', 'line', epochs=2, progress=False, directory={str(folder)!r}, callbacks=[Held()])\n")
    holder = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    try:
        assert holder.stdout.readline() == "training\n"  # the first fit is in its first epoch: waited for, not slept on
        written = sorted(path.name for path in folder.iterdir())
        with pytest.raises(RiskminError, match=f"^directory {folder} is being written by a fit in riskmin process "
                                               f"{holder.pid}; wait"):
            riskmin.fit("linear", "line", epochs=1, progress=False, directory=folder)
        # a second fit whose checks passed before the first began (both found no folder): the lock refuses it, and what
        # it would remove of a folder it took for its own is the first fit's
        monkeypatch.setattr(riskmin._training._loop, "check_run_folder", lambda *args: None)
        monkeypatch.setattr(riskmin._runs._rundir, "first_missing", lambda path: folder.parent)
        with pytest.raises(RiskminError, match=f"^run directory {folder} is being written by a fit in riskmin process "
                                               f"{holder.pid}; wait for it to finish or choose another directory$"):
            riskmin.fit("linear", "line", epochs=1, progress=False, directory=folder)
        assert sorted(path.name for path in folder.iterdir()) == written
    finally:
        holder.communicate("")
    assert holder.returncode == 0
    assert riskmin.Run.load(folder).summary["epochs_run"] == 2 and not (folder / ".lock").exists()


def test_a_folder_a_killed_fit_left_before_its_first_checkpoint_is_taken_by_the_next_fit(tmp_path):
    class Killed:  # what a fit killed outright (SIGKILL, power loss) leaves: its log begun, no checkpoint
        def on_epoch_end(self, state):
            shutil.copytree(tmp_path / "r", tmp_path / "left")

    riskmin.fit("linear", "lab1", epochs=1, progress=False, directory=tmp_path / "r", checkpoint_every=0,
                callbacks=[Killed()])
    assert sorted(p.name for p in (tmp_path / "left").iterdir()) == [".lock", "metrics.csv"]  # a lock no one holds
    assert riskmin.fit("linear", "lab1", epochs=1, progress=False, directory=tmp_path / "left").summary["epochs_run"] == 1


def test_a_python_overwrite_of_a_stopped_command_line_run_keeps_it_until_the_new_run_succeeds(runs, capsys, signal_at):
    assert main(["train", "lab1", "--model", "linear", "--epochs", "3", "--lr", "0.3", "--optimizer", "sgd", "--name", "r",
                 *signal_at(30, "SIGINT")]) == 130
    before = tree(runs / "r")
    with pytest.raises(KeyboardInterrupt) as stop:
        riskmin.fit("linear", "lab1", epochs=3, progress=False, directory=runs / "r", overwrite=True,
                    callbacks=[SignalAt(40, "SIGINT")])
    [building] = [path for path in runs.iterdir() if path.name.startswith(".r.new-")]
    assert tree(runs / "r") == before  # the command line's run, resumable as it was
    assert str(stop.value).endswith(f"{runs / 'r'} is as it was; the new run is in {building}: continue it with: "
                                    f"riskmin.fit(model, data, ..., directory={str(building)!r}, resume=True) (it "
                                    f"takes the place of {runs / 'r'} once it succeeds), or discard it with: rm -r {building}")
    run = riskmin.fit("linear", "lab1", epochs=3, progress=False, directory=building, resume=True)
    assert not [path for path in runs.iterdir() if path.name.startswith(".")]  # renamed into place, the old one gone
    assert riskmin.Run.load(runs / "r").config.optimizer == run.config.optimizer == "adam"
    old = [name for name in before if name.startswith("checkpoint/")]
    assert old and not any((runs / "r" / name).exists() for name in old)  # none of the command line's checkpoints


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_a_run_whose_only_checkpoint_lacks_its_manifest_starts_again_on_resume(runs, capsys, signal_at, overwrite):
    assert main(["train", "lab1", *QUICK, "--name", "half", *overwrite, *signal_at(30, "SIGTERM")]) == 130
    for manifest in (runs / "half" / "checkpoint").glob("*.manifest.json"):
        manifest.unlink()  # killed between a checkpoint's data and its manifest
    capsys.readouterr()
    assert main(["train", "--resume", str(runs / "half")]) == 0
    assert (runs / "half" / "summary.json").is_file()


@pytest.mark.parametrize("name, text", [("config.toml", "my notes"), ("metrics.csv", "epoch,accuracy\n1,0.5\n")])
def test_a_folder_whose_only_file_has_a_runs_name_but_not_its_content_is_never_written(tmp_path, name, text):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / name).write_text(text)
    run = riskmin.fit("linear", "line", epochs=1, progress=False)
    for attempt in (lambda: riskmin.fit("linear", "line", epochs=1, progress=False, directory=folder, overwrite=True),
                    lambda: run.save(folder, overwrite=True)):
        with pytest.raises(RiskminError, match="is not a riskmin run"):
            attempt()
    assert sorted(p.name for p in folder.iterdir()) == [name] and (folder / name).read_text() == text


def test_fit_into_the_settings_of_a_command_line_run_stopped_before_its_first_checkpoint_asks_first(tmp_path):
    folder = tmp_path / "begun"
    folder.mkdir()
    (folder / "config.toml").write_text(riskmin.Config(epochs=3).to_toml())  # as riskmin train writes it first
    with pytest.raises(RiskminError, match="holds a run that stopped before it finished; pass resume=True"):
        riskmin.fit("linear", "line", epochs=1, progress=False, directory=folder)
    run = riskmin.fit("linear", "line", epochs=1, progress=False, directory=folder, overwrite=True)
    assert riskmin.Run.load(folder).config.epochs == run.config.epochs == 1


def test_a_file_given_as_the_directory_is_one_sentence(tmp_path):
    (tmp_path / "afile").write_text("x")
    for overwrite in (False, True):
        with pytest.raises(RiskminError, match="afile is a file, not a folder; choose another directory$"):
            riskmin.fit("linear", "line", epochs=1, progress=False, directory=tmp_path / "afile", overwrite=overwrite)
    assert (tmp_path / "afile").read_text() == "x"


def test_fit_into_a_symbolic_link_is_refused_before_training(tmp_path):
    """A link to an empty folder was written through; to a run, with overwrite=True, trained whole and then failed,
    saying the link had appeared meanwhile; a dangling one was called a file."""
    finished, empty = tmp_path / "finished", tmp_path / "empty"
    riskmin.fit("linear", "line", epochs=1, progress=False, directory=finished)
    empty.mkdir()
    for name, points_to in (("to_run", finished), ("to_empty", empty), ("dangling", tmp_path / "nothing")):
        (tmp_path / name).symlink_to(points_to)
        for overwrite in (False, True):
            with pytest.raises(RiskminError) as refused:
                riskmin.fit("linear", "line", epochs=1, progress=False, directory=tmp_path / name, overwrite=overwrite)
            assert str(refused.value) == (f"{tmp_path / name} is a symbolic link; riskmin never writes through a link "
                                          "nor replaces one: give the folder it points to, or choose another directory")
    assert list(empty.iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == [
        "dangling", "empty", "finished", "to_empty", "to_run"]


def test_an_experiment_into_a_folder_of_ones_own_or_a_link_says_what_it_is(tmp_path):
    """It said "holds a finished result; pass overwrite=True", which was then refused for the reason given here."""
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "f").write_text("a")
    (tmp_path / "dangling").symlink_to(tmp_path / "nothing")
    said = {"mine": "exists and is not a riskmin run; overwrite=True replaces only riskmin's runs and experiments: "
                    "remove it or choose another directory",
            "dangling": "is a symbolic link; riskmin never writes through a link nor replaces one: give the folder it "
                        "points to, or choose another directory"}
    before = tree(tmp_path)
    for name, message in said.items():
        for experiment in (lambda d: riskmin.montecarlo("linear", "line", runs=2, epochs=1, progress=False, directory=d),
                           lambda d: riskmin.compare({"a": {"lr": 0.1}, "b": {"lr": 0.01}}, "line", runs=2, epochs=1,
                                                     model="linear", progress=False, directory=d)):
            with pytest.raises(RiskminError) as refused:
                experiment(tmp_path / name)
            assert str(refused.value) == f"{tmp_path / name} {message}"
    assert tree(tmp_path) == before


def test_a_python_overwrite_that_fails_diverges_or_stops_leaves_the_old_run_whole(tmp_path):
    class Fails:
        def on_epoch_end(self, state):
            raise RuntimeError("a callback's bug")

    folder = tmp_path / "r"
    riskmin.fit("linear", "lab1", epochs=2, progress=False, directory=folder)
    before = tree(folder)
    with pytest.raises(RuntimeError, match="a callback's bug"):
        riskmin.fit("linear", "lab1", epochs=2, progress=False, directory=folder, overwrite=True, checkpoint_every=0,
                    callbacks=[Fails()])
    assert tree(folder) == before and sorted(tmp_path.iterdir()) == [folder]  # nothing worth keeping was left beside
    with pytest.warns(RiskminNote, match=r"the run diverged, so it does not replace the run; .*r is as it was; "
                                         r"the new run is in .*\.r\.new-[0-9a-f]{8}: discard it with: rm -r "):
        diverged = riskmin.fit("linear", "lab1", epochs=2, progress=False, directory=folder, overwrite=True,
                               optimizer="sgd", lr=1e12)
    [beside] = [path for path in tmp_path.iterdir() if path != folder]
    assert diverged.summary["diverged"] and json.loads((beside / "summary.json").read_text())["diverged"]
    assert tree(folder) == before
    shutil.rmtree(beside)
    with pytest.raises(KeyboardInterrupt):
        riskmin.fit("linear", "lab1", epochs=3, progress=False, directory=folder, overwrite=True,
                    callbacks=[SignalAt(30, "SIGINT")])
    [stopped] = [path for path in tmp_path.iterdir() if path != folder]
    assert tree(folder) == before
    with pytest.raises(RiskminError, match=f"holds a finished run, with nothing to resume; the run that was to replace "
                                           f"it stopped in {re.escape(str(stopped))}: resume it there, directory="):
        riskmin.fit("linear", "lab1", epochs=3, progress=False, directory=folder, resume=True)
    riskmin.fit("linear", "lab1", epochs=3, progress=False, directory=stopped, resume=True)
    assert riskmin.Run.load(folder).summary["epochs_run"] == 3 and sorted(tmp_path.iterdir()) == [folder]


def test_a_python_overwrite_of_the_current_folder_is_refused_before_it_trains(tmp_path, monkeypatch):
    folder = tmp_path / "run"
    riskmin.fit("linear", "line", epochs=1, progress=False, directory=folder)
    before = tree(tmp_path)
    monkeypatch.chdir(folder)
    for given in (".", "../run", str(folder)):
        with pytest.raises(RiskminError, match=f"^directory {re.escape(os.path.normpath(given))} holds the current folder, "
                                               "which overwrite=True cannot replace while it is in use; run from outside "
                                               "it, or choose another directory$"):
            riskmin.fit("linear", "line", epochs=1, progress=False, directory=given, overwrite=True)
    assert tree(tmp_path) == before
    monkeypatch.chdir(tmp_path)
    riskmin.fit("linear", "line", epochs=2, progress=False, directory="run/../run", overwrite=True)
    assert riskmin.Run.load(folder).summary["epochs_run"] == 2 and sorted(tmp_path.iterdir()) == [folder]


def test_an_experiment_that_would_replace_the_current_folder_is_refused_in_pythons_words(tmp_path, monkeypatch):
    riskmin.montecarlo("linear", "line", runs=2, epochs=1, progress=False, directory=tmp_path / "mc")
    before = tree(tmp_path)
    monkeypatch.chdir(tmp_path / "mc")
    sentence = ("^directory . holds the current folder, which overwrite=True cannot replace while it is in use; run from "
                "outside it, or choose another directory$")
    for attempt in (lambda: riskmin.montecarlo("linear", "line", runs=2, epochs=1, progress=False, directory=".", overwrite=True),
                    lambda: riskmin.curve("linear", "line", sizes=(0.5, 1.0), runs=2, epochs=1, progress=False, directory=".",
                                          overwrite=True),
                    lambda: riskmin.compare({"a": {"lr": 0.1}, "b": {"lr": 0.01}}, "line", runs=2, epochs=1, progress=False,
                                            directory=".", overwrite=True)):
        with pytest.raises(RiskminError, match=sentence):
            attempt()
    assert tree(tmp_path) == before


def test_an_experiment_replaced_keeps_the_users_own_files_and_none_of_its_old_results(tmp_path, capsys):
    command = ["montecarlo", "line", "--model", "linear", "--runs", "2", "--epochs", "1", "--progress", "off", "--out",
               str(tmp_path), "--name", "m"]
    assert main(command) == 0
    (tmp_path / "m" / "notes.txt").write_text("mine")
    (tmp_path / "m" / "compare.png").write_bytes(b"an old comparison's picture, riskmin's own name")
    assert main([*command, "--overwrite"]) == 0
    assert (tmp_path / "m" / "notes.txt").read_text() == "mine"  # the user's file moves into the new result
    assert not (tmp_path / "m" / "compare.png").exists()  # a name riskmin writes in an experiment is not carried
    assert sorted(path.name for path in tmp_path.iterdir()) == ["m"]


def test_an_unnamed_overwrite_replaces_only_a_riskmin_run_and_only_with_a_success(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    mine = tmp_path / "runs" / "line-linear"
    mine.mkdir(parents=True)
    (mine / "notes.txt").write_text("mine\n")
    before = tree(tmp_path)
    capsys.readouterr()
    assert main(["train", "line", *QUICK, "--overwrite"]) == 2
    assert error_line(capsys) == ("error: runs/line-linear exists and is not a riskmin run; --overwrite replaces only "
                                  "riskmin's runs and experiments: remove it or choose another --name")
    assert tree(tmp_path) == before  # refused before anything was written
    shutil.rmtree(mine)
    assert main(["train", "line", *QUICK]) == 0
    run = tree(mine)
    assert main(["train", "line", *QUICK, "--optimizer", "sgd", "--lr", "1e12", "--overwrite"]) == 1
    (building,) = (tmp_path / "runs").glob(".line-linear.new-*")  # the new run, which diverged, beside the old one
    assert tree(mine) == run and sorted(p.name for p in (tmp_path / "runs").iterdir()) == [building.name, "line-linear"]


def test_a_replacement_never_puts_a_run_in_an_experiments_place_nor_the_other_way(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d-curve.csv").write_text("x,y\n" + "".join(f"{i},{2 * i + i % 3}\n" for i in range(40)))
    assert main(["curve", "d-curve.csv", "--target", "y", "--sizes", "0.5,1", "--runs", "2", "--epochs", "1",
                 "--progress", "off", "--name", "kept"]) == 0
    assert main(["montecarlo", "lab1", "--runs", "2", "--epochs", "1", "--progress", "off", "--name", "mc"]) == 0
    assert main(["train", "lab1", "--epochs", "1", "--progress", "off", "--name", "run"]) == 0
    before = {name: tree(tmp_path / "runs" / name) for name in ("kept", "mc", "run")}
    capsys.readouterr()
    for args, held, new in ((["train", "lab1", "--name", "kept"], "an experiment", "a run"),
                            (["montecarlo", "lab1", "--runs", "2", "--name", "run"], "a run", "an experiment"),
                            (["curve", "lab1", "--sizes", "0.5,1", "--runs", "2", "--name", "run"], "a run", "an experiment")):
        assert main([*args, "--epochs", "1", "--progress", "off", "--overwrite"]) == 2
        folder = f"runs/{args[args.index('--name') + 1]}"
        assert capsys.readouterr().err == (f"error: {folder} holds {held}, which --overwrite does not replace with {new}: "
                                           "choose another --name, or remove it\n")
    # without --overwrite, the refusal does not offer it: a run's own config.toml, whose name it holds, to montecarlo
    assert main(["montecarlo", "--config", "runs/run/config.toml", "--runs", "2", "--progress", "off"]) == 2
    assert capsys.readouterr().err == ("error: runs/run holds a run, which --overwrite does not replace with an "
                                       "experiment: choose another --name, or remove it\n")
    with pytest.raises(riskmin.RiskminError, match="^directory runs/mc holds an experiment, not a run; give fit a directory"):
        riskmin.fit("linear", "lab1", epochs=1, progress=False, directory="runs/mc", overwrite=True)
    assert {name: tree(tmp_path / "runs" / name) for name in ("kept", "mc", "run")} == before
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["kept", "mc", "run"]


def test_a_command_to_paste_holds_a_path_with_a_space_quoted_and_on_one_line(tmp_path, monkeypatch, capsys, signal_at):
    monkeypatch.chdir(tmp_path)
    name = "a run whose name is long enough that its resume command must go onto a line of its own"
    assert main(["train", "lab1", "--model", "linear", "--epochs", "3", "--progress", "off", "--name", name,
                 *signal_at(30, "SIGINT")]) == 130
    said = capsys.readouterr().err
    command = f"riskmin train --resume 'runs/{name}'"
    assert any(line.strip() == command for line in said.splitlines()), said  # whole, on its own line
    assert main(command.split(" ", 3)[1:3] + [f"runs/{name}", "--progress", "off"]) == 0  # what the shell would pass


def test_a_reader_that_stops_reading_does_not_stop_the_run(tmp_path):
    """`riskmin train ... | head -1`: the output closed after its first line, the run goes on and is written whole."""
    import subprocess

    (tmp_path / "wait.py").write_text(
        "import time\nfrom pathlib import Path\n\n\nclass WaitForTheReader:\n"
        "    def on_step_end(self, state):  # the first step waits until the test has closed the output (a minute at most)\n"
        "        for _ in range(6000 if state.step == 1 else 0):\n"
        "            if Path(__file__).with_name('closed').exists():\n"
        "                break\n"
        "            time.sleep(0.01)\n\n\ncallback = WaitForTheReader()\n")
    process = subprocess.Popen([sys.executable, "-m", "riskmin", "train", "lab1", "--model", "linear", "--epochs", "3",
                                "--callback", f"{tmp_path / 'wait.py'}:callback", "--out",
                                str(tmp_path / "runs"), "--name", "r"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})  # each line through the pipe as printed
    assert process.stdout.readline().startswith(b"data ")
    process.stdout.close()  # as head does once it has its line
    (tmp_path / "closed").touch()
    assert process.wait(timeout=120) == 0
    assert riskmin.Run.load(tmp_path / "runs" / "r").summary["epochs_run"] == 3


def test_an_output_whose_reader_is_gone_takes_every_write_and_still_reads_as_open():
    from riskmin._cli._main import Unbroken

    read, write = os.pipe()
    os.close(read)  # the reader is gone: a write to the pipe fails with EPIPE
    stream = Unbroken(open(write, "w", buffering=1))  # line-buffered, as a terminal's: each line goes out at once
    assert stream.write("lost\n") == 5 and stream.writelines(["a\n", "b\n"]) is None and stream.flush() is None
    assert not stream.closed and stream.writable() and isinstance(stream, io.TextIOBase)  # as colorama or rich ask
    stream.stream.close()


def test_sigterm_stops_an_experiment_as_ctrl_c_does_and_an_overwrite_says_the_old_one_is_as_it_was(tmp_path, capsys, monkeypatch):
    import signal

    from riskmin._experiments import _kept

    monkeypatch.chdir(tmp_path)
    experiment = ["montecarlo", "line", "--model", "linear", "--runs", "6", "--chunk", "3", "--epochs", "1", "--progress", "off",
                  "--name", "mc"]
    assert main(experiment) == 0
    before = tree(tmp_path / "runs" / "mc")
    keep = _kept.Keeper.keep

    def kept_then_terminated(self, group, rows):  # a kill once the first stack of runs is kept
        keep(self, group, rows)
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(_kept.Keeper, "keep", kept_then_terminated)
    with pytest.raises(SystemExit) as stopped:
        main([*experiment, "--overwrite"])
    assert stopped.value.code == 130 and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    building = next((tmp_path / "runs").glob(".mc.new-*")).relative_to(tmp_path)
    assert unwrapped(capsys.readouterr().err).strip() == (
        f"interrupted; 3 finished runs kept in {building}: continue it with: riskmin montecarlo --resume {building}; "
        f"runs/mc is as it was: discard the new one with: rm -r {building}")
    assert tree(tmp_path / "runs" / "mc") == before
    monkeypatch.setattr(_kept.Keeper, "keep", keep)
    assert main(["montecarlo", "--resume", str(building)]) == 0
    assert sorted(os.listdir(tmp_path / "runs")) == ["mc"]


def test_an_experiment_stopped_while_its_results_are_written_says_its_runs_are_kept_and_resumes(tmp_path, capsys, monkeypatch):
    from riskmin._runs import _rundir

    monkeypatch.chdir(tmp_path)
    write = _rundir.write_montecarlo

    def stopped(*args, **kwargs):  # Ctrl-C or SIGTERM once every run was kept, while the results are written
        raise KeyboardInterrupt

    monkeypatch.setattr(_rundir, "write_montecarlo", stopped)
    with pytest.raises(SystemExit) as stop:
        main(["montecarlo", "line", "--model", "linear", "--runs", "5", "--epochs", "1", "--progress", "off", "--name", "mc"])
    assert stop.value.code == 130
    assert unwrapped(capsys.readouterr().err).strip().splitlines()[-1] == (
        "interrupted; 5 finished runs kept in runs/mc: continue it with: riskmin montecarlo --resume runs/mc")
    monkeypatch.setattr(_rundir, "write_montecarlo", write)
    assert main(["montecarlo", "--resume", "runs/mc"]) == 0 and (tmp_path / "runs" / "mc" / "summary.json").is_file()


def test_an_interrupted_fit_without_a_directory_leaves_with_its_run_so_far_and_its_best_weights():
    class Stop:  # what Ctrl-C in a notebook does, at a chosen epoch
        def on_epoch_end(self, state):
            if state.epoch == 6:
                raise KeyboardInterrupt

    class Weights:  # the weights at each epoch's end, and at the last step taken
        def __init__(self):
            self.epochs, self.last = {}, None

        def on_step_end(self, state):
            self.last = copy.deepcopy(state.model.state_dict())

        def on_epoch_end(self, state):
            self.epochs[state.epoch] = copy.deepcopy(state.model.state_dict())

    for stop, best in ((Stop(), "epoch 6"), (SignalAt(40, "SIGINT"), "epoch 13")):
        torch.manual_seed(0)
        model, weights = torch.nn.Linear(1, 1), Weights()
        with pytest.raises(TrainingInterrupted) as stopped:
            riskmin.fit(model, "line", epochs=30, lr=0.01, optimizer="sgd", progress=False, callbacks=[weights, stop])
        run = stopped.value.run
        assert str(stopped.value).endswith(f"fit was given no directory= to save a checkpoint in, so the run so far, with "
                                           f"the weights of {best}, which the model holds too, is this exception's run")
        assert run.summary["stop_reason"] == "interrupted" and run.summary["stopped_early"]
        assert f"epoch {run.summary['best_epoch']}" == best and len(run.history) == run.summary["best_epoch"]
        assert run.model is model and "test_loss" in run.summary
        # the model holds the best epoch's weights, not those of the step it stopped after, and is measured with them
        kept = weights.epochs[run.summary["best_epoch"]]
        assert all(torch.equal(model.state_dict()[k], kept[k]) for k in kept)
        # asked at epoch 6's end, it leaves there; a signal leaves at a step's end, after the best epoch
        assert all(torch.equal(weights.last[k], kept[k]) for k in kept) == isinstance(stop, Stop)


def test_an_unnamed_train_run_again_names_the_stopped_run_it_passes_over(tmp_path, monkeypatch, capsys, signal_at):
    monkeypatch.chdir(tmp_path)
    quick = ["train", "line", "--model", "linear", "--epochs", "3", "--optimizer", "sgd", "--lr", "0.1"]
    assert main([*quick, *signal_at(4, "SIGINT")]) == 130
    assert main(quick) == 0  # a finished run between: the note names the stopped one, the last stopped it passed
    assert main(quick) == 0
    err = capsys.readouterr().err
    said = ("note: runs/line-linear holds a run that stopped before it finished; this one trains in runs/line-linear-{} "
            "(to continue that one instead: riskmin train --resume runs/line-linear)")
    assert unwrapped(err).count("stopped before it finished") == 2
    assert said.format(2) in unwrapped(err) and said.format(3) in unwrapped(err)
    assert main(["train", "--resume", "runs/line-linear"]) == 0 and (tmp_path / "runs/line-linear/summary.json").is_file()
    assert main(quick) == 0 and "stopped before" not in capsys.readouterr().err  # nothing left to continue


def test_the_stopped_run_an_unnamed_train_passes_over_is_resumed_by_as_many_processes_as_wrote_it(tmp_path, monkeypatch,
                                                                                                  capsys, signal_at):
    monkeypatch.chdir(tmp_path)
    quick = ["train", "line", "--model", "linear", "--epochs", "3", "--optimizer", "sgd", "--lr", "0.1"]
    assert main([*quick, *signal_at(4, "SIGINT")]) == 130
    [manifest] = sorted((tmp_path / "runs/line-linear/checkpoint").glob("*.manifest.json"))[-1:]
    assert json.loads(manifest.read_text())["processes"] == 1  # each checkpoint says how many processes wrote it
    # as a run of two processes (--nproc 2) writes it: a rerun in one process named --resume alone, which is refused
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "processes": 2}))
    assert main(quick) == 0
    assert ("(to continue that one instead: riskmin train --resume runs/line-linear --nproc 2)"
            in unwrapped(capsys.readouterr().err))


def test_an_interrupted_experiment_without_a_directory_stops_without_measuring_its_run():
    import signal

    calls = []

    def loss(output, target):  # sends Ctrl-C at its 20th call, in the first run's training: a point chosen in advance
        calls.append(1)
        if len(calls) == 20:
            os.kill(os.getpid(), signal.SIGINT)
        return torch.nn.functional.mse_loss(output, target)

    with pytest.raises(TrainingInterrupted) as stopped:
        riskmin.montecarlo("linear", "line", runs=3, epochs=30, loss=loss, progress=False)
    # the run is not an experiment's result: left as it stood, not measured, and no checkpoint said to be saved
    assert re.fullmatch(r"interrupted in epoch \d+ after step \d+", str(stopped.value)) and stopped.value.run is None


def test_an_interrupted_lr_find_stops_without_measuring_its_sweep():
    import signal

    calls = []

    def loss(output, target):  # Ctrl-C at its 20th call, in the sweep
        calls.append(1)
        if len(calls) == 20:
            os.kill(os.getpid(), signal.SIGINT)
        return torch.nn.functional.mse_loss(output, target)

    with pytest.raises(TrainingInterrupted) as stopped:
        riskmin.lr_find("linear", "line", loss=loss, steps=60)
    assert re.fullmatch(r"interrupted in epoch \d+ after step \d+", str(stopped.value)) and stopped.value.run is None


def test_a_signal_the_program_handles_or_ignores_is_left_to_it(tmp_path):
    import signal

    heard = []
    before = signal.signal(signal.SIGTERM, lambda number, frame: heard.append(number))  # a server's own SIGTERM
    try:
        run = riskmin.fit("linear", "line", epochs=3, progress=False, callbacks=[SignalAt(2, "SIGTERM")])
        assert heard == [signal.SIGTERM] and run.summary["epochs_run"] == 3  # its handler ran; the fit went on
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # ignored by whoever started the process: stays ignored
        run = riskmin.fit("linear", "line", epochs=3, progress=False, directory=tmp_path / "r",
                          callbacks=[SignalAt(2, "SIGTERM")])
        assert run.summary["epochs_run"] == 3
    finally:
        signal.signal(signal.SIGTERM, before)
    from riskmin._cli._main import terminated_as_interrupted
    from riskmin._training._checkpoint import Interruptible

    with terminated_as_interrupted():  # the command line's own SIGTERM is riskmin's: a sweep still stops at a step's end
        assert Interruptible(None, defaults_only=True).takes(signal.getsignal(signal.SIGTERM))


def test_two_fits_in_threads_of_one_process_are_kept_apart(tmp_path):
    import threading

    started, go, done = threading.Event(), threading.Event(), {}

    class Held:  # the first fit waits in its first epoch until the second has been refused
        def on_epoch_end(self, state):
            if state.epoch == 1:
                started.set()
                go.wait()

    folder = tmp_path / "r"
    first = threading.Thread(target=lambda: done.update(run=riskmin.fit(
        "linear", "line", epochs=2, progress=False, directory=folder, callbacks=[Held()])))
    first.start()
    try:
        assert started.wait(300)  # waited on the event; the bound only keeps a broken run from hanging
        with pytest.raises(RiskminError, match=f"^directory {folder} is being written by a fit in riskmin process "
                                               f"{os.getpid()}; wait"):
            riskmin.fit("linear", "line", epochs=1, progress=False, directory=folder)
    finally:
        go.set()
        first.join()
    assert done["run"].summary["epochs_run"] == 2 and riskmin.Run.load(folder).summary["epochs_run"] == 2
