"""riskmin's messages go through Python's warnings: a script can filter, record or escalate them; the command line
prints each as a `warning:` line, continued indented past 80 columns."""

import warnings

import pytest
import torch

import riskmin
from riskmin._cli._main import main
from said import unwrapped


def constant_column_data():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(200, 3, generator=generator)
    x[:, 1] = 5.0
    return riskmin.Data(x, x[:, :1] * 2.0)


def test_a_script_can_record_a_message_as_a_riskmin_warning():
    with pytest.warns(riskmin.RiskminWarning, match="feature columns x1 are constant on the training split") as caught:
        riskmin.fit("linear", constant_column_data(), epochs=1, progress=False)
    assert all(not str(w.message).startswith("warning:") for w in caught)  # the category says what it is


def test_a_script_can_escalate_a_message_into_an_error():
    with warnings.catch_warnings():
        warnings.simplefilter("error", riskmin.RiskminWarning)
        with pytest.raises(riskmin.RiskminWarning, match="constant on the training split"):
            riskmin.fit("linear", constant_column_data(), epochs=1, progress=False)


def test_the_command_line_prints_each_message_as_a_warning_line_and_leaves_the_filters_as_they_were(tmp_path, capsys):
    x = torch.randn(100, 2)
    x[:, 0] = 1.0
    path = tmp_path / "table.csv"
    path.write_text("a,b,y\n" + "\n".join(f"{float(r[0])},{float(r[1])},{float(r[1]) * 2}" for r in x) + "\n")
    before = list(warnings.filters)
    assert main(["train", str(path), "--target", "y", "--epochs", "1", "--progress", "off", "--out", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert err.splitlines()[:2] == ["warning: feature columns a are constant on the training split; they carry no",
                                    "  information"]
    assert warnings.filters == before


def test_numerical_trouble_is_a_category_of_its_own_that_a_script_can_escalate_alone():
    """A run far worse than predicting the mean is RiskminNumerics: a sweep can stop on it while data notes go on."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", riskmin.RiskminWarning)
        warnings.simplefilter("error", riskmin.RiskminNumerics)
        riskmin.fit("linear", constant_column_data(), epochs=1, progress=False)  # a data note alone: no error
        with pytest.raises(riskmin.RiskminNumerics, match=r"^the final val r2 is .* lower --lr"):
            riskmin.fit("linear", "line", optimizer="adam", lr=1e6, epochs=2)


def table_with_an_id_and_a_hole(tmp_path):
    path = tmp_path / "people.csv"
    rows = [f"{i},{i % 7 * 1.5},{(i * 3) % 11 * 0.5},{i % 7 * 3.0 + 1.0}" for i in range(60)]
    rows[5] = "5,,1.0,4.0"  # a missing feature value
    path.write_text("id,a,b,y\n" + "\n".join(rows) + "\n")
    return path


@pytest.mark.parametrize("read", ["load", "fit", "montecarlo"])
def test_a_script_reading_a_file_hears_every_note_the_command_line_prints_in_its_own_words(tmp_path, capsys, read):
    path = table_with_an_id_and_a_hole(tmp_path)
    assert main(["train", str(path), "--target", "y", "--missing", "drop", "--epochs", "1", "--progress", "off",
                 "--out", str(tmp_path / "runs")]) == 0
    printed = unwrapped(capsys.readouterr().out)
    config = riskmin.Config(target="y", missing="drop", epochs=1, progress=False)
    flags = riskmin.datasets.read_data(str(path), config).notes  # what the command reads, saying nothing
    assert len(flags) == 3 and "dropped 1 of 60 rows" in flags[2] and all("--" in note for note in flags[:2])
    keywords = [riskmin._data._frames.in_python(note) for note in flags]
    calls = {"load": lambda: riskmin.load(str(path), config), "fit": lambda: riskmin.fit("linear", str(path), config),
             "montecarlo": lambda: riskmin.montecarlo("linear", str(path), runs=2, config=config)}
    with pytest.warns(riskmin.RiskminNote) as caught:
        result = calls[read]()
    told = [str(w.message) for w in caught if w.category is riskmin.RiskminNote]
    assert all(note in printed for note in flags)  # the command printed each note, in its flags' words
    assert all(told.count(note) == 1 for note in keywords) and not any("--" in text for text in told)
    if read == "load":  # and the Data a script holds says them as it was told them
        assert result.notes == keywords


def test_a_script_reading_a_file_is_told_its_mistake_in_keywords(tmp_path):
    path = table_with_an_id_and_a_hole(tmp_path)
    with pytest.raises(riskmin.RiskminError, match="name the column to predict with target=;"):
        riskmin.fit("linear", str(path), epochs=1, progress=False)


def sigmoid_data():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(200, 3, generator=generator)
    return riskmin.Data(x, (x[:, :1] > 0).float())


@pytest.mark.parametrize("what, said", [
    (lambda: riskmin.fit("linear", constant_column_data(), epochs=1, progress=False), "constant on the training split"),
    # warned under torch.no_grad, a decorator of torch's between riskmin's frames
    (lambda: riskmin.fit(torch.nn.Sequential(torch.nn.Linear(3, 1), torch.nn.Sigmoid()), sigmoid_data(), loss="bce",
                         epochs=1, progress=False), "sigmoid"),
])
def test_a_message_points_at_the_users_own_line_that_called_riskmin(what, said):
    with pytest.warns(riskmin.RiskminWarning, match=said) as caught:
        what()
    assert {w.filename for w in caught if issubclass(w.category, riskmin.RiskminWarning)} == {__file__}


def test_the_command_line_keeps_each_message_within_80_columns(tmp_path, capsys):
    path = table_with_an_id_and_a_hole(tmp_path)
    assert main(["montecarlo", str(path), "--target", "y", "--missing", "drop", "--runs", "2", "--epochs", "1",
                 "--progress", "off", "--out", str(tmp_path / "runs")]) == 0
    out, err = capsys.readouterr()
    assert "intervals from 2 runs are wide" in err and "task: regression (guessed)" in out
    notes = out[:out.index("\n", out.index("dropped 1 of 60 rows"))]  # the notes on the data, the last one whole
    assert max(len(line) for line in out.splitlines() + err.splitlines()) <= 80  # the tables too
    assert len(unwrapped(notes).splitlines()[0]) > 80
    # a message longer than a line goes on, indented, on the next: each still reads as one
    warning = next(i for i, line in enumerate(err.splitlines()) if line.startswith("warning: intervals"))
    assert err.splitlines()[warning + 1].startswith("  ")
