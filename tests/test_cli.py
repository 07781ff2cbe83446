import json
import os
import subprocess
import sys
import tomllib
import warnings

import pytest
from safetensors.torch import load_file

import riskmin
from riskmin._cli._main import main
from said import unwrapped
from snapshot import tree

RUN_FILES = {"config.toml", "metrics.csv", "model.safetensors", "summary.json", "curves.png", "preprocessing.json"}


def run_cli(*args, cwd):
    """The command as a user runs it: a separate process, its exit status and both streams."""
    return subprocess.run([sys.executable, "-m", "riskmin", *args], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})


def test_main_job_writes_every_file(tmp_path):
    result = run_cli("train", "--epochs", "20", "--checkpoint-every", "5", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    run_dir = tmp_path / "runs" / "lab1-two_layer"
    assert {p.name for p in run_dir.iterdir()} == RUN_FILES | {"checkpoint"}  # the lock file goes when the run ends
    summary = json.loads((run_dir / "summary.json").read_text())
    assert {"best_epoch", "train_loss", "val_loss", "test_loss", "seconds"} <= set(summary)
    assert summary["epochs_run"] == 20
    assert (run_dir / "curves.png").read_bytes()[:4] == b"\x89PNG"
    assert "run written to runs/lab1-two_layer" in result.stdout
    header = next(line for line in result.stdout.splitlines() if "train" in line and "test" in line)
    assert header.split()[1:] == ["┃", "train", "┃", "val", "┃", "test", "┃"]  # the summary: a column per split
    r2 = next(line for line in result.stdout.splitlines() if line.split()[1:2] == ["r2"])
    assert [float(v) for v in r2.split()[3::2]] == pytest.approx([summary[f"{p}_r2"] for p in ("train", "val", "test")], rel=1e-5)
    assert f"best epoch {summary['best_epoch']} of 20, {summary['steps']} steps" in result.stdout
    lines = (run_dir / "metrics.csv").read_text().splitlines()
    assert lines[0] == "epoch,step,loss,val_loss,val_mse,val_rmse,val_mae,val_r2,lr,seconds" and len(lines) == 21
    loaded = riskmin.Run.load(run_dir)
    assert set(load_file(str(run_dir / "model.safetensors"))) == set(loaded.model.state_dict())
    assert loaded.summary["test_loss"] == pytest.approx(summary["test_loss"])
    # an unnamed second run never overwrites the first
    assert run_cli("train", "--epochs", "1", cwd=tmp_path).returncode == 0
    assert (tmp_path / "runs" / "lab1-two_layer-2").is_dir()


def test_tutorial_line_fit_reports_the_closed_form_loss(tmp_path):
    code = main(["train", "line", "--model", "linear", "--optimizer", "sgd", "--lr", "0.1", "--epochs", "1000",
                 "--batch-size", "80", "--split", "tutorial", "--restore-best", "off", "--progress", "off",
                 "--out", str(tmp_path), "--name", "line", "--test", "0"])
    assert code == 0
    summary = json.loads((tmp_path / "line" / "summary.json").read_text())
    assert summary["epochs_run"] == 1000 and summary["restored_best"] is False and summary["n_train"] == 80


def test_linear_mse_summary_carries_the_closed_form_test_loss(tmp_path, capsys):
    assert main(["train", "--model", "linear", "--optimizer", "sgd", "--lr", "0.3", "--batch-size", "0", "--epochs", "200",
                 "--progress", "off", "--out", str(tmp_path), "--name", "lin"]) == 0
    summary = json.loads((tmp_path / "lin" / "summary.json").read_text())
    assert summary["test_loss"] == pytest.approx(summary["closed_form_test_loss"], rel=1e-3)
    row = next(line for line in capsys.readouterr().out.splitlines() if "closed-form least squares" in line)
    assert float(row.split()[-2]) == pytest.approx(summary["closed_form_test_loss"], rel=1e-5)  # in the test column


def test_config_file_with_flags_overriding_it(tmp_path):
    (tmp_path / "run.toml").write_text('model = "mlp"\nhidden = [8, 8]\nepochs = 3\nlr = 0.5\n')
    assert main(["train", "--config", str(tmp_path / "run.toml"), "--lr", "0.01", "--progress", "off",
                 "--out", str(tmp_path), "--name", "fromfile"]) == 0
    saved = riskmin.Config.from_toml(tmp_path / "fromfile" / "config.toml")
    assert (saved.model, saved.hidden, saved.epochs, saved.lr) == ("mlp", (8, 8), 3, 0.01)


BAD = [
    (["train", "--lr", "0"], "lr = 0.0 is out of range; it must be greater than 0"),
    (["train", "--lr", "fast"], "lr = 'fast' is not allowed; it must be a number"),
    (["train", "--epochs", "0"], "epochs = 0 is out of range; it must be at least 1"),
    (["train", "--val", "0.6", "--test", "0.6"], "split fractions"),
    (["train", "--batch-size", "5000"], "batch_size = 5000 is larger than the training split (800 samples)"),
    (["train", "--model", "resnet"], "model = 'resnet' is not allowed; choose one of linear, two_layer, mlp"),
    (["train", "--optimiser", "sgd"], "unknown option --optimiser; did you mean --optimizer?"),
    (["train", "--bogus"], "unknown option --bogus; run `riskmin train --help` for the list"),  # no --out: not close
    (["train", "--hidden", "a,b"], "hidden = 'a,b' is not allowed; it must be comma-separated whole numbers"),
    (["train", "--restore-best", "maybe"], "restore_best = 'maybe' is not allowed; it must be on or off"),
    (["train", "nosuchdata"], "unknown data set 'nosuchdata'"),
    (["train", "--config", "missing.toml"], "config file missing.toml does not exist"),
    (["train", "--loss", "cross_entropy"], "loss cross_entropy needs integer class labels"),
    (["train", "--split", "tutorial"], "has no tutorial split"),
    (["train", "--val", "0", "--patience", "5"], "patience needs a validation split"),
    (["train", "--monitor", "val_acc", "--epochs", "1"], "monitor 'val_acc' is not a reported metric"),
    (["train", "--device", "cuda:0"], "no CUDA GPU"),
    (["trian"], "invalid choice: 'trian'"),
    (["train", "--n-samples", "1"], "n_samples = 1 is out of range; it must be at least 2"),
    (["train", "--dropout", "2"], "dropout = 2.0 is out of range; it must be less than 1"),
    (["train", "--dropout", "1", "--model", "mlp"], "dropout = 1.0 is out of range; it must be less than 1"),
    (["train", "--n-samples", "2", "--val", "0.4", "--test", "0.4"],
     "2 samples split by train=0.2, val=0.4, test=0.4 give 0 training, 1 validation, 1 test rows, which leaves no training sample"),
    (["train", "--n-samples", "3"], "give 2 training, 0 validation, 1 test rows, so the validation set asked for would be empty; "
                                    "use more data, set val to at least 0.333 for one row, or to 0 for none"),
    (["train", "--n-samples", "4", "--train", "0.5", "--val", "0.25", "--test", "0.1"],
     "give 2 training, 1 validation, 0 test rows, so the test set asked for would be empty"),
    (["train", "--momentum", "-0.5"], "momentum = -0.5 is out of range"),
    (["train", "--gamma", "0"], "gamma = 0.0 is out of range; it must be greater than 0"),
    (["train", "--noise", "-1"], "noise = -1.0 is out of range"),
    (["train", "--seed", "-3"], "seed = -3 is out of range"),
    (["train", "--epochs", "2.5"], "epochs = '2.5' is not allowed; it must be a whole number"),
    (["train", "--hidden", "0"], "hidden = 0 is not allowed; give positive integer widths"),
    (["train", "--hidden", "8,8"], "gives two_layer 2 widths; it takes one"),
    (["train", "--nesterov"], "nesterov = true needs optimizer sgd with momentum above 0"),
    (["train", "--device", "tpu"], "device = 'tpu' is not allowed"),
    (["train", "--mode", "up"], "mode = 'up' is not allowed; choose one of auto, min, max"),
    (["train", "--sampling", "all"], "sampling = 'all' is not allowed"),
    (["train", "--scheduler", "cyclic"], "scheduler = 'cyclic' is not allowed"),
    (["train", "--name", "a/b"], "name = 'a/b' is not allowed"),
    (["train", "--loss", "bce"], "loss bce needs targets that are 0 or 1"),
    (["train", "--engine", "vectorized"], "--engine is a setting of riskmin montecarlo, compare and curve, not of riskmin train"),
    (["montecarlo", "--checkpoint-every", "2"], "--checkpoint-every is a setting of riskmin train, not of riskmin montecarlo"),
    (["train", "--lr"], "expected one argument"),
    (["train", "--train", "0"], "train = 0.0 is out of range; it must be greater than 0"),
    (["montecarlo", "--runs", "0"], "runs = 0 is out of range; it must be at least 1"),
    (["montecarlo", "--split", "tutorial", "line"], "split tutorial is one fixed split"),
    (["train", "--resume", "nowhere"], "nowhere does not exist; check the path, the run directory an interrupted train kept"),
    (["montecarlo", "--resume", "nowhere"], "nowhere does not exist; check the path, the folder an interrupted montecarlo kept"),
    (["montecarlo", "--resume", "runs/lab1-two_layer"], "runs/lab1-two_layer is a finished experiment; there is nothing to resume"),
    (["montecarlo", "--resume", "done"], "done is a finished run of riskmin train; there is nothing to resume"),
    (["montecarlo", "--resume", "fitted"], "fitted is a run of riskmin train, not an experiment; resume it with riskmin train --resume fitted"),
    (["train", "--resume", "fitted"], "fitted holds the checkpoints of a run riskmin.fit trained in Python, which writes its settings"),
    (["train", "--name", "x" * 300], "the run name is too long for the file system of runs; choose a shorter --name"),
    (["predict", "runs/a", "rows.csv", "--out", "runs/a/model.safetensors"], "runs/a is not a riskmin run directory (missing metrics.csv"),
    (["predict", "runs/nosuch", "rows.csv", "--out", "p.csv"], "error: runs/nosuch does not exist; check the path"),
    (["evaluate", "runs/nosuch", "rows.csv"], "error: runs/nosuch does not exist; check the path"),
    (["export", "runs/nosuch"], "error: runs/nosuch does not exist; check the path"),
    (["train", "done", "--target", "y"], "error: data file done is a folder; give a .csv, .parquet or .npz file"),
    (["train", "notes", "--target", "y"], "error: notes is a suffix-less file; riskmin reads .csv, .parquet, .npz files"),
    (["train", "pets.csv", "--target", "kind,age"], "error: target column kind of pets.csv holds text, which regression "
     "cannot fit; several target columns are fitted as numbers side by side, so name it alone with --target to "
     "classify it"),
]


@pytest.mark.parametrize("args, message", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_is_one_clear_line_and_status_2(tmp_path, monkeypatch, capsys, args, message):
    if "cuda" in message and __import__("torch").cuda.is_available():
        pytest.skip("this machine has a GPU")
    monkeypatch.chdir(tmp_path)
    for name, content in EXISTING.items():  # what was there before the command: it must stay exactly as it was
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(content)
    before = tree(tmp_path)
    assert main([*args, "--progress", "off"] if args[0] in ("train", "montecarlo") and "--lr" not in args[-1:] else args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    assert tree(tmp_path) == before


EXISTING = {"rows.csv": b"x,y\n1,2\n", "runs/a/config.toml": b"lr = 0.1\n", "runs/a/model.safetensors": bytes(range(256)),
            "runs/lab1-two_layer/summary.json": b"{}\n", "fitted/checkpoint/step-1.safetensors": b"",
            "done/summary.json": b"{}\n", "done/model.safetensors": b"", "notes": b"x,y\n1,2\n",
            "pets.csv": b"kind,age,weight\ncat,3,4.1\ndog,5,20.3\ncat,2,3.8\n"}


@pytest.mark.parametrize("args", [["lab1", "--monitor", "val_accuracy"], ["kinds.csv", "--target", "k", "--monitor", "val_r2"],
                                  ["lab1", "--monitor", "foo"], ["lab1", "--monitor", "lr"]])  # names no row holds
def test_a_monitor_of_the_other_tasks_metric_is_the_one_line_said_before_any_line_of_the_run(tmp_path, monkeypatch,
                                                                                             capsys, args):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "kinds.csv").write_text("x,k\n" + "".join(f"{i},{'ab'[i % 3 == 0]}\n" for i in range(60)))
    # it was refused at the first validation, under the run's opening lines: data, model, train
    assert main(["train", *args, "--out", str(tmp_path / "runs")]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1
    assert err.startswith(f"error: monitor '{args[-1]}' is not a reported metric; the metrics are loss, val_")
    assert not (tmp_path / "runs").exists()


NOT_CALLBACKS = {  # what --callback was given -> what the one line says
    "logger": "--callback logger is not FILE.py:NAME or MODULE:NAME; name the object after a colon",
    "mine.py:Logger": "--callback mine.py:Logger: mine.py cannot be found",
    "no_such_module:Logger": "--callback no_such_module:Logger: no_such_module cannot be found",
    "riskmin.callbacks:Logger": "--callback riskmin.callbacks:Logger: riskmin.callbacks defines no Logger",
    "riskmin.config:Config": "--callback riskmin.config:Config: Config has none of the methods a callback has (on_fit_start, ",
    "riskmin.callbacks:SignalAt": "the class SignalAt cannot be made with no arguments",
    # a file that is there, whose own code fails as it is imported: it was called "cannot be found", or a traceback
    "needs.py:A": "--callback needs.py:A: importing needs.py raised ModuleNotFoundError: No module named 'no_such_pkg'; fix it there",
    "typo.py:A": "--callback typo.py:A: importing typo.py raised SyntaxError: invalid syntax (typo.py, line 2); fix it there",
    "raises.py:A": "--callback raises.py:A: importing raises.py raised RuntimeError: not configured; fix it there",
}


CALLBACK_FILES = {"needs.py": "import no_such_pkg\n", "typo.py": "class A:\n    def on_step_end(self state): pass\n",
                  "raises.py": "raise RuntimeError('not configured')\n"}


@pytest.mark.parametrize("given", NOT_CALLBACKS)
def test_a_callback_train_cannot_use_is_one_line_before_anything_is_written(tmp_path, monkeypatch, capsys, given):
    monkeypatch.chdir(tmp_path)
    for name, text in CALLBACK_FILES.items():
        (tmp_path / name).write_text(text)
    assert main(["train", "lab1", "--progress", "off", "--callback", given]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and NOT_CALLBACKS[given] in err[0], err
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "__pycache__") == sorted(CALLBACK_FILES)  # no run


def test_train_takes_a_callback_of_ones_own_from_a_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "stopper.py").write_text("class StopAfterTwo:\n    def on_epoch_end(self, state):\n"
                                         "        state.should_stop = state.epoch == 2\n")
    assert main(["train", "lab1", "--epochs", "5", "--progress", "off", "--name", "two", "--callback", "stopper.py:StopAfterTwo"]) == 0
    assert json.loads((tmp_path / "runs" / "two" / "summary.json").read_text())["epochs_run"] == 2
    assert "callback" not in (tmp_path / "runs" / "two" / "config.toml").read_text()  # a resume gets only the flags it is given


@pytest.mark.parametrize("toml, message", [
    ("lr = = 3\n", "is not valid TOML"),
    ("lrate = 0.1\n", "unknown key in run.toml 'lrate'; did you mean 'lr'?"),
    ('lr = "fast"\n', "lr = 'fast' is not allowed; it must be a finite number"),
    ("epochs = 0\n", "epochs = 0 is out of range"),
    ("hidden = [8, -1]\nmodel = \"mlp\"\n", "hidden = 8,-1 is not allowed"),
])
def test_bad_config_files_are_one_clear_line(tmp_path, monkeypatch, capsys, toml, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "run.toml").write_text(toml)
    assert main(["train", "--config", "run.toml"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_resume_refuses_a_finished_run_and_changed_settings(tmp_path, capsys):
    assert main(["train", "--epochs", "1", "--out", str(tmp_path), "--name", "done", "--progress", "off"]) == 0
    before = sorted((p.name, p.stat().st_mtime_ns) for p in (tmp_path / "done").rglob("*"))
    assert main(["train", "--resume", str(tmp_path / "done")]) == 2
    (tmp_path / "done" / "summary.json").unlink()
    assert main(["train", "--resume", str(tmp_path / "done"), "--lr", "0.5"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "already finished; there is nothing to resume" in err[0]
    assert "continues with the settings saved in" in err[1] and err[1].endswith("drop --lr")
    assert main(["train", "--resume", str(tmp_path / "done"), "--epochs", "3"]) == 2  # a length is changed in the file
    assert capsys.readouterr().err.strip().endswith("config.toml; drop --epochs (to train for another length, edit epochs "
                                                    "there)")
    after = sorted((p.name, p.stat().st_mtime_ns) for p in (tmp_path / "done").rglob("*"))
    assert after == [entry for entry in before if entry[0] != "summary.json"]


def test_resume_takes_the_settings_a_resume_may_change_and_refuses_the_rest_by_one_rule(tmp_path, capsys):
    from pathlib import Path

    from riskmin._cli._commands import KEPT_ON_RESUME, check_resumable_flags
    from riskmin._cli._main import build_parser
    from riskmin.config import FIELDS, fact

    flags = [name for name in FIELDS if name != "data" and fact(name, "command") in (None, "train")]
    args = build_parser().parse_args(["train", "other.csv", "--resume", "r",
                                      *(f"--{name.replace('_', '-')}=1" for name in flags)])
    with pytest.raises(riskmin.RiskminError) as refused:
        check_resumable_flags(args, Path("r"))
    # every setting whose resume fact is not free, the run's data and place too, and none of where it runs and what
    # it shows (device, threads, progress, checkpoints)
    said = str(refused.value).split("; drop ", 1)[1].split(" (to train", 1)[0].split(", ")
    kept = [name for name in ["data", *flags] if fact(name, "resume") != "free" or name in KEPT_ON_RESUME]
    assert said == ["DATA" if name == "data" else f"--{name.replace('_', '-')}" for name in kept]
    assert {"DATA", "--out", "--name", "--overwrite", "--lr"} <= set(said)
    assert {"--device", "--threads", "--progress", "--print-every", "--checkpoint-every"}.isdisjoint(said)


def test_resume_on_a_cpu_of_a_run_begun_on_a_gpu(tmp_path, capsys, signal_at):
    run = tmp_path / "gpu"
    assert main(["train", "lab1", "--model", "linear", "--epochs", "2", "--progress", "off", "--out", str(tmp_path),
                 "--name", "gpu", "--checkpoint-every", "1", *signal_at(25, "SIGINT")]) == 130
    settings = (run / "config.toml").read_text()
    (run / "config.toml").write_text(settings.replace('device = "auto"', 'device = "cuda:0"'))  # as a GPU's run saved it
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--device", "cpu", "--threads", "1", "--print-every", "1",
                 "--progress", "off"]) == 0
    assert capsys.readouterr().err == ""
    resumed = riskmin.Config.from_toml(run / "config.toml")
    assert (resumed.device, resumed.threads, resumed.print_every, resumed.progress) == ("cpu", "1", 1, False)
    assert json.loads((run / "summary.json").read_text())["epochs_run"] == 2


def holding_lock(folder):
    """A process of its own that holds the lock of the run in `folder`, as a run training there does: started, and
    waited for until it says it holds it (no sleep); ended by closing its input."""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from riskmin._files import RunLock\n"
         f"with RunLock(__import__('pathlib').Path({str(folder)!r})):\n    print('held', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert holder.stdout.readline() == "held\n"
    return holder


def test_a_run_another_process_trains_is_said_to_be_written_and_nothing_else(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "runs" / "twice"
    run.mkdir(parents=True)
    (run / "config.toml").write_text(riskmin.Config(epochs=1).to_toml())  # a run before its first checkpoint
    before = tree(run)
    holder = holding_lock(run)
    try:
        written = f"error: run directory runs/twice is being written by riskmin process {holder.pid}; wait for it to finish"
        for command, remedy in ((["train", "lab1", "--name", "twice"], " or choose another --name"),
                                (["train", "lab1", "--name", "twice", "--overwrite"], " or choose another --name"),
                                (["train", "--resume", "runs/twice"], "")):
            assert main([*command, "--progress", "off"]) == 2
            assert capsys.readouterr() == ("", f"{written}{remedy}\n"), command
    finally:
        holder.communicate("")
    assert tree(run) == before and [p.name for p in run.parent.iterdir()] == ["twice"]  # no replacement begun beside it


def test_bad_input_from_the_shell_has_no_traceback(tmp_path):
    result = run_cli("train", "--lr", "-1", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == "error: lr = -1.0 is out of range; it must be greater than 0"
    assert "Traceback" not in result.stderr and not (tmp_path / "runs").exists()


def test_an_existing_named_run_is_not_overwritten(tmp_path, capsys):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("mine")
    assert main(["train", "--out", str(tmp_path), "--name", "taken", "--progress", "off"]) == 2
    assert capsys.readouterr().err == (f"error: {tmp_path / 'taken'} exists and is not a riskmin run; --overwrite replaces "
                                       "only riskmin's runs and experiments: remove it or choose another --name\n")
    assert (tmp_path / "taken" / "keep.txt").read_text() == "mine"


def test_unwritable_output_folder_fails_before_training(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["train", "--out", str(blocker / "runs"), "--progress", "off"]) == 2
    assert "cannot be written" in capsys.readouterr().err


def test_datasets_lists_the_built_in_data(capsys):
    assert main(["datasets"]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines() if not line.startswith(" ")]
    assert names == ["lab1", "line"]  # a description past 80 columns goes on, indented, on the next line


def help_text(capsys, *command) -> str:
    with pytest.raises(SystemExit) as leaving:
        main([*command, "--help"])
    assert leaving.value.code == 0
    return capsys.readouterr().out


def test_help_shows_defaults_for_every_flag(capsys):
    text = help_text(capsys, "train")
    for flag in ("--lr", "--batch-size", "--restore-best", "--patience", "--hidden"):
        assert flag in text
    # one default per flag: every setting but data, those of montecarlo and the three whose help says it in words
    # (--target, --model-class, --checkpoint-every) or that record code by name (--loss-callable, --optimizer-callable,
    # --scheduler-callable, --metrics), then DATA and --nproc
    montecarlo_only = sum(f.metadata["command"] == "montecarlo" for f in riskmin.config.FIELDS.values())
    assert text.count("(default:") == len(riskmin.config.FIELDS) - 1 - montecarlo_only - 7 + 2
    assert "(default: None)" not in text and "(default: )" not in text
    assert "--lr X                learning rate (default: 0.01)" in text and "(default: on)" in text


def test_curve_help_leaves_out_the_split_settings_it_refuses(capsys):
    text = help_text(capsys, "curve")
    assert "--runs" in text and "--stratify" in text
    assert "--folds" not in text and "--splits" not in text
    assert main(["curve", "lab1", "--folds", "5"]) == 2  # still taken, and refused in its own words
    assert "a learning curve draws random splits" in capsys.readouterr().err


def test_help_groups_the_flags_and_shows_the_choices_of_each_setting(capsys):
    text = help_text(capsys, "train")
    sections = [line[:-1] for line in text.splitlines() if line.endswith(":") and not line.startswith(" ")]
    assert sections == ["positional arguments", "options", "data", "split", "model", "optimization",
                        "stopping and the best model", "device", "output", "examples"]
    assert "--task {auto,regression,classification}" in text and "--optimizer {sgd,adam,adamw,rmsprop,custom}" in text
    assert "--restore-best [{on,off}]" in text and "--hidden N[,N...]" in text
    assert " TASK" not in text and " OPTIMIZER" not in text and "--runs" not in text
    assert text.splitlines()[-2:] == ["  riskmin train lab1 --model mlp --hidden 64,64 --optimizer adamw --lr 1e-3",
                                      "  riskmin train houses.csv --target price --patience 20 --name houses"]


def test_montecarlo_help_starts_with_its_own_flags(capsys):
    text = help_text(capsys, "montecarlo")
    sections = [line[:-1] for line in text.splitlines() if line.endswith(":") and not line.startswith(" ")]
    assert sections[:3] == ["positional arguments", "options", "Monte-Carlo"] and sections[-1] == "examples"
    assert "--engine {auto,vectorized,sequential}" in text and "--checkpoint-every" not in text
    assert text.splitlines()[-2].startswith("  riskmin montecarlo lab1 --runs 100")


def test_every_setting_is_shown_under_the_section_its_field_names(capsys):
    from riskmin.config import FIELDS, SECTIONS, fact

    text, section, shown = help_text(capsys, "montecarlo"), None, {}
    for line in text.splitlines():
        if line.endswith(":") and not line.startswith(" "):
            section = line[:-1]
        elif line.startswith("  --"):
            shown[line.split()[0][2:].replace("-", "_")] = section
    settings = {name: fact(name, "group") for name in FIELDS if name != "data" and fact(name, "command") in (None, "montecarlo")}
    assert {name: shown.get(name) for name in settings} == settings
    in_order = [name for title in SECTIONS for name in FIELDS if name in settings and fact(name, "group") == title]
    assert [name for name in shown if name in settings] == in_order  # the sections in order, each in Config's order


def test_threshold_mode_is_a_flag_of_every_training_command_and_a_bad_one_is_refused(capsys):
    from riskmin._cli._main import build_parser
    from riskmin._cli._flags import config_from_args

    parser = build_parser()
    for command in ("train", "montecarlo", "compare", "lr-find"):
        args = parser.parse_args([command, "--min-delta", "0.01", "--threshold-mode", "rel"])
        assert config_from_args(args).threshold_mode == "rel"
    assert main(["train", "--threshold-mode", "relative"]) == 2
    assert capsys.readouterr().err == "error: threshold_mode = 'relative' is not allowed; choose one of abs, rel\n"


def test_version_prints_the_package_version(capsys):
    with pytest.raises(SystemExit) as leaving:
        main(["--version"])
    assert leaving.value.code == 0 and capsys.readouterr().out == f"riskmin {riskmin.__version__}\n"
    assert riskmin.__version__ == "0.1.0"


def test_the_command_line_modules_answer_help_without_torch_or_rich(tmp_path):
    # riskmin/__init__.py is stood in for by an empty package, to check _cli/ and config.py by themselves
    source = os.path.dirname(os.path.dirname(riskmin._cli._main.__file__))
    program = f"""
import sys, types
package = types.ModuleType("riskmin")
package.__path__, package.__version__ = [{source!r}], "0.1.0"
sys.modules["riskmin"] = package
from riskmin._cli._main import main
for command in (["--help"], ["train", "--help"], ["montecarlo", "--help"], ["--version"]):
    try:
        main(command)
    except SystemExit:
        pass
heavy = sorted(name for name in sys.modules if name.split(".")[0] in ("torch", "rich", "numpy", "matplotlib"))
assert not heavy, heavy
"""
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "riskmin 0.1.0" in result.stdout and "--engine {auto,vectorized,sequential}" in result.stdout


@pytest.mark.parametrize("command", [["--help"], ["train", "--help"]])
def test_python_m_riskmin_help_imports_no_torch(tmp_path, command):
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "riskmin", *command], capture_output=True, text=True,
                            timeout=60, cwd=tmp_path)
    assert result.returncode == 0 and "usage: riskmin" in result.stdout
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}
    assert "riskmin.config" in imported and not imported & {"torch", "numpy", "rich", "matplotlib"}


def test_every_public_name_resolves_and_type_checkers_see_the_same_names():
    import ast

    assert [name for name in riskmin.__all__ if getattr(riskmin, name, None) is None] == []
    assert riskmin.models.build and riskmin.fit.__module__ == "riskmin._training._loop"
    with pytest.raises(AttributeError, match="module 'riskmin' has no attribute 'fitt'"):
        riskmin.fitt
    tree = ast.parse(open(riskmin.__file__).read())
    block = next(node for node in tree.body if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING")
    checked = {alias.name: node.module for node in block.body for alias in node.names}
    assert {name: "." + (module or name) for name, module in checked.items()} == riskmin.PUBLIC
    assert sorted(riskmin.__all__) == sorted(riskmin.PUBLIC)


@pytest.mark.parametrize("command, function", [("train", "train"), ("lr-find", "find_rate")])
def test_ctrl_c_while_a_command_starts_is_one_line_and_status_130(monkeypatch, capsys, tmp_path, command, function):
    import riskmin._cli._commands

    def interrupted(args):
        raise KeyboardInterrupt  # where Ctrl-C lands while the command imports torch

    monkeypatch.setattr(riskmin._cli._commands, function, interrupted)
    monkeypatch.chdir(tmp_path)
    assert main([command]) == 130  # it said "no run directory was written", of lr-find too, which writes none
    captured = capsys.readouterr()
    assert captured.err == "interrupted; nothing was written\n" and captured.out == ""


@pytest.mark.parametrize("module, command", [("torch", ["train"]), ("tomllib", ["--help"])])
def test_ctrl_c_while_torch_or_the_parser_loads_is_one_line_and_status_130(tmp_path, module, command):
    # a module that stands first on the path and raises KeyboardInterrupt when imported: Ctrl-C landing in the middle
    # of `import torch` (seconds) or of the parser's own imports (tens of milliseconds), at a moment chosen in advance
    (tmp_path / "interrupting").mkdir()
    (tmp_path / "interrupting" / f"{module}.py").write_text("raise KeyboardInterrupt\n")
    path = os.pathsep.join([str(tmp_path / "interrupting"), os.path.dirname(os.path.dirname(riskmin.__file__))])
    result = subprocess.run([sys.executable, "-m", "riskmin", *command], cwd=tmp_path, capture_output=True, text=True,
                            timeout=60, env={**os.environ, "PYTHONPATH": path})
    assert (result.returncode, result.stdout, result.stderr) == (130, "", "interrupted; nothing was written\n")
    assert not (tmp_path / "runs").exists()


def strict_json(path):
    """The JSON in `path`, refusing the bare NaN and Infinity that Python's json module writes and other readers reject."""
    def refuse(constant):
        raise ValueError(f"{path.name} holds {constant}: not JSON")

    return json.loads(path.read_text(), parse_constant=refuse)


def test_a_run_that_diverges_before_any_validation_keeps_no_model_and_says_so(tmp_path, capsys):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = main(["train", "lab1", "--optimizer", "sgd", "--lr", "1000", "--progress", "off", "--out", str(tmp_path), "--name", "nan"])
    assert code == 1 and [str(w.message) for w in caught] == []  # the picture of no rows is drawn without a warning
    run_dir = tmp_path / "nan"
    said = capsys.readouterr().err
    assert all(len(line) <= 80 for line in said.splitlines()), said  # wrapped, as every message
    err = unwrapped(said).strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: the training loss became nan in epoch 1") and "keeps no model" in err[0]
    assert {p.name for p in run_dir.iterdir()} == RUN_FILES - {"model.safetensors"}  # no NaN ever reaches a model file
    summary = strict_json(run_dir / "summary.json")
    assert summary["diverged"] and summary["test_loss"] is None and list(summary["sha256"]) == ["preprocessing.json", "config.toml"]
    assert summary["best_epoch"] is None and summary["best_step"] is None  # no epoch had weights worth keeping
    assert (run_dir / "metrics.csv").read_text() == "epoch,step,loss\n"  # no row came before the divergence, the header stays
    assert (run_dir / "curves.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(riskmin.RiskminError, match="has no model: the run diverged before it had finite weights to keep"):
        riskmin.Run.load(run_dir)


def test_a_run_that_diverges_later_keeps_its_best_finite_weights_and_the_rows_before(tmp_path, capsys):
    # full-batch-like SGD above 2 / the largest curvature: the loss grows for a few epochs, then overflows
    code = main(["train", "lab1", "--model", "linear", "--optimizer", "sgd", "--lr", "2", "--epochs", "50", "--progress", "off",
                 "--out", str(tmp_path), "--name", "late"])
    run_dir = tmp_path / "late"
    summary = strict_json(run_dir / "summary.json")
    assert code == 1 and summary["diverged"] and summary["restored_best"] and "the best weights so far are kept" in summary["stop_reason"]
    weights = load_file(str(run_dir / "model.safetensors"))
    assert weights and all(bool(tensor.isfinite().all()) for tensor in weights.values())
    rows = (run_dir / "metrics.csv").read_text().splitlines()
    assert len(rows) - 1 == summary["epochs_run"] - 1 >= 1  # every epoch before the one that diverged
    assert all(value not in ("nan", "inf", "") for row in rows[1:] for value in row.split(","))
    assert riskmin.Run.load(run_dir).best_epoch == summary["best_epoch"]


def test_the_task_help_states_the_rule_guessed_task_follows(capsys):
    import numpy as np

    from riskmin._data._columns import guessed_task

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    rule = " ".join(capsys.readouterr().out.split("--task", 1)[1].split("\n  --", 1)[0].split())
    assert "at most 3 whole numbers" in rule and "0..k-1 (k up to 20)" in rule and "ratings 1..5, counts) are regression" in rule
    cases = {(0, 1): "classification", (-1, 0, 1): "classification", tuple(range(20)): "classification",
             tuple(range(1, 6)): "regression", tuple(range(21)): "regression", (0, 5, 9, 12): "regression"}
    for values, task in cases.items():
        assert guessed_task(np.array(values))[0] == task, values


@pytest.mark.parametrize("command, said", [
    (["train", "--lr", "-1"], "error: lr = -1.0 is out of range; it must be greater than 0"),
    (["montecarlo", "--epochs", "many"], "error: epochs = 'many' is not allowed; it must be a whole number"),
    (["train", "missing.csv", "--target", "y"], "error: data file missing.csv does not exist; check the path"),
    (["train", "./"], "error: data file . is a folder; give a .csv, .parquet or .npz file"),
    (["lr-find", "notes.txt"], "error: data file notes.txt does not exist; check the path"),
    (["predict", ".", "rows.csv", "--out", "p.csv"], "error: . is not a riskmin run directory (missing config.toml, metrics.csv, "
                                                        "model.safetensors, summary.json, preprocessing.json); give the folder"),
    (["export", "."], "error: . is not a riskmin run directory"),
    (["evaluate", "runs/nosuch", "rows.csv"], "error: runs/nosuch does not exist; check the path"),
])
def test_a_mistake_in_flags_files_or_runs_is_refused_before_torch_is_imported(tmp_path, command, said):
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "riskmin", *command], capture_output=True, text=True,
                            timeout=60, cwd=tmp_path)
    lines = [line for line in result.stderr.splitlines() if not line.startswith("import time:")]
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith(said), lines
    assert not imported & {"torch", "numpy", "matplotlib"}, sorted(imported & {"torch", "numpy", "matplotlib"})


def test_a_comparisons_settings_given_to_train_point_to_compare(tmp_path, capsys):
    grid = tmp_path / "grid.toml"
    grid.write_text('epochs = 2\n\n[small]\nhidden = [4]\n\n[large]\nhidden = [16]\n')
    assert main(["train", "--config", str(grid), "--out", str(tmp_path / "runs")]) == 2
    assert capsys.readouterr().err == (f"error: {grid} holds the tables of a comparison's candidates (small, large); run it "
                                       f"with riskmin compare --config {grid}\n")
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("flags", [["train", "lab1", "--optimizer", "custom"], ["compare", "lab1", "--optimizer", "adam,custom"]])
def test_custom_on_the_command_line_says_it_stands_for_python_code(flags, capsys):
    assert main([*flags, "--epochs", "1"]) == 2
    assert capsys.readouterr().err == (
        "error: --optimizer custom stands for an optimizer of your own, given in Python (riskmin.fit(model, data, "
        "optimizer=MyOptimizer)); the command line takes sgd, adam, adamw, rmsprop\n")


OWN_OPTIMIZER = ("stands for an optimizer of your own, given in Python (riskmin.fit(model, data, optimizer=MyOptimizer)); "
                 "the command line takes sgd, adam, adamw, rmsprop")


@pytest.mark.parametrize("command", [["train"], ["montecarlo", "--runs", "2"], ["compare", "--lr", "0.1,0.01", "--runs", "2"],
                                     ["curve", "--runs", "2"], ["lr-find"]])
def test_custom_in_a_config_file_says_it_stands_for_python_code_before_anything_runs(command, tmp_path, capsys):
    settings = tmp_path / "c.toml"
    settings.write_text('optimizer = "custom"\n')
    runs = tmp_path / "runs"
    assert main([command[0], "lab1", *command[1:], "--config", str(settings), "--epochs", "1", "--out", str(runs)]) == 2
    said = capsys.readouterr()
    assert (said.out, said.err) == ("", f'error: optimizer = "custom" in {settings} {OWN_OPTIMIZER}\n')  # nothing else said
    assert not runs.exists()


@pytest.mark.parametrize("command, text, said", [
    (["train"], 'loss = "custom"\n', 'loss = "custom" in {} stands for a loss function of your own, given in Python '
                                     "(riskmin.fit(model, data, loss=my_loss)); the command line takes auto, mse, l1, huber, "
                                     "cross_entropy, bce"),
    (["montecarlo"], 'scheduler = "custom"\n', 'scheduler = "custom" in {} stands for a schedule of your own, given in '
                                               "Python (riskmin.fit(model, data, scheduler=my_schedule)); the command line "
                                               "takes none, step, cosine, plateau, linear_warmup, one_cycle"),
    (["curve"], 'model = "custom"\n', 'model = "custom" in {} stands for a module of your own, given in Python '
                                      "(riskmin.fit(MyNet(), data)); the command line takes linear, two_layer, mlp"),
    (["train"], 'metrics = "hits=mine.hits"\n', 'metrics = "hits=mine.hits" in {} stands for metrics of your own, given in '
                                                "Python (riskmin.fit(model, data, metrics={{'hits': my_hits}})); the "
                                                "command line measures riskmin's own metrics alone"),
    (["compare"], 'epochs = 1\n\n[fast]\nlr = 0.1\n\n[own]\noptimizer = "custom"\n',
     'optimizer = "custom" in [own] of {} ' + OWN_OPTIMIZER),
], ids=["loss", "scheduler", "model", "metrics", "candidate table"])
def test_each_setting_of_ones_own_in_a_config_file_is_named_with_the_file(command, text, said, tmp_path, capsys):
    settings = tmp_path / "own.toml"
    settings.write_text(text)
    assert main([*command, "lab1", "--config", str(settings), "--out", str(tmp_path / "runs")]) == 2
    assert capsys.readouterr().err == f"error: {said.format(settings)}\n"


def test_metrics_on_the_command_line_say_they_stand_for_python_code(capsys):
    assert main(["train", "lab1", "--metrics", "hits=mine.hits", "--epochs", "1"]) == 2
    assert capsys.readouterr().err == (
        "error: --metrics hits=mine.hits stands for metrics of your own, given in Python (riskmin.fit(model, data, "
        "metrics={'hits': my_hits})); the command line measures riskmin's own metrics alone\n")


def test_a_flag_over_a_config_files_custom_trains_with_the_flags_choice(tmp_path, capsys):
    settings = tmp_path / "c.toml"
    settings.write_text('optimizer = "custom"\noptimizer_callable = "mine.Optimizer"\n')  # a Python run's config.toml
    assert main(["train", "lab1", "--config", str(settings), "--optimizer", "sgd", "--epochs", "1", "--progress", "off",
                 "--out", str(tmp_path / "runs")]) == 0
    assert 'optimizer = "sgd"' in (tmp_path / "runs" / "lab1-two_layer" / "config.toml").read_text()


def test_a_run_path_that_does_not_exist_is_said_so_from_python_too(tmp_path):
    with pytest.raises(riskmin.RiskminError, match=f"^{tmp_path / 'nosuch'} does not exist; check the path$"):
        riskmin.Run.load(tmp_path / "nosuch")


class Net(__import__("torch").nn.Module):
    """A module of one's own, which a run records by class name alone."""

    def __init__(self):
        super().__init__()
        self.layer = __import__("torch").nn.Linear(1, 1)

    def forward(self, x):
        return self.layer(x)


def test_a_run_of_ones_own_module_is_refused_on_the_command_line_in_its_words(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    riskmin.fit(Net(), "line", epochs=1, progress=False, directory="runs/own")
    (tmp_path / "rows.csv").write_text("x\n0.5\n")
    own = ("error: runs/own holds a module of your own (test_cli.Net), which the command line cannot rebuild, as a run "
           "records it by class name only; ")
    for command, python in (
            (["predict", "runs/own", "rows.csv", "--out", "p.csv"],
             "Python can: riskmin.predict(riskmin.Run.load('runs/own', model=Net()), rows)"),
            (["evaluate", "runs/own", "rows.csv"], "Python can: riskmin.evaluate(riskmin.Run.load('runs/own', model=Net()), data)"),
            (["export", "runs/own"], "Python loads it, riskmin.Run.load('runs/own', model=Net()), and exports its "
                                     "model: torch.onnx.export(run.model, ...)"),
            (["graph", "runs/own", "--plot", "g.dot"],
             "Python can: riskmin.graph(riskmin.Run.load('runs/own', model=Net()), data)")):
        assert main(command) == 2
        assert capsys.readouterr() == ("", f"{own}{python}\n"), command
    python = (r"^model custom is a module of your own \(test_cli.Net\); pass a fresh instance of it in its place: "
              r"riskmin.fit\(MyNet\(\), data\), or Run.load\(directory, model=MyNet\(\)\) for a saved run$")
    with pytest.raises(riskmin.RiskminError, match=python):
        riskmin.Run.load("runs/own")  # Python's own words for a Python caller, not a damaged run's
    with pytest.raises(riskmin.RiskminError, match=python):
        riskmin.predict("runs/own", [[0.5]])
    assert riskmin.Run.load("runs/own", model=Net()).config.model == "custom"


def test_evaluate_on_a_log_target_says_its_note_within_80_columns(tmp_path, monkeypatch, capsys):
    import numpy as np

    monkeypatch.chdir(tmp_path)
    x = np.linspace(0.0, 1.0, 60)
    (tmp_path / "pos.csv").write_text("x,y\n" + "".join(f"{a},{np.exp(a):.6f}\n" for a in x))
    assert main(["train", "pos.csv", "--target", "y", "--target-transform", "log", "--model", "linear", "--epochs", "1",
                 "--progress", "off", "--name", "log"]) == 0
    capsys.readouterr()
    assert main(["evaluate", "runs/log", "pos.csv"]) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 80, out
    assert ("loss is of log(target), as the run trained; rmse, mae and r2 compare exp(prediction) with the target"
            in " ".join(out.split()))


def test_a_setting_left_unused_is_said_as_the_readme_says(tmp_path, monkeypatch, capsys):
    from pathlib import Path

    monkeypatch.chdir(tmp_path)
    assert main(["train", "line", "--model", "linear", "--hidden", "64", "--epochs", "1", "--progress", "off"]) == 0
    line = "note: --hidden is not used with --model linear, only with two_layer or mlp"
    assert line in capsys.readouterr().out.splitlines()  # a line of its own among the data's notes
    readme = " ".join((Path(__file__).parent.parent / "README.md").read_text().split())
    assert f"trains as asked, and a line printed with the results, beside those on how the data was read, says so: `{line}`" in readme
    # one value beside a comparison's alternatives, which its grid leaves out of every linear candidate: said as well
    assert main(["compare", "line", "--model", "linear", "--lr", "0.1,0.01", "--hidden", "64", "--momentum", "0.5",
                 "--runs", "2", "--epochs", "1", "--progress", "off"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert line in out and "note: --momentum is not used with --optimizer adam, only with sgd or rmsprop" in out


def test_a_ctrl_c_once_the_command_is_done_is_ignored_not_a_traceback_at_exit():
    # a second Ctrl-C quick on the first lands while Python exits, in torch's handlers at exit: the command has
    # said everything by then, so the script's entry point leaves no handler that would print a traceback
    probe = ("import signal, sys; sys.argv = ['riskmin', 'evaluate', 'no-such-run', 'rows.csv']; "
             "import riskmin.__main__ as entry; "
             "code = entry.run(); print(code, signal.getsignal(signal.SIGINT) is signal.SIG_IGN)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert done.stdout.splitlines()[-1] == "2 True", done.stderr


QUICK = ["--model", "linear", "--epochs", "2", "--progress", "off"]
EXPERIMENTS = {
    "train": (["train", "line", *QUICK], "line-linear"),
    "montecarlo": (["montecarlo", "line", *QUICK, "--runs", "2"], "line-linear-montecarlo"),
    "compare": (["compare", "line", *QUICK, "--runs", "2", "--lr", "0.1,0.01"], "line-compare"),
    "curve": (["curve", "line", *QUICK, "--runs", "2", "--sizes", "0.5,1"], "line-curve"),
}


@pytest.mark.parametrize("command", list(EXPERIMENTS))
def test_overwrite_without_a_name_replaces_the_folder_its_unnumbered_name_gives(tmp_path, monkeypatch, capsys, command):
    from pathlib import Path

    monkeypatch.chdir(tmp_path)
    args, name = EXPERIMENTS[command]
    assert main(args) == 0
    assert main([*args, "--seed", "3", "--overwrite"]) == 0  # another result, in the first one's place
    assert sorted(p.name for p in Path("runs").iterdir()) == [name]
    assert tomllib.loads(Path("runs", name, "config.toml").read_text())["seed"] == 3
    assert capsys.readouterr().out.strip().endswith(f"written to runs/{name}")
    assert main(args) == 0  # without --overwrite, a new folder beside it, numbered
    assert sorted(p.name for p in Path("runs").iterdir()) == [name, f"{name}-2"]
    # its settings run again: config.toml keeps no overwrite, which would replace the result the file came from
    assert "overwrite" not in Path("runs", name, "config.toml").read_text()
    assert main([command, "--config", str(Path("runs", name, "config.toml")), "--progress", "off"]) == 0
    assert sorted(p.name for p in Path("runs").iterdir()) == [name, f"{name}-2", f"{name}-3"]


def test_a_python_experiment_saved_with_overwrite_replaces_the_folder_the_command_line_would(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(EXPERIMENTS["montecarlo"][0]) == 0
    mc = riskmin.montecarlo("linear", "line", runs=2, epochs=2, seed=3, progress=False, overwrite=True)
    assert str(mc.save()) == "runs/line-linear-montecarlo"
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["line-linear-montecarlo"]
    assert riskmin.Config.from_toml(tmp_path / "runs" / "line-linear-montecarlo" / "config.toml").seed == 3


def test_evaluate_names_a_bad_value_by_its_column_as_predict_and_python_do(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    rows = [f"{30 + i % 11},{i % 7}.5,{2 * i + 1}" for i in range(40)]
    (tmp_path / "rows.csv").write_text("age,bmi,target\n" + "\n".join(rows) + "\n")
    assert main(["train", "rows.csv", "--target", "target", *QUICK, "--name", "r"]) == 0
    for column, place in (("bmi", 1), ("target", 2)):
        bad = [row.split(",") for row in rows]
        bad[2][place] = "inf"
        (tmp_path / "bad.csv").write_text("age,bmi,target\n" + "\n".join(",".join(row) for row in bad) + "\n")
        capsys.readouterr()
        assert main(["evaluate", "runs/r", "bad.csv"]) == 2
        said = capsys.readouterr().err
        assert said.startswith(f"error: {'x' if column == 'bmi' else 'y'} holds NaN or infinite values, first at row 2 "
                               f"(counting from 0), in column {column};"), said
        with pytest.raises(riskmin.RiskminError) as python:
            riskmin.evaluate("runs/r", "bad.csv")
        assert said == f"error: {python.value}\n"


@pytest.mark.parametrize("command", ["train", "montecarlo", "compare", "curve"])
def test_a_results_own_config_run_again_notes_no_setting_it_holds_at_its_default(tmp_path, monkeypatch, capsys, command):
    monkeypatch.chdir(tmp_path)
    args, name = EXPERIMENTS[command]
    assert main(args) == 0
    assert "stratify = true" in (tmp_path / "runs" / name / "config.toml").read_text()  # recorded, never given
    capsys.readouterr()
    assert main([command, "--config", f"runs/{name}/config.toml", "--name", "again"]) == 0
    out, err = capsys.readouterr()
    assert "--stratify" not in out + err
    if command != "train":  # a flag given at its default is still given, and noted
        assert main([command, "--config", f"runs/{name}/config.toml", "--name", "asked", "--stratify", "on"]) == 0
        assert "--stratify is not used with a regression target, only with classification" in capsys.readouterr().out


def test_train_given_an_experiments_config_says_it_leaves_its_settings_unused(tmp_path, monkeypatch, capsys):
    from pathlib import Path

    monkeypatch.chdir(tmp_path)
    args, name = EXPERIMENTS["montecarlo"]
    assert main(args) == 0
    capsys.readouterr()
    assert main(["train", "--config", f"runs/{name}/config.toml", "--name", "one", "--progress", "off"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    runs = riskmin.Config.from_toml(Path("runs", name, "config.toml")).runs
    assert (f"runs/{name}/config.toml holds settings of riskmin montecarlo, compare and curve (runs = {runs}), which "
            "train leaves unused: it trains one run") in out
    assert main(EXPERIMENTS["train"][0]) == 0
    capsys.readouterr()
    assert main(["train", "--config", f"runs/{EXPERIMENTS['train'][1]}/config.toml", "--name", "two", "--progress", "off"]) == 0
    assert "leaves unused" not in capsys.readouterr().out  # a run's own file holds their defaults alone


def test_predict_keeps_columns_as_the_file_writes_them(tmp_path, monkeypatch, capsys):
    import shutil
    from pathlib import Path

    monkeypatch.chdir(tmp_path)
    data = Path(__file__).parent.parent / "examples" / "data"
    shutil.copy(data / "houses.csv", tmp_path)
    assert main(["train", "houses.csv", "--target", "price", *QUICK, "--name", "houses"]) == 0
    (tmp_path / "new.csv").write_text("town,id,built,size,rooms,zip\nAshby,1002,2005,64.2,1,02134\n"
                                      "Brook,1003,1990,85.50,3,\n")
    assert main(["predict", "runs/houses", "new.csv", "--out", "p.csv", "--keep", "id,size,zip,town"]) == 0
    lines = (tmp_path / "p.csv").read_text().splitlines()
    assert [line.rsplit(",", 1)[0] for line in lines] == ["id,size,zip,town", "1002,64.2,02134,Ashby", "1003,85.50,,Brook"]
    # the predictions do not change for a column kept as well as read
    assert main(["predict", "runs/houses", "new.csv", "--out", "q.csv"]) == 0
    assert [line.rsplit(",", 1)[1] for line in lines] == (tmp_path / "q.csv").read_text().splitlines()
    # a Parquet file's values as stored, float64 included; a column named twice is kept once
    import pyarrow
    import pyarrow.parquet

    pyarrow.parquet.write_table(pyarrow.table({"town": ["Ashby"], "id": [1002], "built": [2005], "size": [64.2],
                                               "rooms": [1]}), tmp_path / "new.parquet")
    assert main(["predict", "runs/houses", "new.parquet", "--out", "r.csv", "--keep", "size,id,size"]) == 0
    assert (tmp_path / "r.csv").read_text().splitlines()[1].rsplit(",", 1)[0] == "64.2,1002"
    # a kept column named as a prediction's: the prediction took its place without a word
    (tmp_path / "clash.csv").write_text("town,id,built,size,rooms,predicted_price\nAshby,1002,2005,64.2,1,1\n")
    capsys.readouterr()
    from riskmin._cli import _commands

    read = []
    monkeypatch.setattr(_commands, "as_written", lambda *given: read.append(given))  # reading what it keeps
    assert main(["predict", "runs/houses", "clash.csv", "--out", "s.csv", "--keep", "id,predicted_price"]) == 2
    assert capsys.readouterr().err == ("error: --keep predicted_price names a column predict writes itself; rename that "
                                       "column in clash.csv, or leave it out of --keep\n")
    assert not (tmp_path / "s.csv").exists() and read == []  # refused before the kept columns were read


def test_the_features_help_says_that_row_identifiers_are_left_out_too(capsys):
    text = " ".join(help_text(capsys, "train").split())
    assert "--features COLUMNS feature columns of a table, comma separated, in this order (default: all but the target " \
           "and row identifiers such as id, each left out with a note)" in text


def test_a_data_file_a_config_file_names_by_a_relative_path_is_found_from_its_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "pairs.csv").write_text("x,y\n" + "".join(f"{i},{3 * i % 7}\n" for i in range(40)))
    (tmp_path / "sub" / "run.toml").write_text('data = "pairs.csv"\ntarget = "y"\nepochs = 1\nprogress = false\n')
    assert main(["train", "--config", "sub/run.toml", "--name", "r"]) == 0  # not ./pairs.csv, which is not there
    assert f'data = "{tmp_path / "sub" / "pairs.csv"}"' in (tmp_path / "runs" / "r" / "config.toml").read_text()
    # an experiment's own config.toml names its splits file by its absolute path, as its data: it runs again, and an
    # interrupted one resumes, from any folder (a relative path was read from wherever the command ran)
    import numpy as np

    order = np.arange(40)
    np.savez("s.npz", train_0=order[:30], val_0=order[30:35], test_0=order[35:], train_1=order[10:],
             val_1=order[5:10], test_1=order[:5])
    assert main(["montecarlo", "sub/pairs.csv", "--target", "y", "--splits", "s.npz", "--epochs", "1", "--progress",
                 "off", "--name", "mc"]) == 0
    assert f'splits = "{tmp_path / "s.npz"}"' in (tmp_path / "runs" / "mc" / "config.toml").read_text()
    monkeypatch.chdir(tmp_path / "sub")
    assert main(["montecarlo", "--config", "../runs/mc/config.toml", "--name", "mc2", "--progress", "off"]) == 0
