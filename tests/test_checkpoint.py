import json
import os
import pickle
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import riskmin
from riskmin import RiskminError
from riskmin._training._checkpoint import Checkpoints
from riskmin._files import RunLock, load_tensors, safetensors_bytes
from riskmin._cli._main import main
from said import unwrapped

# Dropout and small batches: the resumed run must also restore the global RNG and the batch order.
# 800 training rows in batches of 16: 50 steps an epoch, a checkpoint at the end of each.
ARGS = ["lab1", "--model", "mlp", "--hidden", "32,32", "--dropout", "0.1", "--batch-size", "16", "--epochs", "16",
        "--patience", "100", "--progress", "off", "--checkpoint-every", "1"]
STEPS_PER_EPOCH = 50


def start(tmp_path, *args):
    """`riskmin train` in a process of its own (interrupted at a step by the flags of the `signal_at` fixture)."""
    out = [] if "--resume" in args else ["--out", str(tmp_path)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "riskmin", "train", *args, *out], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def finish(tmp_path, *args):
    process = start(tmp_path, *args)
    out, err = process.communicate(timeout=300)
    return process.returncode, err


def metrics_without_seconds(run_dir: Path) -> list:
    lines = (run_dir / "metrics.csv").read_text().splitlines()
    keep = [i for i, name in enumerate(lines[0].split(",")) if name != "seconds"]
    return [[line.split(",")[i] for i in keep] for line in lines]


def assert_same_run(a: Path, b: Path):
    assert (a / "model.safetensors").read_bytes() == (b / "model.safetensors").read_bytes()
    assert metrics_without_seconds(a) == metrics_without_seconds(b)
    summary_a, summary_b = (json.loads((d / "summary.json").read_text()) for d in (a, b))
    for key in ("best_epoch", "train_loss", "val_loss", "test_loss", "steps"):
        assert summary_a[key] == summary_b[key], key


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("full")
    code, err = finish(out, *ARGS, "--name", "full")
    assert code == 0, err
    return out / "full"


def checkpoints(run_dir: Path) -> list:
    """Manifests of the finished checkpoints, newest first."""
    return Checkpoints(run_dir).complete()


def checkpointed_epoch(run_dir: Path) -> int:
    """The epoch the newest finished checkpoint was written at (0 before the first)."""
    newest = checkpoints(run_dir)
    return json.loads(newest[0].read_text())["epoch"] if newest else 0


def data_of(manifest: Path) -> Path:
    return manifest.with_name(manifest.name.replace(".manifest.json", ".safetensors"))


def test_sigint_inside_an_epoch_saves_and_resume_is_bitwise_identical(tmp_path, signal_at, uninterrupted):
    code, err = finish(tmp_path, *ARGS, "--name", "cut", *signal_at(2 * STEPS_PER_EPOCH + 17, "SIGINT"))  # inside epoch 3
    assert code == 130
    assert f"continue with: riskmin train --resume {tmp_path / 'cut'}" in unwrapped(err) and "Traceback" not in err
    assert not (tmp_path / "cut" / "summary.json").exists()
    code, err = finish(tmp_path, "--resume", str(tmp_path / "cut"))
    assert code == 0, err
    assert_same_run(uninterrupted, tmp_path / "cut")


@pytest.mark.parametrize("step", [1000, 1030])
def test_a_resume_on_either_side_of_the_fold_of_unreported_losses_is_bitwise_identical(tmp_path, signal_at, step):
    # 1,200 steps an epoch: the losses not yet reported fold into one tensor at the 1,024th, which the resumed run must
    # repeat at the same step whether it was cut before the fold (1,000) or after it (1,030)
    args = ["lab1", "--n-samples", "1500", "--model", "two_layer", "--hidden", "4", "--batch-size", "1", "--epochs",
            "2", "--progress", "off", "--checkpoint-every", "1"]
    code, err = finish(tmp_path, *args, "--name", "full")
    assert code == 0, err
    assert finish(tmp_path, *args, "--name", "cut", *signal_at(step, "SIGINT"))[0] == 130
    code, err = finish(tmp_path, "--resume", str(tmp_path / "cut"))
    assert code == 0, err
    assert_same_run(tmp_path / "full", tmp_path / "cut")


