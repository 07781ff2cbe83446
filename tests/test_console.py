"""What a person sees while riskmin trains: the header, the epoch lines, the bar, the end summary, all within 80 columns."""

import io
import json

import pytest
import torch
from rich.console import Console

import riskmin
from riskmin import Config
from riskmin.callbacks import Progress, State
from riskmin.policy import Judge
from riskmin._cli._main import main
from riskmin._runs._report import end_summary, epoch_columns, header, interval, montecarlo_table, summary_table

REGRESSION_ROW = {"epoch": 1, "step": 10, "loss": 0.5, "val_loss": 0.6, "val_mse": 0.6, "val_rmse": 0.77, "val_mae": 0.6,
                  "val_r2": 0.9, "lr": 0.01, "seconds": 0.1}


def console_of_width_80(terminal: bool = False):
    buffer = io.StringIO()
    return Console(file=buffer, width=80, force_terminal=terminal, color_system=None), buffer


def drive(progress: Progress, val_losses: list, row=REGRESSION_ROW, improved=None, judged_by=None) -> State:
    """Run the events of a fit of len(val_losses) epochs of 10 steps through `progress`, with made-up metrics; whether each
    validation improved is `improved`, or what a judge with the settings `judged_by` says."""
    state = State(torch.nn.Linear(1, 1), epochs=len(val_losses), steps_per_epoch=10)
    judged_by = judged_by or Config()
    judge = Judge(judged_by, runs=1, tracked=True)  # whether each validation improved, as fit's judge says
    progress.on_fit_start(state)
    for epoch, val_loss in enumerate(val_losses, 1):
        state.epoch = epoch
        for _ in range(10):
            state.step += 1
            progress.on_step_end(state)
        state.metrics = {**row, "epoch": epoch, "step": state.step, "val_loss": val_loss, "val_mse": val_loss}
        state.improved = improved[epoch - 1] if improved is not None else bool(judge.judge(epoch, state.step, 1.0, state.metrics[judged_by.monitor]).improved)
        progress.on_validation_end(state)
        progress.on_epoch_end(state)
    progress.on_fit_end(state)
    return state


def test_header_says_data_rows_model_parameters_loss_optimizer_device_threads():
    lines = header("houses", {"train": 16512, "val": 2064, "test": 2064}, "mlp", 12345, "mse", "adamw", "cuda:0", 4)
    assert lines == ["data   houses: 16,512 train, 2,064 val, 2,064 test rows",
                     "model  mlp, 12,345 parameters",
                     "train  loss mse, optimizer adamw, on cuda:0 with 4 threads"]
    assert header("lab1", {"train": 8}, "linear", 1, "l1", "sgd", "cpu", 1)[2].endswith("on cpu with 1 thread")
    assert header("lab1", {"train": 8}, "linear", 1, "l1", "sgd", "cuda")[2].endswith("on cuda")  # no thread count given


def test_a_long_header_line_is_cut_to_80_columns():
    lines = header("x" * 200, {"train": 8}, "M" * 100, 10**9, "cross_entropy", "rmsprop", "cpu", 16)
    assert all(len(line) <= 80 for line in lines)
    assert lines[0].endswith("...") and lines[1].startswith("model  MMM") and lines[1].endswith("...")


def test_epoch_lines_show_loss_val_loss_one_task_metric_and_lr_aligned_within_80_columns():
    console, buffer = console_of_width_80()
    drive(Progress(console, print_every=1), [0.6, 0.5, 0.55])
    lines = buffer.getvalue().splitlines()
    assert lines[0].split() == ["epoch", "loss", "val", "loss", "val", "r2", "lr"]  # val_mse, equal to val_loss, is left out
    assert [line.split()[:3] for line in lines[1:]] == [["1", "0.5", "0.6"], ["2", "0.5", "0.5"], ["3", "0.5", "0.55"]]
    assert len({len(line.rstrip(" *")) for line in lines}) == 1  # every column right-aligned under its name
    assert all(len(line) <= 80 for line in lines)


