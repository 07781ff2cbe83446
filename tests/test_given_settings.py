"""Settings as users give them: several targets as a list, and a note on a setting the data's task leaves unused
(stratify for a regression target), said once and only when it was given."""

import json
import warnings

import pytest
import torch

import riskmin
from riskmin import Config, RiskminError
from riskmin._cli._main import main
from riskmin._experiments._candidates import candidate_configs
from riskmin._experiments._compare import stacks
from riskmin._experiments._kept import Keeper
from riskmin.config import DefaultBatch, DefaultMonitor, RiskminNote, fact, given_for_task


def write_table(path, rows: int = 40):
    """A small table without randomness: two features, three numeric targets (one named with a comma) and a label."""
    lines = ['x1,x2,weight,"waist, cm",pulse,label']
    for i in range(rows):
        x1, x2 = i / 10, (i * 7 % 11) / 3
        lines.append(f"{x1},{x2},{2 * x1 - x2 + (i * 13 % 5) / 10},{x1 + x2},{60 + i % 9},{'yes' if x1 > x2 else 'no'}")
    path.write_text("\n".join(lines) + "\n")
    return path


def notes_of(call) -> list:
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        call()
    return [str(w.message) for w in said if w.category is RiskminNote]


def test_several_targets_as_a_list_are_the_comma_separated_text(tmp_path):
    assert Config(target=["weight", "pulse"]) == Config(target="weight,pulse") == Config(target=("weight", "pulse"))
    # a name with a comma, a quote or edge spaces is quoted, as --target takes it
    assert Config(target=["weight", "waist, cm", ' say "hi"']).target == 'weight,"waist, cm"," say ""hi"""'
    config = Config(target=["weight", "waist, cm"])
    path = tmp_path / "run.toml"
    path.write_text(config.to_toml())
    assert 'target = "weight,\\"waist, cm\\""' in path.read_text() and Config.from_toml(path) == config
    path.write_text('target = ["weight", "waist, cm"]\n')  # a TOML array reads as the list it is
    assert Config.from_toml(path) == config


def test_fit_takes_several_targets_as_a_list(tmp_path):
    table = write_table(tmp_path / "body.csv")
    settings = dict(epochs=2, progress=False, seed=0)
    listed = riskmin.fit("linear", table, target=["weight", "waist, cm", "pulse"], **settings)
    text = riskmin.fit("linear", table, target='weight,"waist, cm",pulse', **settings)
    assert listed.config == text.config and listed.summary["test_loss"] == text.summary["test_loss"]
    assert [{**row, "seconds": 0} for row in listed.history] == [{**row, "seconds": 0} for row in text.history]
    montecarlo = riskmin.montecarlo("linear", table, target=("weight", "pulse"), runs=2, epochs=2, progress=False)
    assert montecarlo.config.target == "weight,pulse"


def test_a_list_of_targets_that_names_no_column_is_refused_in_one_sentence():
    for bad in ([], ["weight", ""], ["weight", 3]):
        with pytest.raises(RiskminError, match=r"^target = .* is not allowed; give column names as text, in a list or "
                                               r'comma separated, as \["a", "b"\] or "a,b"$'):
            Config(target=bad)
    with pytest.raises(RiskminError, match='^target = 3 is not allowed; it must be text, the column names comma '
                                           'separated, as "a,b"$'):
        Config(target=3)
    with pytest.raises(RiskminError, match='^features = 3 is not allowed; it must be text, the column names comma '
                                           'separated, as "a,b"$'):
        Config(features=3)
    assert Config(features=["a", "b, c"]).features == 'a,"b, c"'  # the features as a list too


