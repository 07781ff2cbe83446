"""Batches of several inputs: a tuple or a dict of tensors, in memory and from a Dataset, passed as model(*x) / model(**x)."""

import re

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

import riskmin
from riskmin import RiskminError

FAST = dict(progress=False)


def two_inputs(n=400):
    generator = torch.Generator().manual_seed(0)
    a, b = torch.randn(n, 3, generator=generator), torch.randn(n, 2, generator=generator)
    return a, b, a[:, :1] * 2 - b[:, 1:] + 0.1 * torch.randn(n, 1, generator=generator)


class Two(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.first, self.second = nn.Linear(3, 4), nn.Linear(2, 4)
        self.out = nn.Linear(4, 1)

    def forward(self, first, second):
        return self.out(torch.relu(self.first(first) + self.second(second)))


class Joined(Two):
    """The same model taking the two inputs side by side in one tensor."""

    def forward(self, x):
        return super().forward(x[:, :3], x[:, 3:])


@pytest.mark.parametrize("form", ["tuple", "dict"])
def test_several_inputs_train_exactly_as_the_same_columns_in_one_tensor(form):
    a, b, y = two_inputs()
    x = (a, b) if form == "tuple" else {"first": a, "second": b}
    settings = dict(optimizer="adam", lr=0.01, epochs=3, batch_size=32, restore_best=False, standardize=False, **FAST)
    several = riskmin.fit(Two(), (x, y), **settings)
    one = riskmin.fit(Joined(), (torch.cat([a, b], 1), y), **settings)  # every tensor sliced alike: the same batches
    for (name, ours), theirs in zip(several.model.state_dict().items(), one.model.state_dict().values()):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6, msg=name)
    assert not torch.equal(several.model.out.weight, Two().out.weight)
    assert several.summary["val_loss"] == pytest.approx(one.summary["val_loss"], rel=1e-5)
    assert riskmin.evaluate(several, (x, y))["loss"] == pytest.approx(riskmin.evaluate(one, (torch.cat([a, b], 1), y))["loss"], rel=1e-5)
    torch.testing.assert_close(riskmin.predict(several, x), riskmin.predict(one, torch.cat([a, b], 1)), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("form", ["tuple", "list", "dict"])
def test_several_inputs_given_as_numpy_arrays_train_as_the_same_tensors(form):
    a, b, y = two_inputs()
    tensors = (a, b) if form != "dict" else {"first": a, "second": b}
    arrays = {"tuple": (a.numpy(), b.numpy()), "list": [a.numpy(), b.numpy()], "dict": {"first": a.numpy(), "second": b.numpy()}}[form]
    # a tuple of arrays was read as one x of shape (2, 400, 3), a dict as torch's "Could not infer dtype of dict"
    settings = dict(epochs=2, batch_size=32, **FAST)
    from_arrays, from_tensors = riskmin.fit(Two(), (arrays, y.numpy()), **settings), riskmin.fit(Two(), (tensors, y), **settings)
    for ours, theirs in zip(from_arrays.model.state_dict().values(), from_tensors.model.state_dict().values()):
        assert torch.equal(ours, theirs)


class Pairs(Dataset):
    def __init__(self, as_dict):
        self.a, self.b, self.y = two_inputs()
        self.as_dict = as_dict

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        x = {"first": self.a[i], "second": self.b[i]} if self.as_dict else (self.a[i], self.b[i])
        return x, self.y[i]


@pytest.mark.parametrize("as_dict", [False, True])
def test_a_dataset_of_several_inputs_trains_through_a_dataloader(as_dict):
    run = riskmin.fit(Two(), Pairs(as_dict), optimizer="adam", lr=0.05, epochs=10, batch_size=40, **FAST)
    assert run.summary["test_loss"] < 0.1 and run.summary["n_inputs"] == 5


def test_several_inputs_train_in_a_run_directory_whose_fingerprint_reads_each_of_them(tmp_path):
    from riskmin._training._fingerprint import data_fingerprint

    a, b, y = two_inputs(200)
    run = riskmin.fit(Two(), ((a, b), y), epochs=2, directory=tmp_path / "run", **FAST)
    assert run.history and (tmp_path / "run").is_dir()
    loaded = riskmin.Run.load(tmp_path / "run", Two())  # its scaling: the target's alone, no input's
    assert torch.equal(riskmin.predict(loaded, (a, b)), riskmin.predict(run, (a, b)))
    fingerprints = [data_fingerprint(riskmin.Data(x, y))["sha256"] for x in ((a, b), (a, b + 1), {"first": a, "second": b})]
    assert fingerprints[0] != fingerprints[1] and fingerprints[0] == fingerprints[2]


def test_montecarlo_of_several_inputs_takes_the_sequential_engine_and_says_why():
    a, b, y = two_inputs(200)
    mc = riskmin.montecarlo(Two, ((a, b), y), runs=2, epochs=2, **FAST)
    assert mc.summary["engine"] == "sequential" and "several tensors" in mc.notes[0]


class Three(Two):
    """Two with three outputs: a score per class."""

    def __init__(self):
        super().__init__()
        self.out = nn.Linear(4, 3)


def test_several_inputs_read_their_target_as_task_says_as_one_input_does():
    a, b, _ = two_inputs()
    labels = (a[:, 0] > 0).float() + (b[:, 0] > 0).float()  # 0., 1., 2.: amounts unless told they are classes
    assert riskmin.fit(Two(), ((a, b), labels), epochs=1, **FAST).config.loss == "mse"
    told = riskmin.fit(Three(), ((a, b), labels), task="classification", epochs=1, **FAST)
    assert told.config.loss == "cross_entropy" and told.data_names["classes"] == [0, 1, 2]
    named = riskmin.fit(Three(), ({"first": a, "second": b}, [["low", "mid", "high"][int(v)] for v in labels]), epochs=1,
                        **FAST)
    assert named.config.loss == "cross_entropy" and sorted(named.data_names["classes"]) == ["high", "low", "mid"]


@pytest.mark.parametrize("x, model, message", [
    (lambda a, b: {"first": a, "second": b[:300]}, Two, r"input x\['second'\] has 300 rows but y has 400; every input needs one row"),
    (lambda a, b: (a, b[:-1]), Two, r"input x\[1\] has 399 rows but y has 400"),
    (lambda a, b: (a, torch.tensor(1.0)), Two, r"input x\[1\] has no rows"),
    (lambda a, b: (), Two, r"x is an empty tuple or dict; give at least one input tensor"),
    (lambda a, b: (a, b), lambda: "mlp", r"model mlp takes one input tensor but x is several"),
    (lambda a, b: {"frist": a, "second": b}, Two, r"^the model's forward takes \(first, second\) but the data gives 2 "
                                                 r"inputs named frist, second \(missing a required argument: 'first'\); "
                                                 r"name each input after an argument of forward$"),
    (lambda a, b: (a, b, a), Two, r"^the model's forward takes \(first, second\) but the data gives 3 inputs in order "
                                  r"\(too many positional arguments\); give forward one per input$"),
])
def test_bad_several_inputs_are_one_clear_error(x, model, message):
    a, b, y = two_inputs()
    with pytest.raises(RiskminError, match=message):
        riskmin.fit(model(), (x(a, b), y), epochs=1, **FAST)


def test_worker_processes_read_a_dataset_in_the_same_order():
    settings = dict(optimizer="adam", lr=0.05, epochs=2, batch_size=40, restore_best=False, **FAST)
    alone = riskmin.fit(Two(), Pairs(True), **settings)
    workers = riskmin.fit(Two(), Pairs(True), num_workers=2, **settings)
    for a, b in zip(alone.model.state_dict().values(), workers.model.state_dict().values()):
        assert torch.equal(a, b)
    assert workers.config.num_workers == 2


def test_montecarlo_and_compare_take_a_dataset_split_by_index_and_say_why_they_train_sequentially():
    mc = riskmin.montecarlo(Two, Pairs(True), runs=2, epochs=2, batch_size=40, **FAST)
    assert mc.summary["engine"] == "sequential" and "Dataset" in mc.notes[0]
    assert [row["seed"] for row in mc.table] == [0, 1] and mc.table[0]["test_loss"] != mc.table[1]["test_loss"]
    # run r is fit on the split of seed r: the same rows as riskmin.split gives, so a row reruns alone
    alone = riskmin.fit(Two(), riskmin.split(Pairs(True), seed=1), seed=1, epochs=2, batch_size=40, **FAST)
    assert alone.summary["test_loss"] == pytest.approx(mc.table[1]["test_loss"], rel=1e-6)
    comparison = riskmin.compare({"fast": {"lr": 0.05}, "slow": {"lr": 0.001}}, Pairs(False), model=Two, runs=2, epochs=2,
                                 batch_size=40, **FAST)
    assert {row["candidate"] for row in comparison.table} == {"fast", "slow"}


def test_a_dataset_is_said_to_reach_the_model_unscaled_once_by_fit_or_an_experiment():
    import warnings

    from torch.utils.data import TensorDataset

    x = torch.randn(40, 3, generator=torch.Generator().manual_seed(0))
    items = TensorDataset(x * 100, x.sum(1, keepdim=True))
    said = ("^a Dataset's items reach the model as they are, inputs and targets: standardize scales data held in memory "
            r"\(tensors, arrays, tables\); scale them in the Dataset, or give them as \(x, y\)$")
    for train in (lambda: riskmin.fit(nn.Linear(3, 1), items, epochs=1, progress=False),
                  lambda: riskmin.montecarlo(lambda: nn.Linear(3, 1), items, runs=2, epochs=1, progress=False)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            train()
        notes = [str(w.message) for w in caught if issubclass(w.category, riskmin.RiskminNote)]
        assert len(notes) == 1 and re.match(said, notes[0]), notes
    with warnings.catch_warnings():
        warnings.simplefilter("error", riskmin.RiskminNote)  # asked not to scale: nothing to say
        riskmin.fit(nn.Linear(3, 1), items, epochs=1, progress=False, standardize=False)


def test_several_inputs_are_said_to_reach_the_model_unscaled_once_by_fit_or_an_experiment():
    import warnings

    x = torch.randn(40, 3, generator=torch.Generator().manual_seed(0))
    said = ("several inputs reach the model as they are: standardize scales x given as one tensor (or array, or table); "
            "scale each input before fit where its features are on different scales, or pass standardize=False to leave "
            "this unsaid")

    class Keyed(nn.Linear):
        def forward(self, features):
            return super().forward(features)

    for data in (((x * 100,), x.sum(1, keepdim=True)), ({"features": x * 100}, x.sum(1, keepdim=True))):
        for train in (lambda: riskmin.fit(Keyed(3, 1), data, epochs=1, progress=False),
                      lambda: riskmin.montecarlo(lambda: Keyed(3, 1), data, runs=2, epochs=1, progress=False)):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                train()
            notes = [str(w.message) for w in caught if issubclass(w.category, riskmin.RiskminNote)]
            assert notes.count(said) == 1, notes
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        riskmin.fit(Keyed(3, 1), (x * 100, x.sum(1, keepdim=True)), epochs=1, progress=False)  # one x: scaled
    assert said not in [str(w.message) for w in caught]


def test_an_iterable_dataset_is_refused_in_one_sentence():
    class Stream(torch.utils.data.IterableDataset):
        def __iter__(self):
            return iter([(torch.randn(3), torch.randn(1)) for _ in range(20)])

    said = "^data is an IterableDataset, whose items have no index to split by; give a map-style Dataset"
    for call in (riskmin.fit, lambda *a, **k: riskmin.montecarlo(*a, runs=2, **k)):  # torch's NotImplementedError, before
        with pytest.raises(RiskminError, match=said):
            call("linear", Stream(), epochs=1, **FAST)


def test_a_seeded_fit_of_a_dataset_that_draws_at_random_reports_the_same_metrics_whatever_the_callers_state():
    x, y = two_inputs()[0], two_inputs()[2]

    class Augmented(Dataset):  # each read of an item draws its noise from torch's random state
        def __len__(self):
            return len(y)

        def __getitem__(self, i):
            return x[i] + 0.1 * torch.randn(3), y[i]

    runs = []
    for state in (1, 2):  # the caller's random state: it decided the validation and test items, read before the seed
        torch.manual_seed(state)
        runs.append(riskmin.fit("linear", Augmented(), epochs=2, seed=0, **FAST))
    rows = [[{k: v for k, v in row.items() if k != "seconds"} for row in run.history] for run in runs]
    assert rows[0] == rows[1] and runs[0].test == runs[1].test


class Labels(Dataset):
    """Three classes, the last first met at item 150: a batch or two of the first items show only 0 and 1."""

    def __init__(self, listed=False):
        generator = torch.Generator().manual_seed(0)
        self.x = torch.randn(200, 4, generator=generator)
        self.y = (self.x[:, 0] > 0).long()
        self.y[150:] = 2
        if listed:  # torchvision's data sets list their targets
            self.targets = self.y.tolist()

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i], self.y[i]


@pytest.mark.parametrize("listed", [False, True])
def test_a_named_model_on_a_dataset_of_class_labels_gets_one_output_per_class(listed):
    # it was built with one output, from the first item's label, and refused as cross entropy "with 2 classes"
    run = riskmin.fit("two_layer", Labels(listed), loss="cross_entropy", epochs=1, **FAST)
    assert run.model(torch.zeros(1, 4)).shape == (1, 3) and run.summary["n_outputs"] == 3


def test_a_module_with_too_few_outputs_for_the_classes_a_dataset_lists_is_refused_before_training():
    # torch's IndexError at the first batch that held class 2
    with pytest.raises(RiskminError, match=r"^the model gives outputs of shape \(2,\) per sample but cross entropy needs one score per class \(3 classes\)"):
        riskmin.fit(nn.Linear(4, 2), Labels(listed=True), loss="cross_entropy", epochs=1, **FAST)
    # a Dataset that lists none is not read whole first: the batch that holds the class says it, not torch's IndexError
    with pytest.raises(RiskminError, match=r"^a batch holds class label 2, but the model gives 2 scores per sample; give its last layer one output per class, 3 at least$"):
        riskmin.fit(nn.Linear(4, 2), Labels(), loss="cross_entropy", epochs=1, **FAST)


class Named(Labels):
    """Targets listed by name, or before a transform: not what the items give, so not counted from."""

    def __init__(self, kind):
        super().__init__()
        if kind == "names":
            self.targets = ["cat" if label == 0 else "dog" for label in self.y.tolist()]
        else:  # torchvision's targets are the raw labels, mapped by target_transform in __getitem__
            self.targets, self.target_transform = (5 * self.y).tolist(), lambda label: label // 5


@pytest.mark.parametrize("kind", ["names", "transformed"])
def test_targets_a_dataset_lists_otherwise_than_its_items_give_them_are_not_counted_from(kind):
    # torch.as_tensor(["cat", ...]) raised "too many dimensions 'str'"; raw labels 0 and 5 gave a named model 11 outputs
    run = riskmin.fit("two_layer", Named(kind), loss="cross_entropy", epochs=1, **FAST)
    assert run.model(torch.zeros(1, 4)).shape == (1, 3)
    own = riskmin.fit(nn.Linear(4, 3), Named(kind), loss="cross_entropy", epochs=1, **FAST)
    # it recorded 1 output, from the first item, and evaluate refused class 2 as "not one the run knows"
    assert own.summary["n_outputs"] == 3 and riskmin.evaluate(own, (Labels().x, Labels().y))["loss"] > 0


def test_predicting_rows_of_unequal_inputs_or_a_dataset_is_refused_in_one_sentence():
    a, b, y = two_inputs()
    run = riskmin.fit(Two(), ((a, b), y), epochs=1, **FAST)
    # it said "but y has 400" of a prediction given no y
    with pytest.raises(RiskminError, match=r"^input x\[1\] has 50 rows but x\[0\] has 400; every input needs one row per sample"):
        riskmin.predict(run, (a, b[:50]))
    # torch's "only one element tensors can be converted to Python scalars"
    with pytest.raises(RiskminError, match=r"^x is a Pairs; predict takes the rows themselves, .* torch.stack\(\[x for x, _ in dataset\]\)$"):
        riskmin.predict(run, Pairs(False))


@pytest.mark.parametrize("form", ["tuple", "dict"])
def test_predict_answers_several_numpy_inputs_in_numpy_as_it_answers_one(form):
    a, b, y = two_inputs()
    run = riskmin.fit(Two(), ((a, b), y), epochs=1, **FAST)
    arrays = (a.numpy(), b.numpy()) if form == "tuple" else {"first": a.numpy(), "second": b.numpy()}
    tensors = (a, b) if form == "tuple" else {"first": a, "second": b}
    answer = riskmin.predict(run, arrays)  # a tensor, before
    assert isinstance(answer, np.ndarray) and np.array_equal(answer, riskmin.predict(run, tensors).numpy())


def test_predicting_several_inputs_whose_first_is_a_single_number_says_so():
    a, b, y = two_inputs()
    run = riskmin.fit(Two(), ((a, b), y), epochs=1, **FAST)
    # "input x[0] has no rows but x[0] has 0"
    with pytest.raises(RiskminError, match=r"^input x\[0\] is a single number, with no rows; give every input one row per sample$"):
        riskmin.predict(run, (torch.tensor(1.0), b))
