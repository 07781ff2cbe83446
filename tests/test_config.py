import pytest
import torch

from riskmin import Config, RiskminError
from riskmin.config import FIELDS

# For every field: a value of the right type that is out of its range or not a choice.
BAD_VALUES = {
    "data": 3, "n_samples": 1, "n_inputs": 0, "n_outputs": 0, "noise": -1.0, "data_seed": -1,
    "train": 0.0, "val": 1.5, "test": -0.1, "split": "kfold", "standardize": "yes", "standardize_target": 1,
    "model": "resnet", "hidden": (0,), "activation": "swish", "dropout": 1.5, "bias": 1,
    "loss": "hinge", "optimizer": "lbfgs", "lr": 0.0, "momentum": 2.0, "nesterov": "on", "beta1": 1.0, "beta2": -0.1, "eps": 0.0,
    "weight_decay": -0.1, "scheduler": "cyclic", "step_size": 0, "gamma": 0.0, "clip_grad": -1.0,
    "epochs": 0, "max_steps": -1, "batch_size": -1, "sampling": "all", "drop_last": None,
    "val_every": -2, "monitor": 1, "mode": "up", "patience": -1, "min_delta": float("nan"), "threshold_mode": "relative",
    "restore_best": "off", "seed": -5, "device": "tpu", "progress": 0, "print_every": -1,
    "out": None, "name": "a/b", "overwrite": "no", "checkpoint_every": -1, "runs": 0, "engine": "gpu", "chunk": -1,
    "stratify": "yes", "folds": -1, "splits": 5, "model_class": 3,
    "loss_callable": 3, "optimizer_callable": 3, "scheduler_callable": 3, "scheduler_interval": "batch", "metrics": {"a": 1}, "log": "wandb", "warmup": -1, "num_workers": -1, "pin_memory": "yes",
    "precision": "fp8", "accumulate": 0,
    "target": 3, "features": [3], "task": "ranking", "missing": "zero", "threads": "many",
    "target_transform": "sqrt",
}


def test_every_field_has_a_bad_value_in_the_table():
    assert set(BAD_VALUES) == set(FIELDS)


@pytest.mark.parametrize("name", sorted(BAD_VALUES))
def test_every_field_rejects_a_bad_value_naming_field_and_value(name):
    value = BAD_VALUES[name]
    with pytest.raises(RiskminError) as error:
        Config(**{name: value})
    message = str(error.value)
    shown = ",".join(map(str, value)) if isinstance(value, tuple) else repr(value)  # widths as --hidden takes them
    assert message.startswith(f"{name} = {shown} ")
    assert any(word in message for word in ("allowed", "out of range", "must", "choose"))


def test_choices_are_listed_in_the_message():
    with pytest.raises(RiskminError, match="optimizer = 'lbfgs' is not allowed; choose one of sgd, adam, adamw, rmsprop"):
        Config(optimizer="lbfgs")


def test_fractions_must_leave_room_to_train():
    with pytest.raises(RiskminError, match="sum to 1.2"):
        Config(train=0.8, val=0.2, test=0.2)
    assert Config(val=0.2, test=0.2).train is None


def test_unknown_settings_suggest_the_right_name():
    with pytest.raises(RiskminError, match="unknown setting 'paitence'; did you mean 'patience'"):
        Config().replace(paitence=3)
    with pytest.raises(RiskminError, match="^unknown setting 'epoch'; did you mean 'epochs'\\?$"):
        Config(epoch=3)  # built directly too, where the dataclass's own TypeError named no setting
    with pytest.raises(RiskminError, match="^callbacks is not a setting but an argument of riskmin.fit"):
        Config(callbacks=[])
    import inspect  # help(Config) and a notebook's tooltip still list every setting

    assert list(inspect.signature(Config).parameters)[:3] == ["data", "target", "features"]
    assert "lr" in inspect.signature(Config).parameters
    assert {p.kind for p in inspect.signature(Config).parameters.values()} == {inspect.Parameter.KEYWORD_ONLY}