def test_stratify_given_for_a_regression_target_is_noted_in_either_words():
    assert fact("stratify", "task") == "classification"
    assert given_for_task(Config(stratify=True), ["stratify"], "regression", flags=True) == [
        "--stratify is not used with a regression target, only with classification"]
    assert given_for_task(Config(stratify=True), ["runs", "stratify", "stratify"], "regression", flags=False) == [
        "stratify= is not used with a regression target, only with classification"]
    # not given (on by default), given off (nothing asked for), classification, a Dataset's unread rows: nothing said
    assert given_for_task(Config(), ["runs"], "regression", flags=True) == []
    assert given_for_task(Config(stratify=False), ["stratify"], "regression", flags=True) == []
    assert given_for_task(Config(stratify=True), ["stratify"], "classification", flags=True) == []
    assert given_for_task(Config(stratify=True), ["stratify"], "", flags=True) == []


def test_montecarlo_stays_silent_on_stratify_unless_it_is_given_where_it_acts(tmp_path, capsys):
    table = write_table(tmp_path / "body.csv")
    settings = dict(model="linear", runs=2, epochs=2, progress=False)
    for call in (lambda: riskmin.montecarlo(data=table, target="weight", **settings),
                 lambda: riskmin.montecarlo(data=table, target="weight", stratify=False, **settings),
                 lambda: riskmin.montecarlo(data=table, target="label", stratify=True, **settings)):
        assert not [note for note in notes_of(call) if "stratify" in note]
    assert main(["montecarlo", str(table), "--target", "weight", "--model", "linear", "--runs", "2", "--epochs", "2",
                 "--progress", "off", "--out", str(tmp_path / "runs")]) == 0
    assert "stratify" not in capsys.readouterr().out


