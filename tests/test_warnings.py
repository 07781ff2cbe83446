"""riskmin's messages go through Python's warnings: a script can filter, record or escalate them; the command line
prints each as one line."""

import warnings

import pytest
import torch

import riskmin
from riskmin._cli._main import main


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


def test_the_command_line_prints_each_message_as_one_line_and_leaves_the_filters_as_they_were(tmp_path, capsys):
    x = torch.randn(100, 2)
    x[:, 0] = 1.0
    path = tmp_path / "table.csv"
    path.write_text("a,b,y\n" + "\n".join(f"{float(r[0])},{float(r[1])},{float(r[1]) * 2}" for r in x) + "\n")
    before = list(warnings.filters)
    assert main(["train", str(path), "--target", "y", "--epochs", "1", "--progress", "off", "--out", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "warning: feature columns a are constant on the training split; they carry no information" in err.splitlines()
    assert warnings.filters == before


def test_numerical_trouble_is_a_category_of_its_own_that_a_script_can_escalate_alone():
    """A run far worse than predicting the mean is RiskminNumerics: a sweep can stop on it while data notes go on."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", riskmin.RiskminWarning)
        warnings.simplefilter("error", riskmin.RiskminNumerics)
        riskmin.fit("linear", constant_column_data(), epochs=1, progress=False)  # a data note alone: no error
        with pytest.raises(riskmin.RiskminNumerics, match=r"^the final val r2 is .* lower --lr"):
            riskmin.fit("linear", "line", optimizer="adam", lr=1e6, epochs=2)
