"""riskmin.sklearn: scikit-learn's conventions, checked by scikit-learn itself, and the estimators inside its tools."""

import math
import pickle

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


def test_a_setting_in_config_applies_where_its_parameter_is_left_at_its_default(houses):
    frame, price = houses
    x = frame[["size", "age"]].to_numpy()
    towns = np.where(frame["size"] > 0, "big", "small")
    for name, value in (("lr", 0.5), ("patience", 2), ("val", 0.3), ("batch_size", 16), ("model", "linear"),
                        ("hidden", [8]), ("optimizer", "sgd")):
        given = {name: value, "epochs": 4}
        fitted = RiskminRegressor(config=given).fit(x, price)
        assert getattr(fitted.run_.config, name) == (tuple(value) if name == "hidden" else value)
        assert given == {name: value, "epochs": 4} and fitted.get_params()["config"] is given  # stored as given
    assert len(RiskminRegressor(config={"epochs": 3}, random_state=0).fit(x, price).history_) == 3
    # seed is random_state's setting: config's seed gives the same fit at every call, as random_state does
    seeded = RiskminRegressor(epochs=3, config={"seed": 5})
    assert seeded.fit(x, price).run_.config.seed == 5
    assert np.array_equal(seeded.predict(x), RiskminRegressor(epochs=3, random_state=5).fit(x, price).predict(x))
    # loss bce from config shapes the classifier's targets as loss="bce" does: one logit for two classes
    binary = RiskminClassifier(model="linear", epochs=2, random_state=0, config={"loss": "bce"}).fit(x, towns)
    assert binary.run_.config.loss == "bce" and binary.model_(torch.zeros(1, 2)).shape == (1, 1)
    # a Config gives the fields that differ from Config's defaults
    assert RiskminRegressor(config=riskmin.Config(epochs=2, lr=0.2), random_state=0).fit(x, price).run_.config.epochs == 2
    # both given with the same value: no disagreement
    assert RiskminRegressor(epochs=2, config={"epochs": 2}, random_state=0).fit(x, price).run_.config.epochs == 2


def test_config_settings_survive_clone_and_a_grid_search_over_other_parameters(houses):
    frame, price = houses
    x = frame[["size", "age"]].to_numpy()
    estimator = RiskminRegressor(model="linear", random_state=0, config={"epochs": 3, "lr": 0.05})
    copy = clone(estimator)
    assert copy.get_params() == estimator.get_params() and copy.config == {"epochs": 3, "lr": 0.05}
    search = GridSearchCV(estimator, {"batch_size": [16, 64]}, cv=2).fit(x, price)
    best = search.best_estimator_.run_.config
    assert (best.epochs, best.lr) == (3, 0.05) and len(search.best_estimator_.history_) == 3


def test_a_setting_given_both_ways_with_different_values_is_refused_in_one_sentence(houses):
    frame, price = houses
    x = frame[["size", "age"]].to_numpy()
    with pytest.raises(riskmin.RiskminError, match=r"^epochs=4 and config's epochs=3 disagree; give it once, as the parameter epochs= \(which GridSearchCV can tune\) or in config=$"):
        RiskminRegressor(epochs=4, config={"epochs": 3}).fit(x, price)
    with pytest.raises(riskmin.RiskminError, match=r"^random_state=1 and config's seed=5 disagree; give it once, as the parameter random_state="):
        RiskminRegressor(random_state=1, config={"seed": 5}).fit(x, price)
    with pytest.raises(riskmin.RiskminError, match=r"^hidden=8 and config's hidden=\(16,\) disagree"):
        RiskminClassifier(hidden=8, config=riskmin.Config(hidden=(16,))).fit(x, price > 0)


def test_a_split_setting_in_config_is_refused_as_the_estimator_makes_its_own_split(houses):
    frame, price = houses
    x = frame[["size", "age"]].to_numpy()
    for name, value in (("test", 0.2), ("train", 0.5), ("split", "tutorial")):
        with pytest.raises(riskmin.RiskminError, match=rf"^config's {name}={value!r} does not apply to RiskminRegressor, which trains on every row fit\(X, y\) is given but the val share; hold test rows out with scikit-learn \(train_test_split, cross_validate\) and score them with score\(X, y\)$"):
            RiskminRegressor(epochs=2, config={name: value}).fit(x, price)
    with pytest.raises(riskmin.RiskminError, match=r"^config's test=0.2 does not apply to RiskminClassifier"):
        RiskminClassifier(epochs=2, config=riskmin.Config(test=0.2)).fit(x, price > 0)
    assert RiskminRegressor(epochs=2, random_state=0, config={"test": 0.0}).fit(x, price).run_.config.test == 0.0