def test_the_star_marks_a_new_best_of_the_monitored_metric():
    console, buffer = console_of_width_80()
    drive(Progress(console, print_every=1), [0.6, 0.5, 0.55, 0.4, 0.4])
    assert [line.endswith("*") for line in buffer.getvalue().splitlines()[1:]] == [True, True, False, True, False]
    console, buffer = console_of_width_80()
    drive(Progress(console, print_every=1, monitor="val_r2"), [0.6, 0.5, 0.4], judged_by=Config(monitor="val_r2", mode="max"))  # r2 stays 0.9: best once
    assert [line.endswith("*") for line in buffer.getvalue().splitlines()[1:]] == [True, False, False]


def test_the_star_follows_the_loop_when_it_says_whether_a_validation_improved():
    console, buffer = console_of_width_80()
    drive(Progress(console, print_every=1), [0.6, 0.5, 0.4], improved=[False, True, False])
    assert [line.endswith("*") for line in buffer.getvalue().splitlines()[1:]] == [False, True, False]


def test_print_every_0_prints_about_20_lines_with_the_first_and_the_last_epoch():
    console, buffer = console_of_width_80()
    drive(Progress(console, print_every=0), [1.0 / epoch for epoch in range(1, 301)])
    epochs = [int(line.split()[0]) for line in buffer.getvalue().splitlines()[1:]]
    assert 18 <= len(epochs) <= 22 and epochs[0] == 1 and epochs[-1] == 300


def test_classification_lines_show_accuracy():
    row = {"epoch": 1, "step": 1, "loss": 0.7, "val_loss": 0.6, "val_accuracy": 0.8, "val_f1": 0.7, "val_log_loss": 0.6, "lr": 0.1}
    assert epoch_columns(row) == ["loss", "val_loss", "val_accuracy", "lr"]
    assert epoch_columns({"epoch": 1, "loss": 0.7, "lr": 0.1}, monitor="loss") == ["loss", "lr"]  # no validation split


def test_classification_lines_stay_aligned_under_names_longer_than_a_number():
    row = {"epoch": 1, "step": 1, "loss": 0.7, "val_loss": 0.6, "val_accuracy": 0.8, "val_f1": 0.7, "val_log_loss": 0.6, "lr": 0.1}
    console, buffer = console_of_width_80()
    drive(Progress(console, print_every=1, monitor="val_log_loss"), [0.6, 0.5], row=row)
    lines = buffer.getvalue().splitlines()
    assert lines[0].split() == ["epoch", "loss", "val", "loss", "val", "log", "loss", "val", "accuracy", "lr"]
    assert len({len(line.rstrip(" *")) for line in lines}) == 1 and all(len(line) <= 80 for line in lines)


def test_the_header_is_written_before_the_first_epoch():
    console, buffer = console_of_width_80()
    drive(Progress(console, print_every=1, header=["data   lab1: 8 train rows", "model  linear, 2 parameters"]), [0.5])
    assert buffer.getvalue().splitlines()[:3] == ["data   lab1: 8 train rows", "model  linear, 2 parameters",
                                                  "epoch        loss    val loss      val r2          lr"]


def test_close_writes_queued_lines_and_takes_the_bar_off_the_line_when_the_fit_never_ends():
    console, buffer = console_of_width_80(terminal=True)
    progress = Progress(console, print_every=1)
    state = State(torch.nn.Linear(1, 1), epochs=100, steps_per_epoch=10)
    progress.on_fit_start(state)
    state.epoch, state.step, state.metrics, state.improved = 1, 10, dict(REGRESSION_ROW), True
    progress.draw(state)
    progress.on_validation_end(state)
    progress.on_epoch_end(state)  # queued, then Ctrl-C: on_fit_end never comes
    bar = progress.bar
    progress.close()
    progress.close()  # a second close, from a `finally` after on_fit_end, does nothing
    assert not bar.live.is_started
    output = buffer.getvalue()
    assert "      0.01  *" in output  # the queued epoch line was written
    assert output.endswith("\x1b[2K") and "\x1b[?25h" in output[-20:]  # the bar's line erased, the cursor shown again