def test_a_checkpoint_that_holds_the_sum_of_the_unreported_losses_resumes(tmp_path, signal_at, uninterrupted):
    # the earlier riskmin saved the loss since the last report as one sum ("running"), not the list of it ("losses")
    import hashlib

    from riskmin._files import decode_safetensors, safetensors_metadata

    assert finish(tmp_path, *ARGS, "--name", "cut", *signal_at(2 * STEPS_PER_EPOCH + 17, "SIGINT"))[0] == 130
    manifest = checkpoints(tmp_path / "cut")[0]
    data = data_of(manifest).read_bytes()
    tensors = decode_safetensors(data, data_of(manifest))
    tensors["running"] = tensors.pop("losses").sum()
    earlier = safetensors_bytes(tensors, safetensors_metadata(data, data_of(manifest)))
    data_of(manifest).write_bytes(earlier)
    listed = json.loads(manifest.read_text())
    listed["files"][data_of(manifest).name] = hashlib.sha256(earlier).hexdigest()
    manifest.write_text(json.dumps(listed))
    code, err = finish(tmp_path, "--resume", str(tmp_path / "cut"))
    assert code == 0, err
    assert (uninterrupted / "model.safetensors").read_bytes() == (tmp_path / "cut" / "model.safetensors").read_bytes()
    loss_at_epoch_3 = [float(metrics_without_seconds(run)[3][2]) for run in (uninterrupted, tmp_path / "cut")]
    assert loss_at_epoch_3[0] == pytest.approx(loss_at_epoch_3[1], rel=1e-6)  # the same losses, summed in another order


def test_best_weights_from_long_before_the_interruption_survive_the_resume(tmp_path, signal_at):
    # with this min_delta nothing beats epoch 1, so its weights ride through every checkpoint, resumed and written again
    args = [*ARGS[:-4], "--epochs", "8", "--min-delta", "1000", "--progress", "off"]
    code, err = finish(tmp_path, *args, "--name", "full")
    assert code == 0, err
    assert finish(tmp_path, *args, "--name", "cut", *signal_at(4 * STEPS_PER_EPOCH + 3, "SIGINT"))[0] == 130
    code, err = finish(tmp_path, "--resume", str(tmp_path / "cut"))
    assert code == 0, err
    assert json.loads((tmp_path / "cut" / "summary.json").read_text())["best_epoch"] == 1
    assert_same_run(tmp_path / "full", tmp_path / "cut")


@pytest.mark.parametrize("length", [{"epochs": 5}, {"max_steps": 37, "epochs": 100}])  # the last step ends an epoch, or not
def test_a_run_interrupted_at_its_last_step_resumes_to_its_last_validation(tmp_path, length):
    torch.manual_seed(0)
    x = torch.randn(100, 5)
    y = x @ torch.randn(5, 1) + 0.1 * torch.randn(100, 1)
    settings = dict(seed=1, batch_size=10, progress=False, **length)  # 8 steps an epoch
    last = length.get("max_steps", 40)

    class StopAtTheLastStep:
        def on_step_end(self, state):
            if state.step == last:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt, match=f"after step {last}; the checkpoint is saved"):
        riskmin.fit("linear", (x, y), directory=tmp_path / "run", callbacks=[StopAtTheLastStep()], **settings)
    resumed = riskmin.fit("linear", (x, y), directory=tmp_path / "run", resume=True, **settings)
    uninterrupted = riskmin.fit("linear", (x, y), **settings)
    # the checkpoint stood before the epoch's end: the resumed run skipped it, its last validation, and chose another best
    assert [row["step"] for row in resumed.history] == [row["step"] for row in uninterrupted.history]
    assert resumed.best_epoch == uninterrupted.best_epoch and resumed.test == uninterrupted.test
    weights, whole = resumed.model.state_dict(), uninterrupted.model.state_dict()
    assert all(torch.equal(weights[k], whole[k]) for k in whole)


@pytest.mark.parametrize("accumulate", [1, 2])
def test_an_interruption_asked_at_an_epochs_end_leaves_there_and_resumes_exactly(tmp_path, accumulate):
    torch.manual_seed(0)
    x = torch.randn(100, 5)
    y = x @ torch.randn(5, 1) + 0.1 * torch.randn(100, 1)
    settings = dict(seed=1, batch_size=10, epochs=5, accumulate=accumulate, progress=False)  # 8 batches an epoch

    def built():
        torch.manual_seed(1)
        return torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Dropout(0.2), torch.nn.Linear(8, 1))

    class StopAfter:
        def __init__(self, epoch):
            self.epoch = epoch

        def on_epoch_end(self, state):
            if state.epoch == self.epoch:
                raise KeyboardInterrupt

    # it left a step (or a batch) into the third: "interrupted in epoch 3 after step 17"
    with pytest.raises(KeyboardInterrupt, match=f"^interrupted in epoch 2 after step {16 // accumulate}; the checkpoint is saved"):
        riskmin.fit(built(), (x, y), directory=tmp_path / "run", callbacks=[StopAfter(2)], **settings)
    resumed = riskmin.fit(built(), (x, y), directory=tmp_path / "run", resume=True, **settings)
    uninterrupted = riskmin.fit(built(), (x, y), **settings)
    assert [row["step"] for row in resumed.history] == [row["step"] for row in uninterrupted.history]
    assert resumed.test == uninterrupted.test
    weights, whole = resumed.model.state_dict(), uninterrupted.model.state_dict()
    assert all(torch.equal(weights[k], whole[k]) for k in whole)
    with pytest.raises(KeyboardInterrupt, match="^interrupted after the last step, once the run was finished"):  # as before
        riskmin.fit(built(), (x, y), directory=tmp_path / "last", callbacks=[StopAfter(5)], **settings)