def test_montecarlo_notes_stratify_given_for_a_regression_target_once(tmp_path, capsys):
    table = write_table(tmp_path / "body.csv")
    said = notes_of(lambda: riskmin.montecarlo("linear", table, target="weight", stratify=True, runs=2, epochs=2,
                                               progress=False))
    assert [note for note in said if "stratify" in note] == [
        "stratify= is not used with a regression target, only with classification"]
    assert main(["montecarlo", str(table), "--target", "weight", "--stratify", "on", "--model", "linear", "--runs", "2",
                 "--epochs", "2", "--progress", "off", "--out", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    assert out.count("--stratify is not used with a regression target, only with classification\n") == 1


@pytest.mark.parametrize("experiment", ["compare", "curve"])
def test_compare_and_curve_note_stratify_given_for_a_regression_target_from_python(tmp_path, experiment):
    table = write_table(tmp_path / "body.csv")
    shared = dict(target="weight", stratify=True, runs=2, epochs=1, progress=False)
    run = {"compare": lambda: riskmin.compare({"a": {"lr": 0.01}, "b": {"lr": 0.1}}, table, model="linear", **shared),
           "curve": lambda: riskmin.curve("linear", table, sizes=(0.5, 1.0), **shared)}[experiment]
    said = notes_of(run)
    assert said.count("stratify= is not used with a regression target, only with classification") == 1


@pytest.mark.parametrize("command, where", [
    (["train"], "the training split (20 samples); use at most 20"),
    (["montecarlo", "--runs", "2"], "the training split (20 samples); use at most 20"),
    (["compare", "--lr", "0.1,0.01", "--runs", "2"], "the training split (20 samples); use at most 20"),
    (["curve", "--runs", "2", "--sizes", "0.5,1"], "the training split of size 0.5 (10 samples); use at most 10"),
])
def test_a_batch_of_32_given_as_a_flag_is_refused_as_any_batch_larger_than_the_training_split(command, where, tmp_path,
                                                                                              capsys):
    table = write_table(tmp_path / "small.csv", rows=25)  # 20 training rows, fewer than the default batch of 32
    flags = [command[0], str(table), *command[1:], "--target", "weight", "--features", "x1,x2", "--epochs", "1",
             "--progress", "off", "--out", str(tmp_path / "runs")]
    for batch in ("32", "64"):
        assert main([*flags, "--batch-size", batch]) == 2
        said = capsys.readouterr()
        assert (said.out, said.err) == ("", f"error: batch_size = {batch} is larger than {where}, or 0 for the whole split\n")
    assert not (tmp_path / "runs").exists()


def test_a_batch_of_32_in_a_config_file_is_refused_where_the_default_fits_the_split(tmp_path, capsys):
    table = write_table(tmp_path / "small.csv", rows=25)
    flags = ["train", str(table), "--target", "weight", "--features", "x1,x2", "--epochs", "1", "--progress", "off",
             "--out", str(tmp_path / "runs")]
    settings = tmp_path / "batch.toml"
    settings.write_text("batch_size = 32\n")
    assert main([*flags, "--config", str(settings)]) == 2
    assert capsys.readouterr().err == ("error: batch_size = 32 is larger than the training split (20 samples); use at most "
                                       "20, or 0 for the whole split\n")
    assert main(flags) == 0  # left to its default, the batch takes the whole split
    assert "note: the training split has 20 rows, fewer than the default batch of 32" in capsys.readouterr().err
    assert "batch_size = 0" in (tmp_path / "runs" / "small-two_layer" / "config.toml").read_text()


def test_a_batch_of_32_given_from_python_is_refused_where_the_default_fits_the_split(tmp_path, recwarn):
    import riskmin

    table = write_table(tmp_path / "small.csv", rows=25)
    settings = dict(target="weight", features=["x1", "x2"], epochs=1, progress=False)
    for call in (lambda **s: riskmin.fit("linear", str(table), **s),
                 lambda **s: riskmin.montecarlo("linear", str(table), runs=2, **s),
                 lambda **s: riskmin.curve("linear", str(table), sizes=(0.5, 1.0), runs=2, **s)):
        with pytest.raises(riskmin.RiskminError, match=r"^batch_size = 32 is larger than the training split"):
            call(batch_size=32, **settings)
    # left to its default, the batch takes the whole split (a Config passed whole: the tests below)
    assert riskmin.fit("linear", str(table), **settings).config.batch_size == 0


SMALL = ["--target", "weight", "--features", "x1,x2", "--epochs", "1", "--progress", "off"]  # 20 training rows of 25
REFUSED = "batch_size = 32 is larger than the training split (20 samples); use at most 20, or 0 for the whole split"
DEFAULT_NOTE = ("the training split has 20 rows, fewer than the default batch of 32; batch_size 0 is used: each step "
                "takes its whole training split")


def test_the_default_batch_alone_is_marked_and_every_copy_keeps_what_it_was():
    assert isinstance(Config().batch_size, DefaultBatch) and Config().batch_size == 32
    for default in (Config(), Config().replace(lr=0.1), Config(lr=0.1).replace(seed=3),
                    Config.from_dict(Config().to_dict())):
        assert isinstance(default.batch_size, DefaultBatch)
    for given in (Config(batch_size=32), Config().replace(batch_size=32), Config(batch_size=32).replace(lr=0.1),
                  Config.from_dict({"batch_size": 32}), Config(batch_size=64)):
        assert type(given.batch_size) is int
    assert Config(batch_size=32) == Config()  # the same settings, whoever gave them


def test_a_config_passed_whole_with_a_batch_of_32_is_refused_as_the_flag_is(tmp_path, capsys):
    table = write_table(tmp_path / "small.csv", rows=25)
    assert main(["train", str(table), *SMALL, "--out", str(tmp_path / "runs"), "--batch-size", "32"]) == 2
    assert capsys.readouterr().err == f"error: {REFUSED}\n"
    settings = dict(target="weight", features=["x1", "x2"], epochs=1, progress=False)
    for given in (Config(batch_size=32), Config().replace(batch_size=32), Config(batch_size=32).replace(lr=0.1)):
        for call in (lambda: riskmin.fit("linear", str(table), given, **settings),
                     lambda: riskmin.montecarlo("linear", str(table), runs=2, config=given, **settings),
                     lambda: riskmin.compare({"a": {"lr": 0.1}, "b": {"lr": 0.01}}, str(table), runs=2, config=given,
                                             model="linear", **settings)):
            with pytest.raises(RiskminError) as refused:
                call()
            assert str(refused.value) == REFUSED
    with pytest.raises(RiskminError, match=r"^batch_size = 32 is larger than the training split of size 0.5 \(10 "):
        riskmin.curve("linear", str(table), sizes=(0.5, 1.0), runs=2, config=Config(batch_size=32), **settings)


def test_a_config_left_at_the_default_batch_takes_a_small_training_split_whole_with_a_note(tmp_path):
    table = write_table(tmp_path / "small.csv", rows=25)
    settings = dict(target="weight", features=["x1", "x2"], epochs=1, progress=False)
    for config in (Config(), Config().replace(lr=0.1), Config(lr=0.1)):
        runs = []
        said = notes_of(lambda: runs.append(riskmin.fit("linear", str(table), config, **settings)))
        assert runs[0].config.batch_size == 0 and said.count(DEFAULT_NOTE) == 1


def test_a_candidate_given_a_batch_of_32_trains_apart_from_the_default_and_is_refused(tmp_path, capsys):
    configs = candidate_configs({"given": {"batch_size": 32}, "default": {"lr": 0.1}, "other": {"lr": 0.5}}, Config())
    assert stacks(configs) == [["given"], ["default", "other"]]
    table = write_table(tmp_path / "small.csv", rows=25)
    with pytest.raises(RiskminError) as refused:  # before the default's stack trains, which comes first
        riskmin.compare({"default": {"lr": 0.1}, "given": {"batch_size": 32}}, str(table), runs=2, model="linear",
                        target="weight", features=["x1", "x2"], epochs=1, progress=True)
    assert str(refused.value) == f"candidate 'given': {REFUSED}"
    assert "stack 1" not in capsys.readouterr().out


def test_compare_refuses_a_batch_of_32_in_its_config_file_as_the_flag(tmp_path, capsys):
    table = write_table(tmp_path / "small.csv", rows=25)
    flags = ["compare", str(table), *SMALL, "--runs", "2", "--out", str(tmp_path / "runs")]
    grid = tmp_path / "grid.toml"
    for text, whose in (("batch_size = 32\n[fast]\nlr = 0.1\n[slow]\nlr = 0.01\n", ""),  # shared by the candidates
                        ("[fast]\nlr = 0.1\nbatch_size = 32\n[slow]\nlr = 0.01\nbatch_size = 32\n", "candidate 'fast': ")):
        grid.write_text(text)
        assert main([*flags, "--config", str(grid)]) == 2
        assert capsys.readouterr().err == f"error: {whose}{REFUSED}\n"
    assert main([*flags, "--lr", "0.1,0.01", "--batch-size", "32"]) == 2
    assert capsys.readouterr().err == f"error: {REFUSED}\n"
    # a candidate of its own batch, after one that fits: refused before the first stack trains
    assert main([*flags, "--batch-size", "16,32", "--progress", "on"]) == 2
    out, err = capsys.readouterr()
    assert err == f"error: candidate 'batch_size=32': {REFUSED}\n" and "stack 1" not in out
    assert not (tmp_path / "runs").exists()


def test_a_run_on_the_default_batch_resumes_and_reruns_from_its_own_config_toml(tmp_path, capsys, signal_at):
    table = write_table(tmp_path / "small.csv", rows=25)
    flags = [str(table), *SMALL, "--epochs", "3", "--model", "linear", "--out", str(tmp_path / "runs")]
    run = tmp_path / "runs" / "cut"
    # one step an epoch (the whole split): cut after the first, checkpointed
    assert main(["train", *flags, "--name", "cut", "--checkpoint-every", "1", *signal_at(1, "SIGINT")]) == 130
    # the default, left unset, is written as a comment: read back, it is the default again
    begun = (run / "config.toml").read_text()
    assert "\n# batch_size = 32 (the default, left unset: a training split of fewer rows trains as one batch)\n" in begun
    assert "\nbatch_size" not in begun and isinstance(Config.from_toml(run / "config.toml").batch_size, DefaultBatch)
    (tmp_path / "begun.toml").write_text(begun)
    capsys.readouterr()
    assert main(["train", "--resume", str(run)]) == 0
    assert "error" not in capsys.readouterr().err
    assert json.loads((run / "summary.json").read_text())["epochs_run"] == 3
    assert "\nbatch_size = 0\n" in (run / "config.toml").read_text()  # the finished run: the batch it trained with
    for number, settings in enumerate((tmp_path / "begun.toml", run / "config.toml")):
        assert main(["train", "--config", str(settings), "--name", f"again-{number}"]) == 0
        assert "error" not in capsys.readouterr().err
        assert (tmp_path / "runs" / f"again-{number}" / "summary.json").is_file()


def test_the_default_monitor_alone_is_marked_and_a_run_without_validation_reruns_from_its_config_toml(tmp_path, capsys,
                                                                                                     signal_at):
    for default in (Config(), Config().replace(lr=0.1), Config.from_dict(Config().to_dict())):
        assert isinstance(default.monitor, DefaultMonitor) and default.monitor == "val_loss"
    for given in (Config(monitor="val_loss"), Config().replace(monitor="val_loss"), Config.from_dict({"monitor": "val_loss"})):
        assert type(given.monitor) is str
    table = write_table(tmp_path / "small.csv", rows=25)
    flags = ["train", str(table), *SMALL, "--val", "0", "--model", "linear", "--out", str(tmp_path / "runs")]
    assert main([*flags, "--monitor", "val_loss", "--name", "given"]) == 2  # judged by what it cannot measure
    assert capsys.readouterr().err == ("error: monitor val_loss needs a validation split but val = 0; set --val 0.1 "
                                       '(val=0.1), or --monitor loss (monitor="loss") to judge by the training loss\n')
    assert main([*flags, "--name", "plain"]) == 0
    written = (tmp_path / "runs" / "plain" / "config.toml").read_text()
    assert '\n# monitor = "val_loss" (the default, left unset: without a validation split the final weights are kept)\n' in written
    assert main(["train", "--config", str(tmp_path / "runs" / "plain" / "config.toml"), "--name", "again"]) == 0
    assert "error" not in capsys.readouterr().err
    # a run written before the default was a comment: its line reads as the default, and it resumes and reruns
    assert main([*flags, "--name", "older", "--epochs", "3", "--checkpoint-every", "1", *signal_at(1, "SIGINT")]) == 130
    older = tmp_path / "runs" / "older" / "config.toml"
    older.write_text(older.read_text().replace('# monitor = "val_loss" (the default, left unset: without a validation split '
                                               'the final weights are kept)', 'monitor = "val_loss"'))
    assert '\nmonitor = "val_loss"\n' in older.read_text()
    capsys.readouterr()
    assert main(["train", "--resume", str(older.parent)]) == 0
    assert main(["train", "--config", str(older), "--name", "older-again"]) == 0
    assert "error" not in capsys.readouterr().err


@pytest.mark.parametrize("command", [["curve", "--sizes", "0.5,1"], ["compare", "--lr", "0.1,0.01"]])
def test_an_experiment_on_the_default_batch_reruns_from_its_own_config_toml(tmp_path, capsys, command):
    table = write_table(tmp_path / "small.csv", rows=25)
    flags = ["--runs", "2", "--model", "linear", "--out", str(tmp_path / "runs")]
    assert main([command[0], str(table), *command[1:], *SMALL, *flags, "--name", "first"]) == 0
    written = tmp_path / "runs" / "first" / "config.toml"
    assert "\n# batch_size = 32 (the default" in written.read_text()
    capsys.readouterr()
    assert main([command[0], "--config", str(written), *flags, "--name", "again"]) == 0
    assert "error" not in capsys.readouterr().err


def test_an_interrupted_montecarlo_on_the_default_batch_resumes(tmp_path, capsys, monkeypatch):
    table = write_table(tmp_path / "small.csv", rows=25)
    keep = Keeper.keep

    def interrupted(self, group, rows):  # Ctrl-C once the first run is kept
        keep(self, group, rows)
        raise KeyboardInterrupt

    monkeypatch.setattr(Keeper, "keep", interrupted)
    folder = tmp_path / "runs" / "cut"
    with pytest.raises(SystemExit) as stopped:
        main(["montecarlo", str(table), *SMALL, "--runs", "2", "--engine", "sequential", "--model", "linear",
              "--out", str(tmp_path / "runs"), "--name", "cut"])
    assert stopped.value.code == 130
    assert "\n# batch_size = 32 (the default" in (folder / "kept" / "settings.toml").read_text()
    monkeypatch.undo()
    capsys.readouterr()
    assert main(["montecarlo", "--resume", str(folder), "--progress", "off"]) == 0
    assert "error" not in capsys.readouterr().err and (folder / "summary.json").is_file()


def test_a_shared_batch_every_candidate_replaces_is_not_refused(tmp_path):
    table = write_table(tmp_path / "small.csv", rows=25)
    comparison = riskmin.compare({"a": {"batch_size": 8}, "b": {"batch_size": 4}}, str(table), runs=2, model="linear",
                                 config=Config(batch_size=64, epochs=1, target="weight", features="x1,x2"), progress=False)
    assert sorted(comparison.summary["candidates"]) == ["a", "b"]


def test_the_settings_of_a_datasets_loader_are_noted_unused_for_rows_held_in_memory(tmp_path, capsys):
    # --num-workers 2 --pin-memory on trained a table without a word, as if they had acted
    said = notes_of(lambda: riskmin.fit("linear", "lab1", epochs=1, num_workers=2, pin_memory=True, progress=False))
    assert said == ["num_workers= is not used with rows held in memory, only with a torch Dataset, read item by item",
                    "pin_memory= is not used with rows held in memory, only with a torch Dataset, read item by item"]
    assert main(["train", "lab1", "--epochs", "1", "--num-workers", "2", "--progress", "off", "--out", str(tmp_path)]) == 0
    assert "note: --num-workers is not used with rows held in memory, only with a torch" in capsys.readouterr().out
    dataset = torch.utils.data.TensorDataset(torch.randn(40, 3), torch.randn(40, 1))
    dataset_notes = notes_of(lambda: riskmin.fit("linear", dataset, epochs=1, num_workers=1, progress=False))
    assert not [note for note in dataset_notes if "num_workers" in note]  # they act


@pytest.mark.parametrize("experiment", ["montecarlo", "compare", "curve"])
def test_a_runs_own_settings_given_to_an_experiment_are_noted_unused_or_refused_as_flags(tmp_path, capsys, experiment):
    # log="tensorboard" wrote no scalars anywhere and said nothing; the flag was taken as well
    shared = dict(runs=2, epochs=1, progress=False, log="tensorboard", checkpoint_every=1)
    run = {"montecarlo": lambda: riskmin.montecarlo("linear", "lab1", **shared),
           "compare": lambda: riskmin.compare({"a": {"lr": 0.01}, "b": {"lr": 0.1}}, "lab1", model="linear", **shared),
           "curve": lambda: riskmin.curve("linear", "lab1", sizes=(0.5, 1.0), **shared)}[experiment]
    said = [note for note in notes_of(run) if "not used by an experiment" in note]
    assert said == ["log= and checkpoint_every= are not used by an experiment, which keeps no directory of each run's own; fit uses them"]
    assert main([experiment, "lab1", "--runs", "2", "--epochs", "1", "--log", "tensorboard", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"error: --log is a setting of riskmin train, not of riskmin {experiment}\n"
    assert not list(tmp_path.iterdir())
