"""riskmin.sklearn: scikit-learn's conventions, checked by scikit-learn itself, and the estimators inside its tools."""

import math
import pickle
import warnings

import numpy as np
import pytest
import torch

sklearn = pytest.importorskip("sklearn")
pd = pytest.importorskip("pandas")

from sklearn.base import clone  # noqa: E402
from sklearn.compose import ColumnTransformer, TransformedTargetRegressor  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_validate  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.preprocessing import OneHotEncoder, StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import riskmin  # noqa: E402
from riskmin.sklearn import RiskminClassifier, RiskminRegressor  # noqa: E402

EXPECTED_FAILURES = {
    # float32 matrix products of 20 rows and of 1 row may differ in the last bit (1e-7), above the check's atol
    "check_methods_subset_invariance": "float32 kernels choose their blocking by the number of rows",
}


@parametrize_with_checks([RiskminRegressor(epochs=20, lr=0.05, random_state=0), RiskminClassifier(epochs=20, lr=0.05, random_state=0)],
                         expected_failed_checks=lambda estimator: EXPECTED_FAILURES)
def test_scikit_learn_conventions(estimator, check):
    check(estimator)


@pytest.fixture
def houses():
    rng = np.random.default_rng(0)
    n = 200
    frame = pd.DataFrame({"size": rng.standard_normal(n), "age": rng.uniform(0, 50, n), "town": rng.choice(["a", "b", "c"], n)})
    price = 3 * frame["size"] - 0.05 * frame["age"] + (frame["town"] == "b") * 2 + 0.1 * rng.standard_normal(n)
    return frame, price.to_numpy()


def test_fit_trains_through_riskmin_fit_with_the_same_numbers(houses):
    frame, price = houses
    x = frame[["size", "age"]].to_numpy()
    estimator = RiskminRegressor(model="linear", lr=0.05, epochs=10, val=0.2, patience=3, random_state=7).fit(x, price)
    run = riskmin.fit("linear", (torch.tensor(x, dtype=torch.float32), torch.tensor(price, dtype=torch.float32)),
                      lr=0.05, epochs=10, val=0.2, test=0.0, patience=3, seed=7, device="cpu", progress=False)
    assert estimator.history_ == [{**row, "seconds": pytest.approx(row["seconds"], abs=100)} for row in run.history]
    # the same weights; a product of rows in F order (pandas' to_numpy) may round its last bit unlike one in C order
    assert all(torch.equal(a, b) for a, b in zip(estimator.model_.parameters(), run.model.parameters()))
    np.testing.assert_allclose(estimator.predict(x), riskmin.predict(run, x)[:, 0], atol=1e-6)
    assert estimator.n_features_in_ == 2 and isinstance(estimator.model_, torch.nn.Module)


def test_a_loss_and_an_optimizer_of_ones_own_train_as_fit_trains_them_and_survive_clone(houses):
    """They were refused: "not allowed in Config, which holds names; pass your own loss to riskmin.fit"."""
    frame, price = houses
    x = frame[["size", "age"]].to_numpy()
    own = dict(loss=torch.nn.HuberLoss(), optimizer=torch.optim.SGD)
    estimator = RiskminRegressor(model="linear", lr=0.05, epochs=5, val=0.2, patience=3, random_state=7, **own).fit(x, price)
    run = riskmin.fit("linear", (torch.tensor(x, dtype=torch.float32), torch.tensor(price, dtype=torch.float32)),
                      lr=0.05, epochs=5, val=0.2, test=0.0, patience=3, seed=7, device="cpu", progress=False, **own)
    assert estimator.run_.config.loss_callable == "torch.nn.modules.loss.HuberLoss"
    assert estimator.run_.config.optimizer_callable == "torch.optim.sgd.SGD"
    np.testing.assert_allclose(estimator.predict(x), riskmin.predict(run, x)[:, 0], atol=1e-6)
    np.testing.assert_array_equal(clone(estimator).fit(x, price).predict(x), estimator.predict(x))
    labels = (frame["size"] > frame["size"].median()).to_numpy()
    classifier = RiskminClassifier(model="linear", epochs=5, random_state=0, loss=torch.nn.CrossEntropyLoss()).fit(x, labels)
    named = RiskminClassifier(model="linear", epochs=5, random_state=0, loss="cross_entropy").fit(x, labels)
    np.testing.assert_allclose(classifier.predict_proba(x), named.predict_proba(x), atol=1e-6)  # the same loss, named