SUMMARY = {"best_epoch": 37, "best_step": 925, "epochs_run": 50, "steps": 1250, "stopped_early": True, "diverged": False,
           "stop_reason": "early stop: val_loss did not improve for 10 validations", "restored_best": True,
           "train_loss": 0.21, "train_mse": 0.21, "train_r2": 0.97, "val_loss": 0.29, "val_mse": 0.29, "val_r2": 0.96,
           "test_loss": 0.28088, "test_mse": 0.28088, "test_r2": 0.9587, "seconds": 12.345, "device": "cpu"}


def test_end_summary_says_best_epoch_weights_stop_test_metrics_and_directory():
    text = end_summary(SUMMARY, "runs/lab1-two_layer")
    assert " ".join(text.split()) == ("best epoch 37 of 50, 1250 steps, 12.35 s; the model has the weights of epoch 37 "
                                      "(restored). early stop: val_loss did not improve for 10 validations. "
                                      "test loss 0.28088, r2 0.9587. run written to runs/lab1-two_layer")
    assert text.splitlines()[-1] == "run written to runs/lab1-two_layer"
    assert all(len(line) <= 80 for line in text.splitlines())


def test_end_summary_of_a_run_that_keeps_its_final_weights_and_has_no_test_split():
    summary = {**SUMMARY, "restored_best": False, "stop_reason": "", "test_loss": None, "test_mse": None, "test_r2": None}
    assert " ".join(end_summary(summary).split()) == ("best epoch 37 of 50, 1250 steps, 12.35 s; "
                                                      "the model has the final weights, of epoch 50 (not restored).")


def test_summary_table_fits_80_columns_and_names_the_loss_instead_of_repeating_it():
    console, buffer = console_of_width_80()
    summary_table(SUMMARY, console)
    lines = buffer.getvalue().splitlines()
    assert all(len(line) <= 80 for line in lines)
    rows = [line.split()[1] for line in lines if line.startswith("│")]
    assert rows == ["loss", "r2"] and "loss (mse)" in buffer.getvalue()
    assert "best epoch 37 of 50" in buffer.getvalue()


def test_montecarlo_table_fits_80_columns():
    interval = {"mean": 0.123456, "std": 0.0123, "naive_ci_low": 0.1201234, "naive_ci_high": 0.1267891}
    summary = {"runs": 100, "engine": "vectorized", "seconds": 12.3,
               "metrics": {f"{part}_{name}": interval for part in ("train", "test") for name in ("loss", "log_loss", "accuracy")}}
    console, buffer = console_of_width_80()
    montecarlo_table(summary, console)
    assert all(len(line) <= 80 for line in buffer.getvalue().splitlines())


def test_every_line_of_a_readme_training_run_fits_80_columns(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["train", "--epochs", "30", "--print-every", "0", "--patience", "5", "--out", str(tmp_path), "--name", "r"]) == 0
    out, err = capsys.readouterr()
    lines = (out + err).splitlines()
    assert all(len(line) <= 80 for line in lines), [line for line in lines if len(line) > 80]
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert f"best epoch {summary['best_epoch']} of {summary['epochs_run']}" in out
    assert sum(1 for line in err.splitlines() if line.split()[:1] and line.split()[0].isdigit()) <= 22  # about 20 epoch lines


@pytest.mark.parametrize("command", [["--help"], *([name, "--help"] for name in ("train", "montecarlo", "compare", "curve",
                                                                                  "lr-find", "graph", "predict"))])
