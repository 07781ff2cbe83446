"""riskmin.predict(run, x, kind=...): values, class names and probabilities, the same as `riskmin predict` writes."""

import csv
import warnings

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
    # taken in float64, each written row sums to 1 as read back, where float32's missed it by up to 1e-7
    sums = [float(row["probability_apple"]) + float(row["probability_banana"]) + float(row["probability_cherry"]) for row in written]
    assert max(abs(total - 1.0) for total in sums) <= 2.3e-16
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


def test_a_loss_of_ones_own_on_class_labels_gives_classes_and_probabilities_as_its_accuracy_reads_them():
    """It was refused, "needs a classifier", beside the accuracy and log loss the same run reported of its outputs."""
    x = torch.randn(120, 4, generator=torch.Generator().manual_seed(0))
    labels = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()  # 0, 1, 2
    torch.manual_seed(0)
    run = riskmin.fit(torch.nn.Linear(4, 3), (x, labels), loss=torch.nn.CrossEntropyLoss(label_smoothing=0.1), epochs=20,
                      lr=0.1, test=0.0, progress=False)
    classes, shares = riskmin.predict(run, x, kind="class"), riskmin.predict(run, x, kind="proba")
    torch.testing.assert_close(shares, torch.softmax(riskmin.predict(run, x), 1))
    assert torch.equal(classes, shares.argmax(1))
    assert (classes == labels).float().mean().item() == pytest.approx(riskmin.evaluate(run, (x, labels))["accuracy"])
    regression = riskmin.fit(torch.nn.Linear(4, 1), (x, x[:, :1]), loss=torch.nn.SmoothL1Loss(), epochs=1, progress=False)
    with pytest.raises(RiskminError, match="needs a classifier .* a run trained with loss custom"):
        riskmin.predict(regression, x, kind="class")


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


# A class comes back as the target's own label, in the target's own type, so that it compares equal to the target:
# a class of whole numbers given back as the text "0" compared unequal to every row of y (accuracy 0) and made
# sklearn.metrics refuse a "mix of label input types".
LABELS = [[0, 1, 2], [-1, 0, 1], [False, True], ["apple", "banana", "cherry"]]


def labelled(labels: list):
    """A DataFrame of one feature and a target a linear model separates, holding `labels` in their own dtype."""
    import pandas as pd

    rng = np.random.default_rng(0)
    weight = rng.uniform(0, len(labels), 90)
    target = pd.Series(labels).iloc[np.minimum(weight.astype(int), len(labels) - 1)].reset_index(drop=True)
    return pd.DataFrame({"weight": weight, "label": target})


def labelled_run(data, **settings):
    return riskmin.fit("linear", data, target="label", epochs=30, lr=0.1, progress=False, **settings)


@pytest.mark.parametrize("labels", LABELS, ids=["codes", "signs", "true/false", "text"])
def test_a_class_comes_back_in_the_targets_own_type_and_compares_equal_to_it(labels):
    metrics = pytest.importorskip("sklearn.metrics")
    table = labelled(labels)
    run = labelled_run(table)
    rows = table.drop(columns="label")
    frame, array = riskmin.predict(run, rows, kind="class")["label"], riskmin.predict(run, rows.to_numpy(), kind="class")
    assert run.data_names["classes"] == labels
    assert frame.dtype == table["label"].dtype and array.dtype.kind == np.asarray(labels).dtype.kind
    assert [type(label) for label in set(frame.tolist() + array.tolist())] == [type(labels[0])] * len(set(labels))
    assert (frame == table["label"]).mean() == pytest.approx(riskmin.evaluate(run, table)["accuracy"])
    assert (array == table["label"].to_numpy()).mean() > 0.9
    metrics.f1_score(table["label"], frame, average="macro")  # refused a mix of label types: numbers and text
    # the labels predict gives, handed back to evaluate beside the rows, are read as labels, not as class positions
    pair = (rows.to_numpy(dtype=np.float32), table["label"].to_numpy())
    assert riskmin.evaluate(run, pair)["accuracy"] == riskmin.evaluate(run, table)["accuracy"]


@pytest.mark.parametrize("labels, kind", [([False, True], "b"), (["apple", "banana", "cherry"], "U"), (["-1", "0", "1"], "U"),
                                          ([10, 20, 30], "i"), ([-1, 1], "i")],
                         ids=["true/false", "text", "text of numbers", "whole numbers", "signs"])