def test_settings_given_by_position_are_refused():
    # the dataclass took a value by position for its first field: Config(0.01) said "data = 0.01 is not allowed"
    with pytest.raises(RiskminError, match=r"^Config takes each setting by name, as Config\(lr=0.01\); 0.01 was given without one$"):
        Config(0.01)
    with pytest.raises(RiskminError, match=r"unpack a dict of settings with Config\(\*\*settings\)$"):
        Config({"lr": 0.1})


def test_toml_round_trip_keeps_every_setting(tmp_path):
    config = Config(model="mlp", hidden=(64, 32), optimizer="adamw", lr=1e-3, train=0.7, name="x", restore_best=False)
    path = tmp_path / "run.toml"
    path.write_text(config.to_toml())
    assert Config.from_toml(path) == config
    assert Config.from_toml(path).to_dict() == config.to_dict()


def test_toml_errors_name_the_file(tmp_path):
    broken = tmp_path / "broken.toml"
    broken.write_text("lr = = 3\n")
    with pytest.raises(RiskminError, match="is not valid TOML"):
        Config.from_toml(broken)
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("lrate = 0.1\n")
    with pytest.raises(RiskminError, match="unknown key in .*unknown.toml 'lrate'"):
        Config.from_toml(unknown)
    with pytest.raises(RiskminError, match="does not exist"):
        Config.from_toml(tmp_path / "absent.toml")


def test_a_setting_says_its_facts_in_its_field_and_a_mistyped_fact_or_section_fails_on_definition():
    from riskmin.config import fact, setting, settings_where

    assert fact("momentum", "applies") == ("optimizer", ("sgd", "rmsprop")) and fact("lr", "stackable")
    assert "seed" in settings_where(shared=True) and "lr" not in settings_where(shared=True)
    assert settings_where(resume="length") == ("epochs", "max_steps") and "threshold_mode" not in settings_where(resume="free")
    with pytest.raises(TypeError, match="unknown facts \\['stackble'\\]"):
        setting(0.1, "a rate", "optimization", stackble=True)
    with pytest.raises(TypeError, match="section 'optimisation'"):
        setting(0.1, "a rate", "optimisation")