def test_random_state_and_clone(houses):
    frame, price = houses
    x = frame[["size", "age"]].to_numpy()
    first = RiskminRegressor(hidden=8, epochs=3, random_state=1)
    copy = clone(first).set_params(hidden=4)
    assert copy.get_params()["hidden"] == 4 and first.get_params()["hidden"] == 8 and not hasattr(copy, "model_")
    a, b = first.fit(x, price).predict(x), clone(first).fit(x, price).predict(x)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, clone(first).set_params(random_state=2).fit(x, price).predict(x))
    again = first.fit(x[:100], price[:100])  # a second fit starts afresh
    assert again is first and first.history_[0]["epoch"] == 1 and len(first.history_) == 3


def test_grid_search_over_lr_and_hidden_in_a_pipeline_with_a_column_transformer(houses):
    frame, price = houses
    columns = ColumnTransformer([("numbers", StandardScaler(), ["size", "age"]), ("town", OneHotEncoder(), ["town"])])
    pipeline = Pipeline([("columns", columns), ("net", RiskminRegressor(epochs=15, batch_size=64, random_state=0))])
    search = GridSearchCV(pipeline, {"net__lr": [0.001, 0.03], "net__hidden": [4, 16]}, cv=2).fit(frame, price)
    assert search.best_params_["net__lr"] == 0.03 and len(search.cv_results_["params"]) == 4
    assert search.best_estimator_.named_steps["net"].n_features_in_ == 5 and search.score(frame, price) > 0.8


def test_cross_validate_a_classifier_and_a_transformed_target(houses):
    frame, price = houses
    x = frame[["size", "age"]]
    towns = np.where(frame["size"] > 0, "big", "small")
    scores = cross_validate(RiskminClassifier(model="linear", lr=0.1, epochs=20, random_state=0), x, towns, cv=3)
    assert scores["test_score"].min() > 0.9
    classifier = RiskminClassifier(model="linear", epochs=2, random_state=0).fit(x, towns)
    assert list(classifier.classes_) == ["big", "small"] and list(classifier.feature_names_in_) == ["size", "age"]
    assert classifier.predict_proba(x).sum(1) == pytest.approx(np.ones(len(x)))
    logged = TransformedTargetRegressor(RiskminRegressor(model="linear", lr=0.1, epochs=20, random_state=0), func=np.log1p,
                                        inverse_func=np.expm1).fit(x, np.abs(price))
    assert logged.predict(x).shape == (len(x),)


def test_a_fitted_estimator_pickles(houses, tmp_path):
    frame, price = houses
    x = frame[["size", "age"]].to_numpy()
    fitted = RiskminRegressor(epochs=2, random_state=0).fit(x, price)
    thawed = pickle.loads(pickle.dumps(fitted))
    assert np.array_equal(thawed.predict(x), fitted.predict(x))
    fitted.run_.save(tmp_path / "run")  # riskmin's own files: safetensors and JSON, no pickle
    assert np.array_equal(riskmin.predict(riskmin.Run.load(tmp_path / "run"), x)[:, 0].astype(np.float64), fitted.predict(x))


def test_bad_settings_are_refused_in_one_sentence():
    x, y = np.zeros((10, 2)), np.arange(10) % 3
    with pytest.raises(ValueError, match="loss bce takes 2 classes but y has 3; use loss='cross_entropy'"):
        RiskminClassifier(loss="bce").fit(x, y)
    with pytest.raises(riskmin.RiskminError, match="optimizer"):
        RiskminRegressor(optimizer="lbfgs").fit(x, y.astype(float))


def test_without_validation_rows_the_schedule_asked_for_is_kept_and_nothing_stops_early(houses):
    frame, y = houses
    x = frame[["size", "age"]].to_numpy()
    judged_by_validation = {"monitor": "val_r2", "mode": "max"}
    cosine = RiskminRegressor(val=0.0, epochs=12, patience=1, lr=0.01, config={"scheduler": "cosine", **judged_by_validation},
                              random_state=0).fit(x, y)
    asked = [0.01 * (1 + math.cos(math.pi * epoch / 12)) / 2 for epoch in range(12)]
    assert [row["lr"] for row in cosine.run_.history] == pytest.approx(asked, rel=1e-6)  # the cosine, as asked
    # patience 1 would have stopped it within a few epochs (the training loss does not fall every epoch at this rate):
    # nothing judges without validation
    assert cosine.run_.config.patience == 0 and cosine.run_.summary["epochs_run"] == 12
    assert not cosine.run_.summary["restored_best"]  # the last weights, as the estimator's docstring says
    plateau = RiskminRegressor(val=0.0, epochs=6, lr=0.01, config={"scheduler": "plateau", **judged_by_validation},
                               random_state=0).fit(x, y)
    config = plateau.run_.config
    assert (config.scheduler, config.monitor, config.mode) == ("plateau", "loss", "min")  # the training loss, down
    assert plateau.run_.history[-1]["lr"] == 0.01  # a falling training loss leaves the rate alone