def test_a_pair_of_numpy_arrays_gives_its_classes_back_in_their_type(labels, kind):
    table = labelled(labels)
    x, y = table[["weight"]].to_numpy(), np.array(table["label"].tolist())
    run = riskmin.fit("linear", (x, y), epochs=30, lr=0.1, progress=False)
    predicted = riskmin.predict(run, x, kind="class")
    assert y.dtype.kind == predicted.dtype.kind == kind and (predicted == y).mean() > 0.9  # text stays text
    assert run.summary["n_outputs"] == len(labels)  # one output a class
    assert riskmin.evaluate(run, (x, y))["accuracy"] == pytest.approx((predicted == y).mean())


def test_numbers_held_as_python_objects_are_numbers_and_whole_number_yes_no_targets_fit_bce():
    generator = np.random.default_rng(0)
    x = generator.normal(size=(200, 3))
    amounts = x @ np.array([1.0, -2.0, 0.5])
    run = riskmin.fit("linear", (x.astype(object), amounts.astype(object)), epochs=50, progress=False)  # df.to_numpy()
    assert run.summary["n_outputs"] == 1 and run.summary["test_r2"] > 0.9  # not 200 classes
    yes = (amounts > 0).astype(np.int64)
    run = riskmin.fit("linear", (x, yes), loss="bce", epochs=50, progress=False)
    assert run.summary["n_outputs"] == 1 and riskmin.evaluate(run, (x, yes))["accuracy"] > 0.9
    for told in (yes.astype(bool), torch.from_numpy(yes.astype(bool))):  # true/false: yes/no targets as well
        fitted = riskmin.fit("linear", (torch.as_tensor(x, dtype=torch.float32), told), loss="bce", epochs=50, progress=False)
        assert fitted.summary["n_outputs"] == 1
        assert riskmin.evaluate(fitted, (x, told))["accuracy"] == riskmin.evaluate(fitted, (x, yes))["accuracy"] > 0.9
    with pytest.warns(riskmin.RiskminNote, match=r'^task: regression on y, real numbers that are all 0 or 1; for yes/no '
                                                 r'labels pass loss="bce", or y as whole numbers \(classes\)$'):
        assert "test_r2" in riskmin.fit("linear", (x, yes.astype(float)), epochs=1, progress=False).summary  # regressed


def test_whole_numbers_as_floats_or_as_x_say_how_they_are_read():
    x = np.random.default_rng(0).normal(size=(60, 3))
    for labels, shown in ((np.arange(60) % 3 + 1.0, "1, 2, 3"), (np.arange(60) % 5 * 1.0, "0, 1, 2, ...")):
        with pytest.warns(riskmin.RiskminNote, match=rf"^task: regression on y, real numbers that are all whole \({shown}\), "
                                                     r"which a table would read as class labels; for classes pass y as "
                                                     r"whole numbers \(y.astype\(int\), y.long\(\)\)$"):
            assert "test_r2" in riskmin.fit("linear", (x, labels), epochs=1, progress=False).summary  # regressed, as said
    with warnings.catch_warnings():
        warnings.simplefilter("error", riskmin.RiskminNote)  # amounts, and whole scores a table regresses (ratings 1..5)
        riskmin.fit("linear", (x, x[:, 0]), epochs=1, progress=False)
        riskmin.fit("linear", (x, np.arange(60) % 5 + 1.0), epochs=1, progress=False)
    ids = torch.randint(0, 9, (60, 3), generator=torch.Generator().manual_seed(0))
    with pytest.warns(riskmin.RiskminNote, match=r"^x holds whole numbers \(int64\), read as features in float32 and "
                                                 r"standardized; for indices a model looks up \(an embedding\), give x as "
                                                 r"\(\(x,\), y\): several inputs reach the model as they are$"):
        riskmin.fit("linear", (ids, x[:, :1]), epochs=1, progress=False)


def test_evaluate_refuses_a_class_index_the_run_has_no_output_for():
    x = np.random.default_rng(0).normal(size=(60, 2))
    run = riskmin.fit("linear", (x, np.arange(60) % 3), epochs=2, progress=False)
    with pytest.raises(riskmin.RiskminError, match="^class label 5 is not one the run knows: its model has 3 outputs, for "
                                                   "the classes 0 to 2$"):
        riskmin.evaluate(run, (x[:4], np.array([0, 1, 5, 2])))


