"""What a resume refuses before it continues (a length shorter than the run already trained, a module of another
shape), and DataFrame cells of mixed types, which prediction reads as the README promises."""

import json

import numpy as np
import pytest
import torch
from torch import nn

import riskmin
from riskmin import RiskminError
from riskmin._cli._main import main
from riskmin._training._checkpoint import TrainingInterrupted
from riskmin.callbacks import SignalAt

# lab1's 800 training rows in batches of 200: 4 steps an epoch, a checkpoint at the end of each
SETTINGS = dict(batch_size=200, progress=False, checkpoint_every=1)


def interrupted(directory, step: int, model="mlp", **settings):
    """A run in `directory` interrupted right after step `step`, its checkpoint saved."""
    with pytest.raises(TrainingInterrupted, match=f"after step {step};"):
        riskmin.fit(model, "lab1", directory=directory, callbacks=[SignalAt(step, "SIGINT")], **SETTINGS, **settings)


def test_resume_with_fewer_epochs_than_trained_is_refused(tmp_path):
    interrupted(tmp_path / "run", 10, epochs=5)  # step 10: inside epoch 3
    with pytest.raises(RiskminError) as caught:
        riskmin.fit("mlp", "lab1", directory=tmp_path / "run", resume=True, epochs=2, **SETTINGS)
    assert str(caught.value) == (
        f"cannot resume {tmp_path / 'run'} with epochs 2: it has already trained 2 epochs and part of epoch 3; "
        "set epochs to at least 3"
    )
    assert not (tmp_path / "run" / "summary.json").exists()
    # the epoch under way is enough: the run ends where that epoch does
    run = riskmin.fit("mlp", "lab1", directory=tmp_path / "run", resume=True, epochs=3, **SETTINGS)
    assert run.history[-1]["epoch"] == 3 and run.history[-1]["step"] == 12


def test_resume_with_fewer_max_steps_than_trained_is_refused(tmp_path):
    interrupted(tmp_path / "run", 7, max_steps=12)
    with pytest.raises(RiskminError) as caught:
        riskmin.fit("mlp", "lab1", directory=tmp_path / "run", resume=True, max_steps=6, **SETTINGS)
    assert str(caught.value) == (
        f"cannot resume {tmp_path / 'run'} with max_steps 6: it has already trained 7 steps; "
        "set max_steps to at least 7"
    )


def test_resume_from_the_command_line_with_epochs_lowered_in_config_toml_is_refused(tmp_path, signal_at, capsys):
    argv = ["train", "lab1", "--model", "mlp", "--batch-size", "200", "--epochs", "5", "--progress", "off",
            "--checkpoint-every", "1", "--out", str(tmp_path), "--name", "run"]
    assert main([*argv, *signal_at(8, "SIGINT")]) == 130  # step 8: the end of epoch 2
    config = tmp_path / "run" / "config.toml"
    config.write_text(config.read_text().replace("epochs = 5", "epochs = 1"))
    capsys.readouterr()
    assert main(["train", "--resume", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "it has already trained 2 epochs; set epochs to at least 2" in " ".join(err.split())
    assert not (tmp_path / "run" / "summary.json").exists()


class Net(nn.Module):
    def __init__(self, hidden: int = 8):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(10, hidden), nn.ReLU(), nn.Linear(hidden, 2))

    def forward(self, x):
        return self.body(x)


def test_resume_with_a_module_of_another_shape_names_the_tensors_and_leaves_it_untouched(tmp_path):
    torch.manual_seed(0)
    interrupted(tmp_path / "run", 4, model=Net(8), epochs=5)
    wider = Net(16)
    before = {k: v.clone() for k, v in wider.state_dict().items()}
    with pytest.raises(RiskminError) as caught:
        riskmin.fit(wider, "lab1", directory=tmp_path / "run", resume=True, epochs=5, **SETTINGS)
    said = str(caught.value)
    assert said.startswith(f"cannot resume {tmp_path / 'run'}: the model given is not the one the run began with (")
    assert "body.0.weight is 8x10 in the run, 16x10 in the model" in said
    assert "size mismatch" not in said and "\n" not in said
    assert all(torch.equal(before[k], v) for k, v in wider.state_dict().items())  # nothing copied in half
    # the module the run began with resumes
    assert riskmin.fit(Net(8), "lab1", directory=tmp_path / "run", resume=True, epochs=5, **SETTINGS).history


pd = pytest.importorskip("pandas")


def test_a_run_stopped_in_python_is_told_to_the_command_line_as_unfinished(tmp_path, capsys):
    from riskmin._cli._main import main

    folder = tmp_path / "stopped"
    with pytest.raises(KeyboardInterrupt):
        riskmin.fit("linear", "lab1", epochs=3, progress=False, directory=folder, callbacks=[SignalAt(30, "SIGINT")])
    assert not (folder / "config.toml").exists()  # a fit from Python records its settings at the end
    (tmp_path / "new.csv").write_text(",".join(f"x{i}" for i in range(1, 11)) + "\n" + ",".join("1" * 10) + "\n")
    assert main(["predict", str(folder), str(tmp_path / "new.csv"), "--out", str(tmp_path / "p.csv")]) == 2
    assert capsys.readouterr().err == (
        f"error: run {folder} has not finished: its training stopped before the end; finish it with "
        f"riskmin.fit(model, data, directory='{folder}', resume=True) with the model, data and settings it began with, "
        "then use it\n")
    with pytest.raises(riskmin.RiskminError, match="has not finished"):
        riskmin.Run.load(folder)