def test_a_setting_in_config_that_is_a_parameter_is_refused_naming_the_parameter(houses):
    frame, price = houses
    x = frame[["size", "age"]].to_numpy()
    for config, message in (
            ({"epochs": 3}, "config's epochs=3 is the parameter epochs of RiskminRegressor; give "
                            "RiskminRegressor(epochs=3) instead, which GridSearchCV can tune"),
            ({"seed": 5}, "config's seed=5 is the parameter random_state of RiskminRegressor; give "
                          "RiskminRegressor(random_state=5) instead"),
            (riskmin.Config(lr=0.2), "config's lr=0.2 is the parameter lr of RiskminRegressor"),
            ({"hidden": [8], "weight_decay": 0.1}, "config's hidden=(8,) is the parameter hidden")):
        with pytest.raises(riskmin.RiskminError) as refused:
            RiskminRegressor(config=config).fit(x, price)
        assert str(refused.value).startswith(message)
    # the settings that are no parameter apply, and config is stored as given
    given = {"weight_decay": 0.01, "activation": "tanh"}
    fitted = RiskminRegressor(epochs=2, config=given, random_state=0).fit(x, price)
    assert (fitted.run_.config.weight_decay, fitted.run_.config.activation) == (0.01, "tanh")
    assert fitted.get_params()["config"] is given and given == {"weight_decay": 0.01, "activation": "tanh"}


@pytest.mark.parametrize("config", [{"runs": 50}, {"folds": 5}, {"out": "elsewhere"}, {"task": "classification"},
                                    {"data": "lab1"}])
def test_a_setting_in_config_that_means_nothing_to_an_estimator_is_refused(houses, config):
    frame, price = houses
    (name, value), = config.items()
    with pytest.raises(riskmin.RiskminError, match=f"^config's {name}={value!r} means nothing to RiskminRegressor, "
                                                   "which is given X and y, trains one model and writes no files"):
        RiskminRegressor(config=config).fit(frame[["size", "age"]].to_numpy(), price)


def test_a_missing_rule_in_config_is_refused_as_scikit_learn_refuses_the_nan_first(houses):
    frame, price = houses
    with pytest.raises(riskmin.RiskminError, match=r"^config's missing='mean' cannot apply to RiskminRegressor: .* "
                                                   r"with sklearn.impute.SimpleImputer before the estimator$"):
        RiskminRegressor(config={"missing": "mean"}).fit(frame[["size", "age"]].to_numpy(), price)
    RiskminRegressor(epochs=1, config={"missing": "error"}).fit(frame[["size", "age"]].to_numpy(), price)  # the default


def test_a_few_rows_too_few_to_hold_one_out_train_on_all_of_them(houses):
    frame, price = houses
    x = frame[["size", "age"]].to_numpy()
    # 5 rows at val 0.1 round to no validation row: the split's refusal came first, and cross-validation scored NaN
    fitted = RiskminRegressor(epochs=2, random_state=0).fit(x[:5], price[:5])
    assert fitted.run_.summary["n_train"] == 5 and fitted.run_.summary["n_val"] == 0
    assert fitted.run_.summary["epochs_run"] == 2  # all its epochs, nothing to stop early by


def test_a_run_saved_from_an_estimator_keeps_its_labels_type_and_its_dataframes_column_names(houses, tmp_path):
    frame, price = houses
    x = frame[["size", "age"]]
    labels = np.where(price > np.median(price), 20, 10)  # whole-number labels: the saved run gave back "10" and "20"
    fitted = RiskminClassifier(epochs=2, random_state=0).fit(x, labels)
    run = riskmin.Run.load(fitted.run_.save(tmp_path / "run"))
    again = riskmin.predict(run, x.to_numpy(), kind="class")
    assert again.tolist() == fitted.predict(x).tolist() and isinstance(again.tolist()[0], int)
    assert run.data_names["features"] == ["size", "age"]  # where x0, x1 asked a file to predict for those names
    x.to_csv(tmp_path / "rows.csv", index=False)
    assert riskmin.predict(run, tmp_path / "rows.csv", kind="class").tolist() == again.tolist()  # a file by those names


