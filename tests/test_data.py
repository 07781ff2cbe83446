import re

import numpy as np
import pytest
import torch

import riskmin.datasets
from riskmin import Data, RiskminError
from riskmin.data import Standardizer, TensorBatches


def test_split_gives_disjoint_index_sets_that_cover_the_fractions(lab1):
    splits = riskmin.split(lab1, train=0.7, val=0.2, test=0.1, seed=5)
    assert splits.sizes() == {"train": 700, "val": 200, "test": 100}
    everything = torch.cat([splits.train, splits.val, splits.test])
    assert len(set(everything.tolist())) == 1000
    assert splits.train.dtype == torch.long and splits.data is lab1  # indices into the data, not copies of it


def test_split_depends_on_the_seed_only(lab1):
    assert torch.equal(riskmin.split(lab1, seed=1).train, riskmin.split(lab1, seed=1).train)
    assert not torch.equal(riskmin.split(lab1, seed=1).train, riskmin.split(lab1, seed=2).train)


def test_split_refuses_fractions_that_leave_no_room(lab1):
    with pytest.raises(RiskminError, match="sum to at most 1"):
        riskmin.split(lab1, train=0.9, val=0.1, test=0.1)


def test_line_reproduces_the_numpy_generation_byte_for_byte():
    np.random.seed(42)
    x = np.random.rand(100, 1)
    y = 1 + 2 * x + .1 * np.random.randn(100, 1)
    idx = np.arange(100)
    np.random.shuffle(idx)
    data = riskmin.load("line")
    assert data.x.numpy().tobytes() == x.astype(np.float32).tobytes()
    assert data.y.numpy().tobytes() == y.astype(np.float32).tobytes()
    train, val = data.tutorial_split
    assert train.tolist() == idx[:80].tolist() and val.tolist() == idx[80:].tolist()


def test_lab1_is_a_bernoulli_linear_map_plus_noise():
    data = riskmin.datasets.lab1(n_samples=4000, n_inputs=6, n_outputs=3, noise=0.0, seed=7)
    A = torch.linalg.lstsq(data.x, data.y).solution.T
    assert torch.allclose(A, A.round(), atol=1e-4) and set(A.round().unique().tolist()) <= {0.0, 1.0}
    noisy = riskmin.datasets.lab1(n_samples=4000, n_inputs=6, n_outputs=3, noise=0.5, seed=7)
    assert (noisy.y - data.y).std().item() == pytest.approx(0.5, rel=0.05)


def test_standardizer_uses_training_rows_only(lab1):
    splits = riskmin.split(lab1, seed=0)
    run = riskmin.fit("linear", splits, epochs=1, progress=False)
    expected = lab1.x[splits.train].mean(0)
    assert torch.allclose(run.preprocessing.mean, expected)
    assert not torch.allclose(run.preprocessing.mean, lab1.x.mean(0))
    scaled = run.preprocessing(lab1.x[splits.train])
    assert torch.allclose(scaled.mean(0), torch.zeros(10), atol=1e-5)
    assert torch.allclose(scaled.std(0, unbiased=False), torch.ones(10), atol=1e-4)


def test_constant_columns_are_left_unscaled():
    x = torch.tensor([[1.0, 3.0], [2.0, 3.0], [3.0, 3.0]])
    assert Standardizer.fit(x)(x)[:, 1].tolist() == [0.0, 0.0, 0.0]


def test_epoch_batches_cover_every_row_once_and_differ_between_epochs():
    x = torch.arange(10.0)[:, None]
    batches = TensorBatches(x, x, batch_size=3, generator=torch.Generator().manual_seed(0))
    first = torch.cat([b for b, _ in batches])[:, 0]
    second = torch.cat([b for b, _ in batches])[:, 0]
    assert sorted(first.tolist()) == list(range(10)) and len(batches) == 4
    assert not torch.equal(first, second)
    dropped = TensorBatches(x, x, batch_size=3, generator=torch.Generator().manual_seed(0), drop_last=True)
    assert [len(b) for b, _ in dropped] == [3, 3, 3]


def test_random_sampling_draws_batches_with_replacement():
    x = torch.arange(10.0)[:, None]
    batches = TensorBatches(x, x, batch_size=5, generator=torch.Generator().manual_seed(0), sampling="random")
    drawn = torch.cat([b for b, _ in batches])[:, 0]
    assert len(batches) == 2 and len(drawn) == 10
    assert len(set(drawn.tolist())) < 10  # with replacement some rows repeat (fixed seed: not flaky)


@pytest.mark.parametrize("x, y, message", [
    (torch.zeros(3, 2), torch.zeros(4, 1), "x has 3 samples but y has 4"),
    (torch.tensor([[1.0], [float("nan")]]), torch.zeros(2, 1), "x holds NaN"),
    (torch.zeros(2, 1), torch.tensor([[1.0], [float("inf")]]), "y holds NaN or infinite values"),
    (torch.zeros(2, 2, 2), torch.zeros(2, 1), "samples x features"),
    (torch.zeros(1, 2), torch.zeros(1, 1), "at least 2"),
])
def test_data_refuses_bad_tensors(x, y, message):
    with pytest.raises(RiskminError, match=message):
        Data(x, y)


def test_unknown_dataset_lists_the_known_ones():
    with pytest.raises(RiskminError, match="built-in ones are lab1, line"):
        riskmin.load("lab2")


# constant feature columns: one rule for a run and for each run of a Monte-Carlo experiment, whichever its engine
def rare_pixels(missing="error"):
    """Rows like scikit-learn's digits: a column 0 in every row, one 0 but in two rows (constant on some training
    splits, not on others), one 7 but for holes (missing values), and a column that varies."""
    generator = torch.Generator().manual_seed(0)
    x = torch.zeros(200, 4)
    x[[17, 150], 1] = 4.0
    x[:, 2] = 7.0
    if missing == "mean":
        x[::9, 2] = float("nan")
    x[:, 3] = torch.randn(200, generator=generator)
    return Data(x, torch.randn(200, 1, generator=generator), ["blank", "rare", "holes", "noise"], missing=missing)


