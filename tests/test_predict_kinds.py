"""riskmin.predict(run, x, kind=...): values, class names and probabilities, the same as `riskmin predict` writes."""

import csv

import numpy as np
import pytest
import torch

import riskmin
from riskmin import RiskminError
from riskmin._cli._main import main


@pytest.fixture
def fruit(tmp_path):
    """A small table with a text target of three classes that a linear model separates."""
    rng = np.random.default_rng(0)
    weight = rng.uniform(0, 3, 90)
    names = np.array(["apple", "banana", "cherry"])[np.minimum(weight.astype(int), 2)]
    path = tmp_path / "fruit.csv"
    path.write_text("weight,fruit\n" + "".join(f"{w:.4f},{n}\n" for w, n in zip(weight, names)))
    return path


def trained(path, **settings):
    return riskmin.fit("linear", str(path), target="fruit", epochs=30, lr=0.1, progress=False, **settings)


def test_class_and_proba_are_what_the_predict_command_writes(fruit, tmp_path):
    run = trained(fruit)
    run.save(tmp_path / "run")
    assert main(["predict", str(tmp_path / "run"), str(fruit), "--out", str(tmp_path / "p.csv")]) == 0
    with open(tmp_path / "p.csv") as file:
        written = list(csv.DictReader(file))
    x = torch.tensor([[float(line.split(",")[0])] for line in fruit.read_text().splitlines()[1:]])
    labels, shares = riskmin.predict(run, x.numpy(), kind="class"), riskmin.predict(run, x, kind="proba")  # NumPy holds names
    assert labels.tolist() == [row["predicted_fruit"] for row in written]
    assert shares.numpy() == pytest.approx(np.array([[float(row[f"probability_{c}"]) for c in ("apple", "banana", "cherry")]
                                                     for row in written]), abs=1e-7)
    assert shares.sum(1).numpy() == pytest.approx(np.ones(len(x)), abs=1e-6)
    assert torch.equal(shares, torch.softmax(riskmin.predict(run, x), 1))
    assert (labels == np.array(["apple", "banana", "cherry"])[shares.argmax(1).numpy()]).all()


def test_bce_gives_two_named_classes_and_their_probabilities(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(60)
    path = tmp_path / "spam.csv"
    path.write_text("x,fruit\n" + "".join(f"{v:.4f},{'yes' if v > 0 else 'no'}\n" for v in x))
    run = trained(path, loss="bce")
    rows = torch.tensor([[-2.0], [2.0]])
    assert riskmin.predict(run, rows.numpy(), kind="class").tolist() == ["no", "yes"]
    assert riskmin.predict(run, rows, kind="class").tolist() == [0, 1]  # a tensor holds each class's index
    shares = riskmin.predict(run, rows, kind="proba")
    assert shares.shape == (2, 2) and torch.allclose(shares[:, 1], torch.sigmoid(riskmin.predict(run, rows)[:, 0]))


@pytest.mark.parametrize("kind, message", [
    ("probability", "kind='probability' is not a kind of prediction; choose one of value, class, proba"),
    ("proba", "kind='proba' needs a classifier (loss cross_entropy or bce) but this is a run trained with loss mse; use kind='value'"),
])
def test_a_kind_that_does_not_fit_is_refused(kind, message):
    run = riskmin.fit("linear", "line", split="tutorial", epochs=2, progress=False)
    with pytest.raises(RiskminError) as error:
        riskmin.predict(run, torch.zeros(1, 1), kind=kind)
    assert str(error.value) == message


def test_a_bare_module_has_values_only():
    with pytest.raises(RiskminError, match="a bare module, whose loss predict does not know"):
        riskmin.predict(torch.nn.Linear(1, 2), torch.zeros(1, 1), kind="class")


def test_no_rows_in_gives_no_rows_out_of_every_kind_and_type(fruit):
    import pandas as pd

    run = trained(fruit)
    frame = pd.DataFrame({"weight": [1.0, 2.5]}, index=[7, 9])
    for kind, width in (("value", 3), ("class", 1), ("proba", 3)):
        some, none = riskmin.predict(run, frame, kind=kind), riskmin.predict(run, frame.head(0), kind=kind)
        assert none.shape == (0, width) and list(none.columns) == list(some.columns)
    assert riskmin.predict(run, np.zeros((0, 1)), kind="class").shape == (0,)
    assert riskmin.predict(run, torch.zeros(0, 1)).shape == (0, 3)
