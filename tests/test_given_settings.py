"""Settings as users give them: several targets as a list, and a note on a setting the data's task leaves unused
(stratify for a regression target), said once and only when it was given."""

import warnings

import pytest

import riskmin
from riskmin import Config, RiskminError
from riskmin._cli._main import main
from riskmin.config import RiskminNote, fact, given_for_task


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
    # left to its default, or a Config passed whole (which cannot say it was given), the batch takes the whole split
    assert riskmin.fit("linear", str(table), **settings).config.batch_size == 0
    assert riskmin.fit("linear", str(table), riskmin.Config(batch_size=32), **settings).config.batch_size == 0