@pytest.mark.parametrize("length", [{"epochs": 6}, {"max_steps": 40}, {"max_steps": 40, "epochs": 3}])
def test_a_resume_that_gives_no_length_trains_as_long_as_the_run_began_to(tmp_path, length):
    torch.manual_seed(0)
    x = torch.randn(300, 5)
    y = x @ torch.randn(5, 1) + 0.1 * torch.randn(300, 1)

    class Stop:
        def on_step_end(self, state):
            if state.step == 10:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        riskmin.fit("linear", (x, y), progress=False, directory=tmp_path / "run", callbacks=[Stop()], **length)
    # without epochs= or max_steps=, it trained on to the default 100 epochs
    resumed = riskmin.fit("linear", (x, y), progress=False, directory=tmp_path / "run", resume=True)
    uninterrupted = riskmin.fit("linear", (x, y), progress=False, **length)
    assert resumed.summary["steps"] == uninterrupted.summary["steps"] and resumed.test == uninterrupted.test
    with pytest.raises(KeyboardInterrupt):  # a length given still goes on for as long as it says
        riskmin.fit("linear", (x, y), progress=False, directory=tmp_path / "longer", callbacks=[Stop()], **length)
    longer = riskmin.fit("linear", (x, y), progress=False, directory=tmp_path / "longer", resume=True, max_steps=70)
    assert longer.summary["steps"] == 70


