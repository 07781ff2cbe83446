"""Live logs: metrics.csv grows a flushed row at each validation and a resumed run continues it exactly; TensorBoard."""

import pytest
import torch

import riskmin
from riskmin import RiskminError
from riskmin._training._checkpoint import TrainingInterrupted
from riskmin._runs._rundir import history_csv
from riskmin.callbacks import SignalAt

FAST = dict(progress=False)
SETTINGS = dict(hidden=(8,), epochs=3, batch_size=100, val_every=4, checkpoint_every=0, **FAST)


class ReadsTheLog:
    """At each validation, what another program reading metrics.csv sees."""

    def __init__(self, path):
        self.path, self.seen = path, []

    def on_validation_end(self, state):
        self.seen.append((len(state.history), self.path.read_text().splitlines()))


def test_metrics_csv_has_a_row_for_each_validation_as_soon_as_it_is_made(lab1, tmp_path):
    reader = ReadsTheLog(tmp_path / "metrics.csv")
    run = riskmin.fit("mlp", lab1, directory=tmp_path, callbacks=[reader], **SETTINGS)
    assert len(reader.seen) == len(run.history) == 6
    for validations, lines in reader.seen:
        assert len(lines) == 1 + validations and lines[0].startswith("epoch,step,loss,val_loss")
    assert (tmp_path / "metrics.csv").read_text() == history_csv(run.history)


def test_a_resumed_run_continues_metrics_csv_exactly(lab1, tmp_path):
    full = riskmin.fit("mlp", lab1, directory=tmp_path / "full", **SETTINGS)
    with pytest.raises(TrainingInterrupted):  # interrupted after step 10: checkpoint after 2 validations
        riskmin.fit("mlp", lab1, directory=tmp_path / "cut", callbacks=[SignalAt(10, "SIGINT")], **SETTINGS)
    log = tmp_path / "cut" / "metrics.csv"
    assert len(log.read_text().splitlines()) == 3
    with open(log, "a") as file:  # a validation logged after the last checkpoint, as a killed run leaves it
        file.write("3,12,9.9,9.9\n")
    riskmin.fit("mlp", lab1, directory=tmp_path / "cut", resume=True, **SETTINGS)
    seconds = (tmp_path / "full" / "metrics.csv").read_text().splitlines()[0].split(",").index("seconds")
    strip = lambda text: [",".join(v for i, v in enumerate(line.split(",")) if i != seconds) for line in text.splitlines()]
    assert strip(log.read_text()) == strip((tmp_path / "full" / "metrics.csv").read_text())
    assert len(full.history) == 6


class Writer:
    def __init__(self):
        self.scalars, self.closed = [], False

    def add_scalar(self, tag, value, step):
        self.scalars.append((tag, step))

    def flush(self):
        pass

    def close(self):
        self.closed = True


def test_tensorboard_gets_every_metric_by_step(lab1):
    from riskmin.callbacks import TensorBoard

    writer = Writer()
    riskmin.fit("linear", lab1, epochs=2, batch_size=400, callbacks=[TensorBoard("unused", writer=writer)], **FAST)
    assert ("val_loss", 2) in writer.scalars and ("lr", 4) in writer.scalars and ("loss", 4) in writer.scalars
    assert not any(tag in ("epoch", "step") for tag, _ in writer.scalars) and writer.closed


def test_log_tensorboard_needs_a_directory_and_the_package(lab1, tmp_path):
    with pytest.raises(RiskminError, match="log tensorboard writes into the run's directory; pass directory="):
        riskmin.fit("linear", lab1, epochs=1, log="tensorboard", **FAST)
    try:
        import torch.utils.tensorboard  # noqa: F401
    except ImportError:
        with pytest.raises(RiskminError, match=r"needs the tensorboard package; pip install riskmin\[tensorboard\]"):
            riskmin.fit("linear", lab1, epochs=1, log="tensorboard", directory=tmp_path, **FAST)
        assert not (tmp_path / "metrics.csv").exists()
    else:
        riskmin.fit("linear", lab1, epochs=1, log="tensorboard", directory=tmp_path, **FAST)
        assert list(tmp_path.glob("events.out.tfevents.*"))