@pytest.mark.parametrize("missing", ["error", "mean"])
def test_the_constant_columns_of_each_training_split_are_those_its_run_finds(missing):
    from riskmin.data import constant_columns, rows_at

    data = rare_pixels(missing)
    trainings = [riskmin.split(data, seed=seed).train for seed in range(8)]
    found = constant_columns(data, trainings)
    fills = missing == "mean"
    assert found == [Standardizer.fit(rows_at(data.x, rows), fills=fills).constant for rows in trainings]
    assert {tuple(columns) for columns in found} == {(0, 2), (0, 1, 2)}  # "rare" is constant on some splits only


def test_one_run_and_an_experiment_say_their_constant_columns_in_one_sentence():
    from riskmin.data import constant_note

    names = ["blank", "rare", "holes", "noise"]
    assert constant_note(names, [[0, 2]]) == ("feature columns blank, holes are constant on the training split; they "
                                              "carry no information")
    assert constant_note(names, [[0, 2], [0, 1, 2], [0, 2]]) == (
        "feature columns blank, holes are constant on the training split of every run, rare on that of 1 of the 3 "
        "runs; they carry no information")
    assert constant_note(names, [[1], []]) == ("feature columns rare are constant on the training split of 1 of the 2 "
                                               "runs; they carry no information")
    assert constant_note(names, [[], []]) == ""


@pytest.mark.parametrize("task", ["auto", "classification", "regression"])
def test_an_infinite_value_in_the_y_of_an_npz_file_is_refused_before_its_task_is_guessed(tmp_path, task):
    y = np.array([0.0, 1.0, 2.0] * 10)
    y[4] = np.inf
    np.savez(tmp_path / "pairs.npz", x=np.ones((30, 2)), y=y)
    with pytest.raises(RiskminError) as error:
        riskmin.load(str(tmp_path / "pairs.npz"), riskmin.Config(task=task))
    assert str(error.value).startswith("y holds NaN or infinite values, first at row 4 (counting from 0), in column y0")


def test_a_constant_column_is_listed_also_when_another_column_has_holes():
    """With holes the std is taken over the values present, and a column of 0.1 in every row has a float32 mean a few
    ulps off 0.1, so a spread of 1e-8: compared exactly, it is constant, as it is in a split without holes."""
    x = torch.randn(1000, 2, generator=torch.Generator().manual_seed(0))
    x[:, 1] = 0.1
    assert Standardizer.fit(x).constant == [1]
    x[::10, 0] = float("nan")
    assert Standardizer.fit(x, fills=True).constant == [1]


def test_row_labels_given_as_a_numpy_array_name_rows_by_their_labels():
    x, y = torch.tensor([[1.0], [float("nan")], [3.0]]), torch.ones(3, 1)
    for labels, named in ((np.array(["a", "b", "c"]), "the row with index 'b'"), (np.array([10, 20, 30]), "the row with index 20")):
        with pytest.raises(riskmin.RiskminError, match=f"^x holds NaN or infinite values, first at {named}, in column x0;"):
            riskmin.fit("linear", riskmin.Data(x, y, row_labels=labels), epochs=1, progress=False)


@pytest.mark.parametrize("names, said", [
    (dict(feature_names=["a", "a"]), "feature_names names a twice; give each column a name of its own"),
    (dict(feature_names=["a"]), "feature_names gives 1 name for 2 columns; give one a column, in order"),
    (dict(target_names=["t", "u"]), "target_names gives 2 names for 1 column; give one a column, in order"),
])
def test_names_that_are_not_one_a_column_are_refused_in_one_sentence(names, said):
    # ["a", "a"] trained, and predict on a DataFrame of one column a fed it to both features: [4, 0] for [1, 3]
    with pytest.raises(RiskminError, match=f"^{said}$"):
        riskmin.Data(torch.randn(10, 2), torch.randn(10, 1), **names)


@pytest.mark.parametrize("train, said", [
    (torch.arange(80).float(), "train of the split given is a float32 array of shape (80,); give a 1-D array of integer row indices"),
    (torch.tensor([0, 1, 500]), "train of the split given holds row 500, but the data has 100 rows (0 to 99)"),
    ([0, 1, -1], "train of the split given holds the negative row index -1; row indices count from 0"),
    (torch.arange(85), "the split given puts row 80 in both train and val; the parts of a split must not overlap"),
])
def test_splits_of_rows_the_data_lacks_or_shares_between_parts_are_refused_in_one_sentence(train, said):
    # torch's index_select and IndexError, and test metrics of rows trained on without a word
    data = Data(torch.randn(100, 2), torch.randn(100, 1))
    with pytest.raises(RiskminError, match=f"^{re.escape(said)}$"):
        riskmin.fit("linear", riskmin.data.Splits(data, train, torch.arange(80, 90), torch.arange(90, 100)), epochs=1, progress=False)


def test_splits_take_row_numbers_as_lists_or_arrays_and_a_row_twice_in_training():
    data = Data(torch.randn(100, 2), torch.randn(100, 1))
    bootstrap = riskmin.data.Splits(data, np.array([0, 0, 1, 2, 2]), [3, 4], [5, 6])
    run = riskmin.fit("linear", bootstrap, epochs=1, batch_size=5, progress=False)  # numpy's rows: a TypeError, before
    assert (run.summary["n_train"], run.summary["n_val"], run.summary["n_test"]) == (5, 2, 2)