class FrozenBody(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.body, self.head = torch.nn.Linear(5, 8), torch.nn.Linear(8, 1)
        self.body.requires_grad_(False)

    def forward(self, x):
        return self.head(torch.tanh(self.body(x)))


class Unfreeze:  # the README's way: the layer trains, in a group of its own at a rate of its own
    def on_epoch_end(self, state):
        if state.epoch == 2:
            state.model.body.requires_grad_(True)
            state.optimizer.add_param_group({"params": list(state.model.body.parameters()), "lr": 0.002})


@pytest.mark.parametrize("given", ["as_built", "unfrozen"])
def test_a_run_whose_callback_unfroze_a_layer_into_a_group_of_its_own_resumes_exactly(tmp_path, given):
    torch.manual_seed(0)
    x = torch.randn(300, 5)
    y = x @ torch.randn(5, 1) + 0.1 * torch.randn(300, 1)

    def built():
        torch.manual_seed(1)
        return FrozenBody()

    class Stop:
        def on_step_end(self, state):
            if state.step == 30:  # in epoch 4, after the unfreezing
                raise KeyboardInterrupt

    settings = dict(epochs=6, progress=False, directory=tmp_path / "run")
    with pytest.raises(KeyboardInterrupt):
        riskmin.fit(built(), (x, y), callbacks=[Unfreeze(), Stop()], **settings)
    resumed = built()
    if given == "unfrozen":  # the module given as it stood, the layer already unfrozen: the groups are the run's still
        resumed.body.requires_grad_(True)
    # its optimizer, built afresh with one group, was refused as "damaged: train it again from the start"
    riskmin.fit(resumed, (x, y), resume=True, callbacks=[Unfreeze()], **settings)
    whole = built()
    riskmin.fit(whole, (x, y), epochs=6, progress=False, callbacks=[Unfreeze()])
    assert all(torch.equal(a, b) for a, b in zip(resumed.state_dict().values(), whole.state_dict().values()))
    assert not torch.equal(whole.body.weight, built().body.weight)  # the layer trained once unfrozen


def test_a_resume_whose_optimizer_holds_a_parameter_the_model_does_not_own_is_refused_as_such(tmp_path):
    torch.manual_seed(0)
    x = torch.randn(300, 5)
    y = x @ torch.randn(5, 1) + 0.1 * torch.randn(300, 1)
    weight = torch.nn.Parameter(torch.ones(1))  # a learnable weight of the loss, say, which the optimizer holds

    def optimizer(parameters):
        return torch.optim.Adam([{"params": list(parameters)}, {"params": [weight]}], lr=0.01)

    class Stop:
        def on_step_end(self, state):
            if state.step == 30:
                raise KeyboardInterrupt

    def built():
        torch.manual_seed(1)
        return FrozenBody()

    settings = dict(epochs=6, progress=False, directory=tmp_path / "run", optimizer=optimizer)
    with pytest.raises(KeyboardInterrupt):
        riskmin.fit(built(), (x, y), callbacks=[Unfreeze(), Stop()], **settings)
    model = built()
    with pytest.raises(RiskminError, match="^the checkpoint's optimizer had 3 parameter groups and the one built now has "
                                           "2; a resume regroups the model's own parameters by name"):
        riskmin.fit(model, (x, y), resume=True, callbacks=[Unfreeze()], **settings)
    assert not model.body.weight.requires_grad  # left as it was given, where it was called damaged


def test_loaded_tensors_do_not_change_when_their_file_is_overwritten(tmp_path):
    path = tmp_path / "t.safetensors"
    path.write_bytes(safetensors_bytes({"w": torch.ones(1000)}, {}))
    loaded = load_tensors(path)
    with open(path, "r+b") as file:  # what the checkpoint writer does to a retired file it reuses
        file.write(safetensors_bytes({"w": torch.full((1000,), 7.0)}, {}))
    assert torch.equal(loaded["w"], torch.ones(1000))


def test_sigterm_is_handled_like_sigint(tmp_path, signal_at):
    code, err = finish(tmp_path, *ARGS, "--name", "term", *signal_at(STEPS_PER_EPOCH + 5, "SIGTERM"))
    assert code == 130 and "riskmin train --resume" in err


@pytest.mark.parametrize("step", [2 * STEPS_PER_EPOCH + 1, 3 * STEPS_PER_EPOCH + 25, 5 * STEPS_PER_EPOCH])
def test_sigkill_then_resume_is_bitwise_identical(tmp_path, signal_at, uninterrupted, step):
    # killed on the step after a checkpoint was handed to its writer (the one before is complete), in the middle of an epoch, and on an epoch's last step
    run_dir = tmp_path / "killed"
    code, _ = finish(tmp_path, *ARGS, "--name", "killed", *signal_at(step, "SIGKILL"))
    assert code == -signal.SIGKILL and not (run_dir / "summary.json").exists()
    code, err = finish(tmp_path, "--resume", str(run_dir))
    assert code == 0, err
    assert_same_run(uninterrupted, run_dir)


def test_a_damaged_newest_checkpoint_falls_back_to_the_one_before(tmp_path, signal_at, uninterrupted):
    assert finish(tmp_path, *ARGS, "--name", "damaged", *signal_at(3 * STEPS_PER_EPOCH + 10, "SIGKILL"))[0] == -signal.SIGKILL
    newest = data_of(checkpoints(tmp_path / "damaged")[0])
    data = newest.read_bytes()
    newest.write_bytes(data[: len(data) // 2])  # truncated
    code, err = finish(tmp_path, "--resume", str(tmp_path / "damaged"))
    assert code == 0, err
    assert f"warning: checkpoint {newest.stem} is unusable ({newest.name} does not match its checksum)" in unwrapped(err)
    assert_same_run(uninterrupted, tmp_path / "damaged")


def test_checksums_catch_an_altered_byte_and_a_missing_file(tmp_path):
    riskmin.fit("linear", "lab1", epochs=3, progress=False, checkpoint_every=1, directory=tmp_path)
    newest, older = checkpoints(tmp_path)
    data = bytearray(data_of(newest).read_bytes())
    data[-1] ^= 1  # one bit of one weight
    data_of(newest).write_bytes(bytes(data))
    warnings = []
    tensors, values = Checkpoints(tmp_path).latest(warn=warnings.append)
    assert values["epoch"] == 2 and "does not match its checksum" in warnings[0]
    data_of(older).unlink()
    with pytest.raises(RiskminError, match="has no usable checkpoint to resume from"):
        Checkpoints(tmp_path).latest(warn=warnings.append)
    assert warnings[-1].endswith(f"({data_of(older).name} is missing); trying the one before it")


def test_a_checkpoint_without_its_manifest_does_not_exist(tmp_path):
    riskmin.fit("linear", "lab1", epochs=3, progress=False, checkpoint_every=1, directory=tmp_path)
    newest, older = checkpoints(tmp_path)
    newest.unlink()  # as if the process died between writing the data and the manifest
    warnings = []
    tensors, values = Checkpoints(tmp_path).latest(warn=warnings.append)
    assert values["epoch"] == 2 and warnings == []


def test_old_checkpoints_are_removed_and_the_two_newest_kept(tmp_path):
    run = riskmin.fit("linear", "lab1", epochs=6, restore_best=False, progress=False, checkpoint_every=1, directory=tmp_path)
    per_epoch = run.summary["steps"] // 6
    names = sorted(p.name for p in (tmp_path / "checkpoint").iterdir())
    assert names == [f"step-{5 * per_epoch:09d}-000000.manifest.json", f"step-{5 * per_epoch:09d}-000000.safetensors",
                     f"step-{6 * per_epoch:09d}-000000.manifest.json", f"step-{6 * per_epoch:09d}-000000.safetensors"]
    tensors, values = Checkpoints(tmp_path).latest()
    assert values["epoch"] == 6 and values["history"] == run.history
    assert torch.equal(tensors["model/H.weight"], run.model.H.weight.detach())


def test_a_checkpoint_that_cannot_be_written_stops_the_run_with_a_clear_error(tmp_path, monkeypatch):
    import errno

    import riskmin._files

    def disk_full(path, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(riskmin._files, "atomic_write", disk_full)
    with pytest.raises(RiskminError, match=r"could not write a checkpoint in .*checkpoint \(No space left on device\); free space"):
        riskmin.fit("linear", "lab1", epochs=3, progress=False, checkpoint_every=1, directory=tmp_path)


def test_our_safetensors_writer_is_read_back_exactly_by_the_reference_reader(tmp_path):
    from safetensors import safe_open
    from safetensors.torch import load_file

    tensors = {"f32": torch.randn(3, 4), "f64": torch.randn(2, dtype=torch.float64), "bf16": torch.randn(5).bfloat16(),
               "i64": torch.arange(7), "u8": torch.Generator().manual_seed(3).get_state(), "flag": torch.tensor([True, False]),
               "scalar": torch.tensor(2.5), "empty": torch.zeros(0, 3), "strided": torch.randn(4, 4).T}
    (tmp_path / "t.safetensors").write_bytes(safetensors_bytes(tensors, {"note": "kept"}))
    loaded = load_file(str(tmp_path / "t.safetensors"))
    assert set(loaded) == set(tensors)
    for name, tensor in tensors.items():
        assert loaded[name].dtype == tensor.dtype and torch.equal(loaded[name], tensor), name
    with safe_open(str(tmp_path / "t.safetensors"), framework="pt") as file:
        assert file.metadata() == {"note": "kept"}


def test_a_safetensors_file_whose_first_byte_is_0x80_is_not_taken_for_a_pickle(tmp_path):
    tensors = {"w": torch.arange(4.0)}
    for pad in range(300):  # find a header whose length has 0x80 as its low byte, as pickles start
        data = safetensors_bytes(tensors, {"pad": "x" * pad})
        if data[0] == 0x80:
            break
    assert data[0] == 0x80
    (tmp_path / "ok.safetensors").write_bytes(data)
    assert torch.equal(load_tensors(tmp_path / "ok.safetensors")["w"], tensors["w"])


class Payload:
    """Unpickling this creates a marker file: proof that code from the file ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_a_pickle_payload_is_refused_and_never_runs(tmp_path):
    run = riskmin.fit("linear", "line", epochs=2, split="tutorial", progress=False)
    run_dir = run.save(tmp_path / "run")
    marker = tmp_path / "pwned"
    (run_dir / "model.safetensors").write_bytes(pickle.dumps(Payload(marker)))
    with pytest.raises(RiskminError, match="model.safetensors does not match the checksum in summary.json"):
        riskmin.Run.load(run_dir)
    summary = json.loads((run_dir / "summary.json").read_text())
    del summary["sha256"]  # as a run written before riskmin kept checksums: the file itself must still be refused
    (run_dir / "summary.json").write_text(json.dumps(summary))
    with pytest.raises(RiskminError, match="holds a pickle payload; riskmin .* never unpickles"):
        riskmin.Run.load(run_dir)
    torch.save({"weights": Payload(marker)}, tmp_path / "zip.safetensors")  # torch.save's zip format
    with pytest.raises(RiskminError, match="pickle payload"):
        load_tensors(tmp_path / "zip.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not tensors at all")
    with pytest.raises(RiskminError, match="is not a safetensors file"):
        load_tensors(tmp_path / "junk.safetensors")
    assert not marker.exists()


def test_run_load_gives_back_model_config_preprocessing_and_history(tmp_path):
    run = riskmin.fit("two_layer", "lab1", epochs=5, progress=False)
    loaded = riskmin.Run.load(run.save(tmp_path / "run"))
    assert loaded.config == run.config
    assert torch.equal(loaded.preprocessing.mean, run.preprocessing.mean)
    x = torch.randn(7, 10)
    assert torch.equal(riskmin.predict(loaded, x), riskmin.predict(run, x))
    assert [row["val_loss"] for row in loaded.history] == [row["val_loss"] for row in run.history]
    custom = riskmin.fit(torch.nn.Linear(10, 2), "lab1", epochs=2, progress=False)
    back = riskmin.Run.load(custom.save(tmp_path / "custom"), model=torch.nn.Linear(10, 2))
    assert torch.equal(back.model.weight, custom.model.weight)
    with pytest.raises(RiskminError) as refused:
        riskmin.Run.load(tmp_path / "custom", model=torch.nn.Linear(3, 1))
    assert str(refused.value) == (f"the weights in {tmp_path / 'custom'} do not fit the model given (weight is 2x10 in the run, "
                                  "1x3 in the model; bias is 2 in the run, 1 in the model); give a model built as the run's was")


def test_fit_with_a_directory_leaves_the_files_riskmin_train_writes_and_says_nothing(tmp_path, capsys):
    run = riskmin.fit("linear", "lab1", epochs=2, progress=False, directory=tmp_path / "mine")
    written = {p.name for p in (tmp_path / "mine").iterdir()}
    assert written - {"checkpoint"} == {"config.toml", "metrics.csv", "model.safetensors", "summary.json", "preprocessing.json",
                                        "curves.png"}
    assert torch.equal(riskmin.Run.load(tmp_path / "mine").model.H.weight, run.model.H.weight)
    assert capsys.readouterr().out == ""


def test_run_save_without_a_directory_returns_and_says_where_and_repr_is_one_short_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    run = riskmin.fit("linear", "lab1", epochs=2, progress=False)
    first, second = run.save(), run.save()  # the second may not overwrite the first: it gets the next number
    assert (first, second) == (Path("runs/lab1-linear"), Path("runs/lab1-linear-2"))
    assert capsys.readouterr().out == "run written to runs/lab1-linear\nrun written to runs/lab1-linear-2\n"
    assert riskmin.Run.load(second).summary["best_epoch"] == run.best_epoch
    assert repr(run) == f"Run(lab1, linear, best epoch {run.best_epoch} of 2, test loss {run.test['test_loss']:.4g})"
    assert repr(riskmin.fit("linear", "line", split="tutorial", epochs=1, progress=False)).endswith(", no test split)")


def test_a_second_writer_is_refused(tmp_path, signal_at, capsys):
    # killed in epoch 3: the checkpoint of epoch 1 is on disk for sure (epoch 2's waited for it), so the run is resumable
    assert finish(tmp_path, *ARGS, "--name", "busy", *signal_at(2 * STEPS_PER_EPOCH + 10, "SIGKILL"))[0] == -signal.SIGKILL
    def snapshot():  # every file of the run but the lock itself, which the test's own lock rewrites
        return sorted((p.name, p.stat().st_mtime_ns) for p in (tmp_path / "busy").rglob("*") if p.name != ".lock")

    before = snapshot()
    with RunLock(tmp_path / "busy"):
        assert main(["train", "--resume", str(tmp_path / "busy")]) == 2
        assert main(["train", "--out", str(tmp_path), "--name", "busy", "--overwrite", "--progress", "off"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith(f"error: run directory {tmp_path / 'busy'} is being written by riskmin process {os.getpid()}")
                                 for line in err)
    assert snapshot() == before


def test_overwrite_replaces_a_finished_run_and_keeps_the_users_own_files(tmp_path):
    assert main(["train", "--epochs", "1", "--out", str(tmp_path), "--name", "again", "--progress", "off"]) == 0
    (tmp_path / "again" / "extra.txt").write_text("old")
    assert main(["train", "--epochs", "2", "--out", str(tmp_path), "--name", "again", "--overwrite", "--progress", "off"]) == 0
    assert (tmp_path / "again" / "extra.txt").read_text() == "old"  # the user's own file moves into the new run
    assert json.loads((tmp_path / "again" / "summary.json").read_text())["epochs_run"] == 2


FORKED = """
import multiprocessing, os, sys, torch, riskmin
torch.set_num_threads(1)
riskmin.fit("linear", "line", epochs=2, progress=False, checkpoint_every=1, directory=os.path.join(sys.argv[1], "parent"))
def child():
    riskmin.fit("linear", "line", epochs=2, progress=False, checkpoint_every=1, directory=os.path.join(sys.argv[1], "child"))
process = multiprocessing.get_context("fork").Process(target=child)
process.start()
process.join(60)
if process.exitcode is None:
    process.kill()
sys.exit(3 if process.exitcode is None else process.exitcode)
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_process_forked_after_a_checkpoint_writes_its_own(tmp_path):
    # the child inherits the parent's checkpoint writer but not its thread; work handed to that copy would never run
    result = subprocess.run([sys.executable, "-c", FORKED, str(tmp_path)], capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    assert list((tmp_path / "child" / "checkpoint").glob("step-*.manifest.json"))


slow = pytest.mark.skipif(os.environ.get("RISKMIN_SLOW") != "1", reason="slow: set RISKMIN_SLOW=1 to run it")

# One process imports riskmin once and forks a copy per `riskmin` command, so that 20 trials cost seconds, not minutes
# of imports. A trial is a list of commands: ("train" | "resume", step to SIGKILL it after, or 0 to let it finish);
# `kills` gives each such step the flags that kill the command there.
KILL_AND_RESUME = """
import json, os, sys, traceback
import matplotlib.figure, safetensors, torch
import riskmin._cli._main, riskmin._training._loop, riskmin._runs._rundir
torch.optim.Adam([torch.zeros(1, requires_grad=True)])  # its first use imports torch._dynamo: seconds, once here, not in each child
out, args, trials, kills = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3]), json.loads(sys.argv[4])

def command(argv, kill_at, log):
    pid = os.fork()
    if pid == 0:  # the child: the command, its output in the log, and out at once, never back into the parent's code
        code = 70
        try:
            handle = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
            os.dup2(handle, 1)
            os.dup2(handle, 2)
            code = riskmin._cli._main.main(argv + (kills[str(kill_at)] if kill_at else []))
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])

codes = {}
for name, steps in trials.items():
    run, log = os.path.join(out, name), os.path.join(out, name + ".log")
    codes[name] = [command(["train", *args, "--out", out, "--name", name] if i == 0 else ["train", "--resume", run], kill_at, log)
                   for i, kill_at in enumerate(steps)]
print(json.dumps(codes))
"""


@slow
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_runs_killed_at_random_steps_and_resumed_end_bitwise_equal_to_the_uninterrupted_run(tmp_path, signal_at):
    import random

    # 16 steps an epoch, a checkpoint after each; dropout and early stopping: random and callback state to carry over
    args = ["lab1", "--model", "mlp", "--hidden", "16,16", "--dropout", "0.1", "--batch-size", "50", "--epochs", "5",
            "--patience", "100", "--checkpoint-every", "1", "--threads", "1", "--progress", "off"]
    steps = 5 * 16
    draw = random.Random(19)
    trials = {"uninterrupted": [0]}
    for trial in range(20):  # killed once or twice, on any step: before the first checkpoint, during a write, after
        kills = sorted(draw.sample(range(1, steps), draw.choice([1, 1, 2])))
        trials[f"trial-{trial}"] = [*kills, 0]
    kills = {step: signal_at(step, "SIGKILL") for steps in trials.values() for step in steps if step}
    result = subprocess.run([sys.executable, "-c", KILL_AND_RESUME, str(tmp_path), json.dumps(args), json.dumps(trials),
                             json.dumps(kills)],
                            capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    codes = json.loads(result.stdout.strip().splitlines()[-1])
    assert codes["uninterrupted"] == [0], (tmp_path / "uninterrupted.log").read_text()[-3000:]
    for name, kills in trials.items():
        assert codes[name] == [-signal.SIGKILL] * (len(kills) - 1) + [0], (name, kills, (tmp_path / f"{name}.log").read_text()[-3000:])
        assert_same_run(tmp_path / "uninterrupted", tmp_path / name)
    # the moments drawn cover both sides of the first checkpoint (the end of epoch 1, step 16)
    first_kills = [kills[0] for name, kills in trials.items() if name != "uninterrupted"]
    assert min(first_kills) <= 16 < max(first_kills)


def signals_while_finishing(monkeypatch, count: int, runs=None) -> None:
    """Send this process `count` SIGINTs as a run, its steps done, starts being measured and written (the `runs`-th
    run alone, counting from 1, when given): a Ctrl-C at a point chosen in advance."""
    from riskmin._training import _loop

    finish, started = _loop.finish, []

    def finishing(training):
        started.append(training)
        if runs is None or len(started) == runs:
            for _ in range(count):
                os.kill(os.getpid(), signal.SIGINT)
        return finish(training)
    monkeypatch.setattr(_loop, "finish", finishing)


def test_a_ctrl_c_once_the_steps_are_done_lets_the_run_be_measured_and_written_then_stops(tmp_path, monkeypatch):
    from riskmin._training._checkpoint import FinishedThenInterrupted

    signals_while_finishing(monkeypatch, 1)
    with pytest.raises(FinishedThenInterrupted, match="interrupted after the last step, once the run was finished and "
                                                      "written to") as stopped:
        riskmin.fit("linear", "lab1", epochs=3, progress=False, directory=tmp_path / "run")
    run = stopped.value.run  # a loop of fits stops, as the Ctrl-C asked, with the finished run in hand and on disk
    assert run.summary["epochs_run"] == 3 and (tmp_path / "run" / "summary.json").is_file()
    assert riskmin.Run.load(tmp_path / "run").summary["test_loss"] == run.summary["test_loss"]


def test_a_ctrl_c_as_the_last_epoch_ends_is_not_lost(tmp_path):
    """A signal after the loop's last look at it (here in on_fit_end) is honoured once the run is written."""
    from riskmin._training._checkpoint import FinishedThenInterrupted

    class SignalAtTheEnd:  # a callback: any object with the hooks it wants
        def on_fit_end(self, state):
            os.kill(os.getpid(), signal.SIGINT)
    with pytest.raises(FinishedThenInterrupted):
        riskmin.fit("linear", "lab1", epochs=2, progress=False, directory=tmp_path / "run", callbacks=[SignalAtTheEnd()])
    assert (tmp_path / "run" / "summary.json").is_file()


@pytest.mark.parametrize("event", ["on_fit_end", "on_fit_start"])
def test_a_callback_that_raises_keyboardinterrupt_as_the_fit_starts_or_ends_is_a_ctrl_c(tmp_path, event):
    from riskmin._training._checkpoint import FinishedThenInterrupted, TrainingInterrupted

    # raised from on_fit_end, it left fit bare, without the run, and removed the folder of a run without a checkpoint
    callback = type("Stop", (), {event: lambda self, state: (_ for _ in ()).throw(KeyboardInterrupt)})()
    expected = FinishedThenInterrupted if event == "on_fit_end" else TrainingInterrupted
    with pytest.raises(expected) as stopped:
        riskmin.fit("linear", "lab1", epochs=2, progress=False, directory=tmp_path / "run", callbacks=[callback])
    if event == "on_fit_end":  # the steps were done: the run is finished and written
        assert (tmp_path / "run" / "summary.json").is_file() and stopped.value.run.summary["epochs_run"] == 2
    else:  # stopped at the first step's end, with a checkpoint that resumes it
        assert str(stopped.value).startswith("interrupted in epoch 1 after step 1; the checkpoint is saved")
        resumed = riskmin.fit("linear", "lab1", epochs=2, progress=False, directory=tmp_path / "run", resume=True)
        assert resumed.summary["epochs_run"] == 2


def test_the_command_stops_with_130_once_a_run_interrupted_while_finishing_is_written(tmp_path, monkeypatch, capsys):
    signals_while_finishing(monkeypatch, 1)
    assert main(["train", "lab1", "--epochs", "2", "--progress", "off", "--out", str(tmp_path), "--name", "late"]) == 130
    assert f"interrupted after the last step; the run was written to {tmp_path / 'late'}" in unwrapped(capsys.readouterr().err)
    assert (tmp_path / "late" / "summary.json").is_file() and (tmp_path / "late" / "model.safetensors").is_file()


def test_a_second_ctrl_c_while_the_run_is_finished_stops_at_once(tmp_path, monkeypatch):
    signals_while_finishing(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        riskmin.fit("linear", "lab1", epochs=3, progress=False, directory=tmp_path / "run")
    assert not (tmp_path / "run" / "summary.json").exists()


def test_a_ctrl_c_after_the_run_is_written_says_where_it_is(tmp_path, monkeypatch, capsys):
    from riskmin._runs import _report

    def interrupted(summary, console):
        raise KeyboardInterrupt  # Ctrl-C while the command prints the finished run's table
    monkeypatch.setattr(_report, "summary_table", interrupted)
    assert main(["train", "lab1", "--epochs", "2", "--progress", "off", "--out", str(tmp_path), "--name", "done"]) == 130
    assert f"interrupted; the run was written to {tmp_path / 'done'}" in unwrapped(capsys.readouterr().err)
    assert (tmp_path / "done" / "summary.json").is_file()
