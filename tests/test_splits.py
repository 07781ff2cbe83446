"""Stratified splits, repeated k-fold and splits read from files: sizes, proportions, partitions, refusals."""

import pickle
import random

import numpy as np
import pytest
import torch

import riskmin
from riskmin._cli._main import main
from riskmin import Data, RiskminError, split
from riskmin.data import split_sizes
from riskmin.splits import class_counts, kfold_splits, read_splits, stratified_split


def classes(counts: list) -> Data:
    """Data with `counts[c]` rows of class c, in class order."""
    y = torch.cat([torch.full((count,), c) for c, count in enumerate(counts)])
    return Data(torch.arange(len(y), dtype=torch.float32)[:, None], y)


def test_split_sizes_are_the_sizes_split_cuts():
    for n in (8, 10, 99, 100, 1001):
        for train, val, test in ((None, 0.1, 0.1), (None, 0.0, 0.29), (0.71, 0.0, 0.29), (0.5, 0.2, 0.2), (None, 0.15, 0.3)):
            s = split(Data(torch.zeros(n, 1), torch.zeros(n, 1)), train=train, val=val, test=test, seed=0)
            assert split_sizes(n, train, val, test) == tuple(s.sizes().values())
    # 7 rows: training takes round(5.6) = 6 and validation 1, which leaves the test set asked for empty
    for cut in (lambda: split_sizes(7, None, 0.1, 0.1), lambda: split(Data(torch.zeros(7, 1), torch.zeros(7, 1)), seed=0)):
        with pytest.raises(RiskminError, match="give 6 training, 1 validation, 0 test rows, so the test set asked for would be empty"):
            cut()


def test_a_test_fraction_of_zero_leaves_no_test_row_however_the_rest_rounds():
    # 0.9 x 45 = 40.5 rounds to 40 and 0.1 x 45 to 4: the row between them goes to training, not to a test set
    for n in range(20, 300):  # from 20 rows every validation fraction here keeps a row
        for val in (0.0, 0.1, 0.15, 0.2, 0.25, 0.3):
            n_train, n_val, n_test = split_sizes(n, None, val, 0.0)
            assert n_test == 0 and n_train + n_val == n and abs(n_val - val * n) < 1, (n, val)
    assert split(Data(torch.zeros(45, 1), torch.zeros(45, 1)), val=0.1, test=0.0, seed=0).sizes() == {"train": 41, "val": 4, "test": 0}


def test_stratified_split_keeps_a_rare_class_in_every_test_split():
    data = classes([970, 30])  # 3% positives
    for seed in range(100):
        s = stratified_split(data, val=0.1, test=0.1, seed=seed)
        assert s.sizes() == split(data, val=0.1, test=0.1, seed=seed).sizes()
        # 30 positives x 100/1000 rows = exactly 3 in test and in validation, 24 in training
        assert [int(data.y[part].sum()) for part in (s.train, s.val, s.test)] == [24, 3, 3]
    rare = classes([990, 10])  # 1%: one positive in each test split of 100 rows when stratified
    assert all(int(rare.y[stratified_split(rare, seed=seed).test].sum()) == 1 for seed in range(100))
    unstratified = [int(rare.y[split(rare, seed=seed).test].sum()) for seed in range(100)]
    assert min(unstratified) == 0  # what stratifying prevents: some random test splits hold no positive


def test_stratified_parts_are_within_one_row_of_each_class_share():
    data = classes([13, 7, 29, 1, 50])
    n = len(data)
    for seed in range(20):
        s = stratified_split(data, train=0.6, val=0.15, test=0.2, seed=seed)
        rows = torch.cat([s.train, s.val, s.test])
        assert len(set(rows.tolist())) == len(rows)  # no row in two parts
        for part in (s.train, s.val, s.test):
            for c, count in enumerate((13, 7, 29, 1, 50)):
                share = count * len(part) / n
                assert share - 1 < int((data.y[part] == c).sum()) < share + 1


def test_stratified_split_is_deterministic_by_seed():
    data = classes([40, 60])
    first, again, other = (stratified_split(data, seed=seed) for seed in (3, 3, 4))
    assert torch.equal(first.test, again.test) and torch.equal(first.train, again.train)
    assert not torch.equal(first.test, other.test)