def test_the_mode_follows_the_monitored_metric_and_one_given_that_keeps_the_worst_epoch_is_refused(tmp_path, capsys):
    import riskmin
    from riskmin._cli._main import main
    from riskmin.config import given_settings

    assert [Config(monitor=m).goal for m in ("val_loss", "loss", "val_rmse", "val_accuracy", "val_f1", "val_r2")] == [
        "min", "min", "min", "max", "max", "max"]
    assert Config(monitor="val_accuracy", mode="max").goal == "max" and Config(mode="min").goal == "min"
    with pytest.raises(RiskminError, match="^mode max would keep the epoch with the highest val_loss, the worst; set "
                                           "--mode min, or leave mode out for auto, which follows the monitored metric$"):
        given_settings(Config(mode="max"), ["mode"], flags=True)
    with pytest.raises(RiskminError, match="mode min would keep the epoch with the lowest val_r2, the worst; set mode='max'"):
        riskmin.fit("linear", "line", monitor="val_r2", mode="min", epochs=1, progress=False)
    with pytest.raises(RiskminError, match="mode max would keep the epoch with the highest val_loss"):  # a Config given
        riskmin.fit("linear", "line", config=Config(mode="max"), epochs=1, progress=False)
    assert main(["train", "line", "--monitor", "val_accuracy", "--mode", "min", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("error: mode min would keep the epoch with the lowest val_accuracy")
    (tmp_path / "max.toml").write_text('mode = "max"\n')  # a file of settings gives what it holds
    assert main(["train", "line", "--config", str(tmp_path / "max.toml"), "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("error: mode max would keep the epoch with the highest val_loss")
    # what a run saved before mode followed its metric holds (mode min under val_accuracy) still reads back
    assert Config.from_dict({"monitor": "val_accuracy", "mode": "min"}).goal == "min"
    # a metric of the user's own: riskmin cannot know its direction, so it is asked for
    with pytest.raises(RiskminError, match="^monitor val_mine is a metric of your own, which riskmin cannot tell"):
        Config(monitor="val_mine", metrics="mine=pkg.module.mine")
    assert Config(monitor="val_mine", metrics="mine=pkg.module.mine", mode="max").goal == "max"
    assert Config(monitor="val_acc").goal == "min"  # a name no run reports: the first validation lists those it does


def test_a_run_begun_with_the_mode_its_metric_takes_resumes_under_auto():
    import torch

    from riskmin import Data, split
    from riskmin._training._fingerprint import fingerprint

    splits = split(Data(torch.zeros(20, 1), torch.zeros(20, 1)), seed=0)
    assert fingerprint(splits, Config(mode="min")) == fingerprint(splits, Config())
    assert fingerprint(splits, Config(monitor="val_r2", mode="max")) == fingerprint(splits, Config(monitor="val_r2"))


def test_a_setting_the_others_leave_unused_is_said_in_a_note(tmp_path, capsys):
    import warnings

    import riskmin
    from riskmin._cli._main import main
    from riskmin.config import RiskminNote

    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        riskmin.fit("linear", "line", hidden=(8,), optimizer="sgd", beta1=0.9, momentum=0.9, epochs=1, progress=False)
        riskmin.fit(torch.nn.Linear(1, 1), "line", dropout=0.2, epochs=1, progress=False)
        riskmin.fit(torch.nn.Linear(1, 1), "line", bias=False, epochs=1, progress=False)  # the module's own layers
        riskmin.curve(["linear", "mlp"], "line", sizes=(0.5, 1.0), dropout=0.2, hidden=(4,), batch_size=8, runs=2, epochs=1,
                      progress=False)
    # beta1 at its default changes nothing under sgd, which takes no beta1; momentum acts; a curve's mlp takes dropout
    # and hidden, where its linear does not: neither is said
    assert [str(w.message) for w in said if w.category is RiskminNote] == [
        "hidden= is not used with model='linear', only with two_layer or mlp",
        "dropout= is not used with model='custom', only with mlp",
        "bias= is not used with model='custom', only with linear, two_layer or mlp"]
    assert main(["montecarlo", "line", "--model", "linear", "--folds", "2", "--runs", "2", "--test", "0.5", "--dropout",
                 "0.2", "--epochs", "1", "--progress", "off", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out  # said with the data's notes, once the command's checks passed
    assert ("note: --test is not used beside --folds: each fold is the test set in turn\n"
            "note: --dropout is not used with --model linear, only with mlp\n") in out
    splits = tmp_path / "splits.csv"
    splits.write_text("train,val,test\n" + "".join(
        f"{' '.join(map(str, range(k, 80 + k)))},{' '.join(map(str, range(80 + k, 90 + k)))},"
        f"{' '.join(str(i % 100) for i in range(90 + k, 100 + k))}\n" for k in (0, 5)))
    assert main(["montecarlo", "line", "--model", "linear", "--splits", str(splits), "--folds", "5", "--runs", "50",
                 "--stratify", "off", "--epochs", "1", "--progress", "off", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out  # every flag the file's splits leave unused is said: the experiment ran 2 runs
    for note in ("--folds is not used beside --splits: the file gives each split's rows",
                 "--runs is not used beside --splits: each split of the file is a run",
                 "--stratify is not used beside --splits: the file gives each split's rows"):
        assert f"note: {note}" in out.splitlines()
    assert main(["train", "line", "--optimizer", "adam", "--momentum", "0.9", "--batch-size", "1000", "--out",
                 str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("error: batch_size = 1000 is larger")  # a mistake is the one line said


def test_threads_as_a_number_from_python_reads_as_on_the_command_line():
    assert Config(threads=1).threads == "1" and Config(threads=1) == Config(threads="1")