def older(run_path, classes: list):
    """The run at `run_path` as a riskmin that stored class labels as text alone wrote it: its classes `classes`, and
    summary.json's checksum of preprocessing.json to match."""
    import hashlib
    import json

    preprocessing = json.loads((run_path / "preprocessing.json").read_text())
    (run_path / "preprocessing.json").write_text(json.dumps({**preprocessing, "classes": classes}, indent=2) + "\n")
    summary = json.loads((run_path / "summary.json").read_text())
    summary["sha256"]["preprocessing.json"] = hashlib.sha256((run_path / "preprocessing.json").read_bytes()).hexdigest()
    (run_path / "summary.json").write_text(json.dumps(summary))
    return riskmin.Run.load(run_path)


def test_a_run_read_from_csv_saved_and_loaded_gives_numbers_and_an_older_run_keeps_its_text(tmp_path):
    import json
    import shutil

    table = labelled([-1, 0, 1])
    table.to_csv(tmp_path / "signs.csv", index=False)
    run = labelled_run(str(tmp_path / "signs.csv"))
    run.save(tmp_path / "run")
    assert json.loads((tmp_path / "run" / "preprocessing.json").read_text())["classes"] == [-1, 0, 1]  # JSON numbers
    rows = table.drop(columns="label")
    given = riskmin.predict(run, rows, kind="class")["label"]
    loaded = riskmin.predict(riskmin.Run.load(tmp_path / "run"), rows, kind="class")["label"]
    assert given.dtype == loaded.dtype == np.int64 and given.tolist() == loaded.tolist()
    assert (given == table["label"]).mean() > 0.9
    shutil.copytree(tmp_path / "run", tmp_path / "old")
    text = riskmin.predict(older(tmp_path / "old", ["-1", "0", "1"]), rows.to_numpy(), kind="class")
    assert text.tolist() == [str(label) for label in given]  # what that riskmin gave: text, kept as it was


@pytest.mark.parametrize("labels, spelled", [([-1, 0, 1], ["-1", "0", "1"]), ([False, True], ["false", "true"])])
def test_the_predict_command_writes_labels_as_a_csv_file_spells_them_and_its_run_gives_them_typed(
    tmp_path, labels, spelled
):
    import pandas as pd

    table = labelled(labels)
    path = tmp_path / "labelled.csv"
    path.write_text("weight,label\n" + "".join(f"{w},{str(v).lower()}\n" for w, v in zip(table["weight"], table["label"])))
    flags = ["--target", "label", "--name", "r", "--out", str(tmp_path / "runs"), "--epochs", "30", "--lr", "0.1"]
    assert main(["train", str(path), *flags, "--progress", "off"]) == 0
    assert main(["predict", str(tmp_path / "runs" / "r"), str(path), "--out", str(tmp_path / "p.csv")]) == 0
    with open(tmp_path / "p.csv") as file:
        written = list(csv.DictReader(file))
    assert list(written[0]) == ["predicted_label", *(f"probability_{label}" for label in spelled)]
    predicted = riskmin.predict(riskmin.Run.load(tmp_path / "runs" / "r"), table[["weight"]], kind="class")["label"]
    assert predicted.dtype == table["label"].dtype and (predicted == table["label"]).mean() > 0.9
    assert [row["predicted_label"] for row in written] == [str(label).lower() for label in predicted]
    assert (pd.read_csv(tmp_path / "p.csv")["predicted_label"] == predicted).all()  # read back, the same labels


def test_a_tensor_of_whole_numbers_holds_class_indices_in_fit_and_in_evaluate_alike():
    x = torch.randn(300, 3, generator=torch.Generator().manual_seed(0))
    y = torch.randint(1, 4, (300,), generator=torch.Generator().manual_seed(1))
    run = riskmin.fit("linear", (x, y), epochs=2, progress=False)
    assert run.summary["n_outputs"] == 4 and not run.data_names.get("classes")  # indices 0..3, as predict gives them
    assert riskmin.evaluate(run, (x, y))["accuracy"] == pytest.approx((riskmin.predict(run, x).argmax(1) == y).float().mean())
    regressed = riskmin.fit("linear", (x, y), task="regression", epochs=2, progress=False)
    assert riskmin.evaluate(regressed, (x, y)) == riskmin.evaluate(regressed, (x, y.double()))  # amounts, as fit read them