def test_help_fits_80_columns(command, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    with pytest.raises(SystemExit):
        main(command)
    assert all(len(line) <= 80 for line in capsys.readouterr().out.splitlines())


def test_a_montecarlo_table_and_picture_name_what_they_measured():
    mc = riskmin.montecarlo("two_layer", "lab1", runs=6, epochs=2, hidden=(4,), progress=False)
    console, buffer = console_of_width_80()
    montecarlo_table(mc.summary, console)
    text = buffer.getvalue()
    assert text.splitlines()[0].strip().startswith("riskmin Monte-Carlo: two_layer on lab1, 6 of 6 runs (vectorized), ")
    assert "gap: test loss minus train loss, run by run" in " ".join(text.split())
    figure = mc.plot()
    assert figure._suptitle.get_text() == "two_layer on lab1, 6 runs"
    d = mc.summary["metrics"]["test_loss"]
    labels = figure.axes[0].get_legend_handles_labels()[1]
    assert labels == [f"mean {d['mean']:.4g}", f"corrected 95% {interval(d)}"] and interval(d) in text  # the console's words


@pytest.mark.parametrize("command", [["train", "lab1", "--model", "linear", "--epochs", "2"],
                                     ["montecarlo", "lab1", "--model", "linear", "--runs", "3", "--epochs", "2"],
                                     ["curve", "lab1", "--model", "linear", "--sizes", "0.5,1", "--runs", "3", "--epochs", "2"],
                                     ["compare", "lab1", "--model", "linear,two_layer", "--runs", "3", "--epochs", "2"]])
def test_a_wide_terminal_gets_the_same_80_columns(command, tmp_path, capsys, monkeypatch):
    """Tables and their footnotes read the same in any terminal: a wider one does not stretch them."""
    monkeypatch.setenv("COLUMNS", "150")
    monkeypatch.chdir(tmp_path)  # a short path in "written to runs/...": a path is never broken
    assert main([*command, "--progress", "off"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert all(len(line) <= 80 for line in lines), [line for line in lines if len(line) > 80]


def test_the_built_in_data_sets_are_listed_within_80_columns(capsys):
    assert main(["datasets"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert all(len(line) <= 80 for line in lines), [line for line in lines if len(line) > 80]
    assert [line[:9] for line in lines if not line.startswith(" ")] == ["lab1     ", "line     "]
    assert all(line.startswith(" " * 9) for line in lines if not line.startswith(("lab1", "line")))  # under its text


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_ctrl_c_of_train_says_how_to_go_on_within_80_columns(tmp_path, monkeypatch, capsys, signal_at, overwrite):
    from said import unwrapped

    monkeypatch.chdir(tmp_path)
    flags = ["train", "lab1", "--model", "linear", "--epochs", "3", "--progress", "off"]
    if overwrite:
        assert main(flags) == 0
    capsys.readouterr()
    assert main([*flags, *(["--overwrite"] if overwrite else []), *signal_at(30, "SIGINT")]) == 130
    err = capsys.readouterr().err
    assert all(len(line) <= 80 for line in err.splitlines()), [line for line in err.splitlines() if len(line) > 80]
    said = unwrapped(err).strip().splitlines()[-1]
    if overwrite:
        (building,) = (tmp_path / "runs").glob(".lab1-linear.new-*")
        building = building.relative_to(tmp_path)
        assert said == (f"interrupted in epoch 2 after step 30; the checkpoint is saved; runs/lab1-linear is as it was; "
                        f"the new run is in {building}: continue it with: riskmin train --resume {building} (it takes "
                        f"the place of runs/lab1-linear once it succeeds), or discard it with: rm -r {building}")
    else:
        assert said == ("interrupted in epoch 2 after step 30; the checkpoint is saved; continue with: riskmin train "
                        "--resume runs/lab1-linear")


def test_a_ctrl_c_of_montecarlo_says_how_to_go_on_within_80_columns(tmp_path, monkeypatch, capsys):
    from riskmin._experiments import _montecarlo
    from said import unwrapped

    monkeypatch.chdir(tmp_path)
    fit, calls = _montecarlo.fit_alone, []

    def interrupted_at_the_second_run(*given, **named):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return fit(*given, **named)

    monkeypatch.setattr(_montecarlo, "fit_alone", interrupted_at_the_second_run)
    with pytest.raises(SystemExit) as stopped:
        main(["montecarlo", "line", "--model", "linear", "--runs", "3", "--epochs", "1", "--engine", "sequential",
              "--progress", "off"])
    assert stopped.value.code == 130
    err = capsys.readouterr().err
    assert all(len(line) <= 80 for line in err.splitlines()), [line for line in err.splitlines() if len(line) > 80]
    assert unwrapped(err).strip().splitlines()[-1] == ("interrupted; 1 finished run kept in runs/line-linear-montecarlo: "
                                                       "continue it with: riskmin montecarlo --resume "
                                                       "runs/line-linear-montecarlo")


def test_a_terminal_narrower_than_80_columns_gets_each_paragraph_wrapped_once_at_its_width(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "60")
    monkeypatch.chdir(tmp_path)
    assert main(["montecarlo", "lab1", "--model", "linear", "--runs", "5", "--epochs", "2", "--progress", "off"]) == 0
    out = capsys.readouterr().out
    paragraph = out[out.index("The corrected interval"):].splitlines()[:-1]  # the footnote, before "runs written to"
    assert all(len(line) <= 60 for line in paragraph), paragraph
    assert all(len(line) >= 50 for line in paragraph[:-1]), paragraph  # wrapped once: no short line between long ones


def test_a_classifiers_montecarlo_table_shows_its_loss_once_not_again_as_log_loss():
    labels = (torch.arange(60) % 2, torch.randn(60, 3, generator=torch.Generator().manual_seed(0)))
    mc = riskmin.montecarlo("linear", (labels[1], labels[0]), runs=5, epochs=2, progress=False)
    assert mc.summary["metrics"]["test_log_loss"] == mc.summary["metrics"]["test_loss"]  # cross entropy is the log loss
    console, buffer = console_of_width_80()
    montecarlo_table(mc.summary, console)
    names = [line.split("│")[1].strip() for line in buffer.getvalue().splitlines() if line.startswith("│")]
    assert names[:4] == ["test loss", "test accuracy", "test f1", "val loss"]


def test_a_montecarlo_table_in_60_columns_folds_its_numbers_whole_rather_than_cropping_them():
    mc = riskmin.montecarlo("linear", "lab1", runs=5, epochs=2, progress=False)
    buffer = io.StringIO()
    montecarlo_table(mc.summary, Console(file=buffer, width=60, color_system=None))
    rows = [line for line in buffer.getvalue().splitlines() if line.startswith("│")]
    assert rows and all(len(line) <= 60 and line.endswith("│") for line in rows)  # the right border: nothing cropped
    text = " ".join(" ".join(line.strip("│").split("│")) for line in rows)
    d = mc.summary["metrics"]["test_rmse"]
    assert interval(d).split(", ")[0] in text and interval(d).split(", ")[1] in text  # both ends of an interval whole


def test_a_montecarlo_table_narrower_than_its_folded_numbers_leaves_the_naive_interval_to_the_files():
    mc = riskmin.montecarlo("linear", "lab1", runs=5, epochs=2, progress=False)
    shown = {}
    for width in range(35, 81):  # every width down to 35 columns: below 42 the right border was cut off
        buffer = io.StringIO()
        montecarlo_table(mc.summary, Console(file=buffer, width=width, color_system=None))
        out = buffer.getvalue()
        rows = [line.rstrip() for line in out.splitlines() if line.startswith("│")]
        assert rows and all(len(line) <= width and line.endswith("│") for line in rows), width  # the right border
        assert "…" not in out, width  # no number cropped
        shown[width] = rows[0].count("│") - 1
        assert ("too narrow for the naive interval; summary.json holds it" in " ".join(out.split())) == (shown[width] == 3)
    assert shown[80] == shown[60] == 4 and shown[45] == 3