def test_class_counts_round_every_cell_and_keep_every_total():
    generator = torch.Generator().manual_seed(0)
    for counts, sizes in (([5, 5, 5], [5, 5, 5]), ([1] * 7, [3, 2, 2]), ([3, 4, 5, 6], [7, 1, 6, 4]), ([2, 2], [1, 1, 1, 1])):
        table = class_counts(counts, sizes, generator)
        n = sum(counts)
        assert [sum(row) for row in table] == counts
        assert [sum(row[p] for row in table) for p in range(len(sizes))] == sizes
        assert all(c * s // n <= table[i][p] <= -(-c * s // n) for i, c in enumerate(counts) for p, s in enumerate(sizes))


def test_class_counts_on_many_random_tables():
    draw = random.Random(0)
    generator = torch.Generator().manual_seed(0)
    for _ in range(300):
        counts = [draw.randint(1, 30) for _ in range(draw.randint(1, 12))]
        cuts = sorted(draw.randint(0, sum(counts)) for _ in range(draw.randint(1, 3)))
        sizes = [high - low for low, high in zip([0, *cuts], [*cuts, sum(counts)])]
        table = class_counts(counts, sizes, generator)
        assert [sum(row) for row in table] == counts
        assert [sum(row[p] for row in table) for p in range(len(sizes))] == sizes
        n = sum(counts)
        assert all(c * s // n <= table[i][p] <= -(-c * s // n) for i, c in enumerate(counts) for p, s in enumerate(sizes))


def test_stratifying_regression_targets_is_refused():
    with pytest.raises(RiskminError, match="need class-index targets"):
        stratified_split(Data(torch.zeros(10, 1), torch.zeros(10, 1)))
    with pytest.raises(RiskminError, match="class indices from 0, but y holds -1"):
        kfold_splits(Data(torch.zeros(10, 1), torch.tensor([-1, 0] * 5)), stratify=True)


def test_kfold_folds_partition_the_rows_and_repetitions_differ():
    data = classes([20, 3])
    splits = kfold_splits(data, folds=5, repetitions=3, val=0.25, seed=7)
    assert [(r, k) for r, k, _ in splits] == [(r, k) for r in range(3) for k in range(5)]
    for repetition in range(3):
        tests = [s.test for r, _, s in splits if r == repetition]
        assert sorted(torch.cat(tests).tolist()) == list(range(23))  # every row is tested once
        assert sorted(len(t) for t in tests) == [4, 4, 5, 5, 5]  # 23 = 5 + 5 + 5 + 4 + 4
        for _, _, s in splits[repetition * 5:(repetition + 1) * 5]:
            # 18 or 19 rows outside the test fold: round(0.25 x 18) = 4, round(0.25 x 19) = 5
            assert len(s.val) == round(0.25 * (23 - len(s.test))) and s.seed == 7 + repetition
            assert sorted(torch.cat([s.train, s.val, s.test]).tolist()) == list(range(23))
    first_folds = [set(s.test.tolist()) for r, _, s in splits if r == 0]
    second_folds = [set(s.test.tolist()) for r, _, s in splits if r == 1]
    assert first_folds != second_folds


def test_stratified_kfold_gives_each_fold_its_share_of_each_class():
    data = classes([20, 3])
    for _, _, s in kfold_splits(data, folds=3, repetitions=4, seed=0, stratify=True):
        assert int(data.y[s.test].sum()) == 1  # 3 positives in 3 folds: one each
        assert int((data.y[s.test] == 0).sum()) in (6, 7)


@pytest.mark.parametrize("arguments, message", [
    (dict(folds=1), "folds=1 is not allowed"),
    (dict(folds=11), "from 2 to the 10 rows"),
    (dict(repetitions=0), "repetitions=0 is not allowed"),
    (dict(val=1.0), "val=1.0 is not allowed"),
    (dict(folds=2, val=0.95), "leaves no training row"),
])
def test_bad_kfold_settings_are_refused(arguments, message):
    with pytest.raises(RiskminError, match=message):
        kfold_splits(Data(torch.zeros(10, 1), torch.zeros(10, 1)), **arguments)


def test_read_splits_round_trips_npz_and_csv(tmp_path):
    splits = kfold_splits(classes([6, 4]), folds=5, repetitions=2, val=0.2, seed=1)
    arrays = {}
    for i, (_, _, s) in enumerate(splits):
        arrays.update({f"train_{i}": s.train.numpy(), f"val_{i}": s.val.numpy(), f"test_{i}": s.test.numpy()})
    np.savez(tmp_path / "splits.npz", **arrays)
    lines = ["split,train,val,test"] + [f"{i},{' '.join(map(str, s.train.tolist()))},{' '.join(map(str, s.val.tolist()))},"
                                        f"{' '.join(map(str, s.test.tolist()))}" for i, (_, _, s) in enumerate(splits)]
    (tmp_path / "splits.csv").write_text("\n".join(lines) + "\n")
    for name in ("splits.npz", "splits.csv"):
        read = read_splits(tmp_path / name, n_rows=10)
        assert len(read) == 10
        for (train, val, test), (_, _, s) in zip(read, splits):
            assert torch.equal(train, s.train) and torch.equal(val, s.val) and torch.equal(test, s.test)
            assert train.dtype == torch.int64


def test_read_splits_without_validation(tmp_path):
    (tmp_path / "two.csv").write_text("train,test\n0 1 2,3\n3 2 1,0\n")
    np.savez(tmp_path / "two.npz", train_0=np.array([0, 1, 2]), test_0=np.array([3], dtype=np.int32))
    (train, val, test), _ = read_splits(tmp_path / "two.csv", 4)
    assert train.tolist() == [0, 1, 2] and val.tolist() == [] and test.tolist() == [3]
    assert read_splits(tmp_path / "two.npz", 4)[0][2].tolist() == [3]


def npz(path, **arrays):
    np.savez(path, **arrays)
    return path


BAD_NPZ = [
    (dict(train_0=np.array([0, 1]), test_0=np.array([2, 10])), "holds row 10, but the data has 10 rows"),
    (dict(train_0=np.array([0, -1]), test_0=np.array([2])), "negative row index -1"),
    (dict(train_0=np.array([0, 1, 1]), test_0=np.array([2])), "lists row 1 more than once"),
    (dict(train_0=np.array([0, 1]), val_0=np.array([3]), test_0=np.array([1, 2])), "puts row 1 in both train and test"),
    (dict(train_0=np.array([0, 1]), val_0=np.array([2])), "split 0 has no test rows"),
    (dict(train_0=np.array([], dtype=np.int64), test_0=np.array([1])), "split 0 has no train rows"),
    (dict(train_0=np.array([0.0, 1.0]), test_0=np.array([2])), "float64 array"),
    (dict(train_0=np.array([[0, 1]]), test_0=np.array([2])), "1-D array"),
    (dict(train_0=np.array([0]), test_0=np.array([1]), train_2=np.array([0]), test_2=np.array([1])), "no arrays for split 1"),
    (dict(train_0=np.array([0]), folds=np.array([1])), "array named 'folds'"),
    (dict(train_0=np.array([0, 1], dtype=object), test_0=np.array([2])), "object \\(pickled\\) array"),
]


@pytest.mark.parametrize("arrays, message", BAD_NPZ)
def test_bad_npz_splits_are_refused(tmp_path, arrays, message):
    with pytest.raises(RiskminError, match=message):
        read_splits(npz(tmp_path / "bad.npz", **arrays), n_rows=10)


BAD_CSV = [
    ("train,test\n0 1,2 10\n", "holds row 10, but the data has 10 rows"),
    ("train,test\n0 -1,2\n", "negative row index -1"),
    ("train,test\n0 1.5,2\n", "holds '1.5', which is not a row index"),
    ("train,test\n0 1 0,2\n", "lists row 0 more than once"),
    ("train,val,test\n0 1,1,2\n", "puts row 1 in both train and val"),
    ("train,val,test\n0 1,3,\n", "has no test rows"),
    ("train,val\n0 1,2\n", "header must name train and test"),
    ("train,test,fold\n0,1,0\n", "header must name train and test"),
    ("train,test\n0 1,2,3\n", "line 2 has 3 cells for the 2 columns"),
    ("train,test\n", "holds no split"),
]


@pytest.mark.parametrize("text, message", BAD_CSV)
def test_bad_csv_splits_are_refused(tmp_path, text, message):
    (tmp_path / "bad.csv").write_text(text)
    with pytest.raises(RiskminError, match=message):
        read_splits(tmp_path / "bad.csv", n_rows=10)


def test_pickles_and_other_files_are_refused_unread(tmp_path):
    (tmp_path / "pickled.npz").write_bytes(pickle.dumps({"train_0": [0, 1], "test_0": [2]}))
    (tmp_path / "text.npz").write_text("0 1 2")
    (tmp_path / "splits.json").write_text("{}")
    for name, message in (("pickled.npz", "is a pickle, which riskmin never loads"), ("text.npz", "not an .npz \\(zip\\) archive"),
                          ("splits.json", "must be .npz or .csv"), ("absent.npz", "does not exist")):
        with pytest.raises(RiskminError, match=message):
            read_splits(tmp_path / name, n_rows=10)


def test_split_takes_what_fit_takes_and_gives_the_rows_fit_trains_on():
    pd = pytest.importorskip("pandas")
    generator = np.random.default_rng(0)
    x, y = generator.normal(size=(90, 3)), generator.normal(size=90)
    pair = riskmin.split((x, y), seed=4)
    assert pair.sizes() == {"train": 72, "val": 9, "test": 9}  # the rows, not the two items of the pair
    table = pd.DataFrame(x, columns=["a", "b", "c"]).assign(y=y)
    framed = riskmin.split(table, target="y", seed=4)
    assert all(torch.equal(getattr(pair, part), getattr(framed, part)) for part in ("train", "val", "test"))
    by_splits = riskmin.fit("linear", framed, seed=4, epochs=2, progress=False)  # the seed: of the initial weights
    by_seed = riskmin.fit("linear", table, target="y", seed=4, epochs=2, progress=False)
    assert by_splits.summary["test_loss"] == by_seed.summary["test_loss"]
    with pytest.raises(riskmin.RiskminError, match="^a DataFrame needs target= naming the column to predict"):
        riskmin.split(table)
    assert riskmin.split("line", split="tutorial").sizes() == {"train": 80, "val": 20, "test": 0}  # as fit splits it
    with pytest.raises(riskmin.RiskminError, match="^lr= is a setting of the training, not of the split; give it to fit"):
        riskmin.split(table, target="y", lr=0.1)
    with pytest.raises(riskmin.RiskminError, match="^data is Splits already"):
        riskmin.split(framed)


def test_split_keywords_beside_splits_given_are_noted_as_unused():
    splits = split(riskmin.load("lab1"), seed=0)
    with pytest.warns(riskmin.RiskminNote, match=r"^val=0.3 and test=0.3 are not used: the Splits given fix the rows of "
                                                 r"each split \(riskmin.split makes others\)$"):
        run = riskmin.fit("linear", splits, val=0.3, test=0.3, epochs=1, progress=False)
    assert (run.summary["n_val"], run.summary["n_test"]) == (100, 100)


def test_patience_over_a_splits_file_without_validation_rows_names_the_file_not_val(tmp_path, capsys):
    path = tmp_path / "noval.csv"
    path.write_text("train,test\n" + "\n".join(f"{' '.join(map(str, range(r, 80 + r)))},{' '.join(map(str, range(80 + r, 100 + r)))}"
                                                for r in range(3)) + "\n")
    # "but val = 0; set --val 0.1", which the file's splits leave unused: the same sentence followed
    assert main(["montecarlo", "lab1", "--splits", str(path), "--patience", "3", "--val", "0.1", "--epochs", "1",
                 "--out", str(tmp_path / "runs")]) == 2
    assert capsys.readouterr().err == (
        f"error: patience needs a validation split but a split of {path} has no validation rows; give every split a val "
        'column, or --monitor loss (monitor="loss") to judge by the training loss\n')