def test_class_probabilities_sum_to_one_in_float64(houses):
    frame, price = houses
    labels = np.digitize(price, np.quantile(price, [0.33, 0.66]))  # three classes
    x = frame[["size", "age"]].to_numpy()
    shares = RiskminClassifier(epochs=3, random_state=0).fit(x, labels).predict_proba(x)
    assert shares.dtype == np.float64 and np.abs(shares.sum(axis=1) - 1).max() <= 4 * np.finfo(np.float64).eps
    from sklearn.metrics import log_loss

    with warnings.catch_warnings():  # scikit-learn warns of probabilities that do not sum to 1
        warnings.simplefilter("error")
        log_loss(labels, shares)


def test_config_settings_survive_clone_and_a_grid_search_over_the_parameters(houses):
    frame, price = houses
    x = frame[["size", "age"]].to_numpy()
    estimator = RiskminRegressor(model="two_layer", epochs=3, random_state=0, config={"dropout": 0.1, "weight_decay": 0.01})
    copy = clone(estimator)
    assert copy.get_params() == estimator.get_params() and copy.config == {"dropout": 0.1, "weight_decay": 0.01}
    search = GridSearchCV(estimator, {"batch_size": [16, 64]}, cv=2).fit(x, price)
    best = search.best_estimator_.run_.config
    assert (best.dropout, best.weight_decay) == (0.1, 0.01) and len(search.best_estimator_.history_) == 3


def test_a_split_setting_in_config_is_refused_as_the_estimator_makes_its_own_split(houses):
    frame, price = houses
    x = frame[["size", "age"]].to_numpy()
    for name, value in (("test", 0.2), ("train", 0.5), ("split", "tutorial")):
        with pytest.raises(riskmin.RiskminError, match=rf"^config's {name}={value!r} does not apply to RiskminRegressor, which trains on every row fit\(X, y\) is given but the val share; hold test rows out with scikit-learn \(train_test_split, cross_validate\) and score them with score\(X, y\)$"):
            RiskminRegressor(epochs=2, config={name: value}).fit(x, price)
    with pytest.raises(riskmin.RiskminError, match=r"^config's test=0.2 does not apply to RiskminClassifier"):
        RiskminClassifier(epochs=2, config=riskmin.Config(test=0.2)).fit(x, price > 0)
    assert RiskminRegressor(epochs=2, random_state=0, config={"test": 0.0}).fit(x, price).run_.config.test == 0.0


def test_a_target_beyond_float32_is_named_by_its_value_and_the_dataframe_index(houses):
    frame, price = houses
    from sklearn.model_selection import train_test_split

    x, _, y, _ = train_test_split(frame[["size", "age"]], pd.Series(price), random_state=0)  # a shuffled index
    y = y.copy()
    y.iloc[2] = 1e39
    with pytest.raises(riskmin.RiskminError) as refused:
        RiskminRegressor(epochs=1).fit(x, y)
    assert str(refused.value).startswith(f"y column y0 holds 1e+39 at the row with index {x.index[2]}, beyond the "
                                         "float32 range riskmin trains in (±3.4e+38); rescale that column")
    with pytest.raises(riskmin.RiskminError, match=r"^y column y0 holds 1e\+39 at row 2 \(counting from 0\)"):
        RiskminRegressor(epochs=1).fit(x.to_numpy(), y.to_numpy())  # arrays have no index: the position


def test_a_config_field_at_its_default_is_left_to_the_parameter_as_the_docstring_says(houses):
    frame, price = houses
    x = frame[["size", "age"]].to_numpy()
    assert riskmin.Config(seed=0) == riskmin.Config()  # a Config cannot tell seed=0 given from seed left out
    fitted = RiskminRegressor(epochs=1, random_state=5, config=riskmin.Config(seed=0, weight_decay=0.01)).fit(x, price)
    assert (fitted.run_.config.seed, fitted.run_.config.weight_decay) == (5, 0.01)  # random_state wins
    said = " ".join(riskmin.sklearn.RiskminEstimator.__doc__.split())  # the parameters' docstring, both estimators'
    assert "a field at its default is not refused but left to the parameter, which wins (random_state, not" in said
    with pytest.raises(riskmin.RiskminError, match="^config's seed=0 is the parameter random_state"):  # a dict: refused
        RiskminRegressor(epochs=1, random_state=5, config={"seed": 0}).fit(x, price)
