import os
import re
import runpy
import shutil
import subprocess
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).parent.parent / "examples"


def run_example(name, capsys) -> str:
    runpy.run_path(str(EXAMPLES / name), run_name="__main__")
    return capsys.readouterr().out


def numbers(text):
    return [float(v) for v in re.findall(r"-?\d+\.\d+", text)]


def test_every_example_has_a_test():
    tested = {"01_basic_linear.py", "02_basic_two_layer.py", "03_validation.py", "04_validation_and_test.py",
              "05_random_splits.py", "06_epochs.py", "07_tutorial_line.py", "08_table.py",
              "09_make_train_step.py", "10_training_step.py"}
    assert {p.name for p in EXAMPLES.glob("*.py")} == tested


def test_basic_linear_reaches_the_noise_floor(capsys):
    loss, noise = numbers(run_example("01_basic_linear.py", capsys))
    assert noise == 0.25 and loss < 0.3


def test_basic_two_layer_trains(capsys):
    assert numbers(run_example("02_basic_two_layer.py", capsys))[0] < 0.35


def test_validation_restores_the_best_step(capsys):
    out = run_example("03_validation.py", capsys)
    assert "weights restored" in out and numbers(out)[0] < 0.35


def test_validation_and_test_reports_the_gap(capsys):
    train, test, gap = numbers(run_example("04_validation_and_test.py", capsys))
    assert gap == pytest.approx(test - train, abs=1e-3) and test < 0.4


def test_random_splits_vary(capsys):
    values = numbers(run_example("05_random_splits.py", capsys))
    losses, (mean, std) = values[:5], values[5:]
    assert len(set(losses)) == 5 and std > 0 and mean == pytest.approx(sum(losses) / 5, abs=1e-3)


def test_epochs_with_early_stopping(capsys):
    out = run_example("06_epochs.py", capsys)
    epochs, steps = map(int, re.findall(r"(\d+) epochs of (\d+) steps", out)[0])
    assert steps == 25 and epochs < 200


def test_tutorial_line_prints_what_the_tutorial_prints(capsys):
    assert "a = 1.0235, b = 1.9690" in run_example("07_tutorial_line.py", capsys)


def test_table_guesses_classes_encodes_text_fills_holes_and_predicts_names(capsys):
    out = run_example("08_table.py", capsys)
    assert "task: classification (guessed): fruit has 3 classes (apple, banana, cherry)" in out
    assert "inputs: weight, colour=green, colour=red, colour=yellow" in out
    accuracy = float(re.search(r"test accuracy (\d\.\d+)", out).group(1))
    assert accuracy > 0.85
    assert re.findall(r"-> (\w+)", out) == ["apple", "banana", "cherry"]


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_demo_installs_what_the_demo_needs_and_no_test_dependencies():
    def planned(*target):  # the commands make would run, run by none
        env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}  # under `make test`
        command = ["make", "--no-print-directory", "-n", *target]
        return subprocess.run(command, cwd=EXAMPLES.parent, env=env, capture_output=True, text=True, check=True).stdout

    demo, test = planned("demo"), planned("test")
    assert "pip install --quiet -e .\n" in demo and "[test]" not in demo and "pytest" not in demo
    assert 'pip install --quiet -e ".[test]"' in test
    assert demo.index('"torch==') < demo.index("-e .")  # torch first: nothing else chooses its build
    cpu = planned("install", "TORCH_INDEX=https://download.pytorch.org/whl/cpu").splitlines()[0]
    assert cpu.endswith('"torch==2.13.0" --index-url https://download.pytorch.org/whl/cpu')


def test_make_train_step_with_the_tutorials_own_loss_and_optimizer_prints_what_the_tutorial_prints(capsys):
    out = run_example("09_make_train_step.py", capsys)
    assert "a = 1.0235, b = 1.9690" in out and "loss = custom (torch.nn.modules.loss.MSELoss), optimizer = custom" in out


def test_a_lightning_style_training_step_trains_through_fit(capsys):
    out = run_example("10_training_step.py", capsys)
    assert float(re.search(r"test accuracy (\d\.\d+)", out).group(1)) > 0.85
    assert "LightningModel.training_step" in out and "LightningModel.configure_optimizers" in out
