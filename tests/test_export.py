"""riskmin export: one ONNX or TorchScript file whose numbers are those of riskmin predict, preprocessing included."""

import csv
import json
import warnings

import numpy as np
import pytest
import torch

import riskmin
from riskmin._cli._main import main


def table(path, classes: bool, rows: int = 120, towns: int = 3):
    """A CSV with an identifier, a number column with missing values, a text column with an empty cell, and a target.
    With more `towns` than 10% of the rows, the rarer ones share the input town=(other)."""
    rng = np.random.default_rng(0)
    names = ["north", "south", "west"] + [f"town{k}" for k in range(towns - 3)]
    size, town = rng.standard_normal(rows), rng.choice(names, rows, p=np.arange(towns, 0, -1) / (towns * (towns + 1) / 2))
    value = 2 * size + (town == "south") + 0.1 * rng.standard_normal(rows)
    target = np.where(value > 0.5, "dear", np.where(value > -0.5, "fair", "cheap")) if classes else value * 1000 + 5000
    cells = [[str(1000 + i), "" if i % 17 == 3 else f"{s:.5f}", "" if i == 7 else t, f"{v}" if classes else f"{v:.3f}"]
             for i, (s, t, v) in enumerate(zip(size, town, target))]
    path.write_text("id,size,town,price\n" + "".join(",".join(row) + "\n" for row in cells))
    return path


def trained(tmp_path, classes: bool, towns: int = 3):
    path = table(tmp_path / "shop.csv", classes, towns=towns)
    assert main(["train", str(path), "--target", "price", "--missing", "mean", "--epochs", "15", "--progress", "off",
                 "--out", str(tmp_path / "runs"), "--name", "shop"]) == 0
    return path, tmp_path / "runs" / "shop"


def predicted(tmp_path, path, run):
    assert main(["predict", str(run), str(path), "--out", str(tmp_path / "p.csv")]) == 0
    with open(tmp_path / "p.csv") as file:
        return list(csv.DictReader(file))


def raw_columns(path) -> dict:
    with open(path) as file:
        rows = list(csv.DictReader(file))
    return {"size": np.array([float(r["size"]) if r["size"] else np.nan for r in rows], dtype=np.float32),
            "town": np.array([r["town"] for r in rows], dtype=object)}


@pytest.mark.parametrize("classes, towns", [(False, 3), (True, 3), (False, 16)], ids=["regression", "classification", "other"])
def test_onnx_on_raw_columns_gives_what_riskmin_predict_writes(tmp_path, classes, towns):
    onnxruntime = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    path, run = trained(tmp_path, classes, towns)
    layout = json.loads((run / "preprocessing.json").read_text())["layout"]
    assert layout[1].get("other", False) == (towns > 12)  # 120 rows: at most 12 inputs for a text column
    assert main(["export", str(run), "--format", "onnx"]) == 0
    session = onnxruntime.InferenceSession(str(tmp_path / "runs" / "shop.onnx"))
    assert [i.name for i in session.get_inputs()] == ["size", "town"]  # the identifier is not a feature
    out = session.run(["outputs"], raw_columns(path))[0]
    written = predicted(tmp_path, path, run)
    meta = session.get_modelmeta().custom_metadata_map
    if classes:
        names = json.loads(meta["classes"])
        assert names == ["cheap", "dear", "fair"]
        expected = np.array([[float(row[f"probability_{c}"]) for c in names] for row in written])
    else:
        expected = np.array([[float(row["predicted_price"])] for row in written])
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5 * (1 if classes else 1000))


def test_torchscript_on_number_columns_gives_what_riskmin_predict_gives(tmp_path):
    rng = np.random.default_rng(1)
    x = torch.tensor(rng.standard_normal((100, 3)), dtype=torch.float32)
    x[5, 1] = float("nan")
    run = riskmin.fit("mlp", riskmin.Data(x, x[:, :1].nan_to_num() * 50 + 7, missing="mean"), hidden=(8,), epochs=5, progress=False)
    run.save(tmp_path / "run")
    assert main(["export", str(tmp_path / "run"), "--format", "torchscript", "--out", str(tmp_path / "m.pt")]) == 0
    files = {"features.json": ""}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit.load's deprecation notice
        loaded = torch.jit.load(str(tmp_path / "m.pt"), _extra_files=files)
    assert json.loads(files["features.json"]) == ["x0", "x1", "x2"]
    torch.testing.assert_close(loaded(x), riskmin.predict(run, x), rtol=1e-5, atol=1e-4)
    # float64 rows, as columns.json says a date is given: the interpreter's RuntimeError, before
    torch.testing.assert_close(loaded(x.double()), riskmin.predict(run, x), rtol=1e-5, atol=1e-4)
    assert not loaded(x).requires_grad and all(p.requires_grad for p in run.model.parameters())  # .numpy() works


def test_torchscript_refuses_a_missing_value_the_run_cannot_fill(tmp_path):
    x = torch.tensor(np.random.default_rng(1).standard_normal((60, 2)), dtype=torch.float32)
    run = riskmin.fit("linear", riskmin.Data(x, x[:, :1] * 3), epochs=2, progress=False)  # no missing="mean"
    run.save(tmp_path / "run")
    assert main(["export", str(tmp_path / "run"), "--format", "torchscript", "--out", str(tmp_path / "m.pt")]) == 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit.load's deprecation notice
        loaded = torch.jit.load(str(tmp_path / "m.pt"))
    torch.testing.assert_close(loaded(x), riskmin.predict(run, x))
    holed = x.clone()
    holed[3, 1] = float("nan")
    with pytest.raises(torch.jit.Error, match="missing .NaN. and the run was trained without --missing mean"):
        loaded(holed)  # where riskmin predict refuses it, the traced graph had answered NaN


@pytest.mark.parametrize("arguments, message", [
    (["--format", "tflite"], "error: --format tflite is not an export format; choose onnx or torchscript"),
    (["--out", "RUN/model.onnx"], "error: --out RUN/model.onnx is inside the run directory RUN; write the exported file elsewhere"),
    (["--format", "torchscript"], "error: torchscript takes number columns only but column town holds text; export --format onnx, "
                                  "which one-hot encodes text columns"),
    (["--format", "torchscript", "--out", "m.onnx"], "error: --out m.onnx names an ONNX file but --format torchscript writes "
                                                     "a TorchScript one; name it m.pt, or export --format onnx"),
    (["--out", "model.PT"], "error: --out model.PT names a TorchScript file but --format onnx writes an ONNX one; name it "
                            "model.onnx, or export --format torchscript"),
])
def test_what_cannot_be_exported_is_refused_in_one_line(tmp_path, capsys, arguments, message):
    path = table(tmp_path / "shop.csv", classes=False)
    assert main(["train", str(path), "--target", "price", "--missing", "mean", "--epochs", "1", "--progress", "off",
                 "--out", str(tmp_path / "runs"), "--name", "shop"]) == 0
    capsys.readouterr()
    run = str(tmp_path / "runs" / "shop")
    assert main(["export", run, *(argument.replace("RUN", run) for argument in arguments)]) == 2
    assert capsys.readouterr().err.strip() == message.replace("RUN", run)
    assert not (tmp_path / "runs" / "shop.pt").exists()


def test_an_export_centres_a_column_the_run_read_in_float64(tmp_path):
    import pyarrow
    from pyarrow import csv as arrow_csv

    rng = np.random.default_rng(0)
    z, w = rng.standard_normal(2000), rng.standard_normal(2000)
    arrow_csv.write_csv(pyarrow.table({"t": 1e9 + 100 * z, "w": w, "y": 2 * z + 0.5 * w}), tmp_path / "shifted.csv")
    run = riskmin.fit("linear", str(tmp_path / "shifted.csv"), target="y", optimizer="adam", lr=0.05, epochs=60, progress=False)
    run.save(tmp_path / "run")
    assert main(["export", str(tmp_path / "run"), "--format", "torchscript", "--out", str(tmp_path / "m.pt")]) == 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit.load's deprecation notice
        loaded = torch.jit.load(str(tmp_path / "m.pt"))
    rows = torch.tensor(np.stack([1e9 + 100 * z[:50], w[:50]], 1), dtype=torch.float64)  # float64 rows keep t's digits
    expected = torch.as_tensor(riskmin.predict(run, rows.numpy())).float()
    torch.testing.assert_close(loaded(rows), expected, rtol=1e-4, atol=1e-3)
    assert (expected[:, 0] - torch.as_tensor(2 * z[:50] + 0.5 * w[:50]).float()).abs().max() < 0.05


def test_onnx_takes_dates_and_centred_columns_as_float64_as_its_metadata_says(tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    sold = pd.Timestamp("2015-01-01") + pd.to_timedelta(rng.integers(0, 3000, 300), unit="D")
    z, size = rng.standard_normal(300), rng.standard_normal(300)
    frame = pd.DataFrame({"sold": sold.strftime("%Y-%m-%d"), "t": 1e9 + 100 * z, "size": size})
    frame["price"] = 2 * z + size + (sold.year - 2015) / 4
    frame.to_csv(tmp_path / "houses.csv", index=False)
    assert main(["train", str(tmp_path / "houses.csv"), "--target", "price", "--model", "linear", "--optimizer", "adam",
                 "--lr", "0.05", "--epochs", "40", "--progress", "off", "--out", str(tmp_path / "runs"), "--name", "h"]) == 0
    assert main(["export", str(tmp_path / "runs" / "h"), "--out", str(tmp_path / "h.onnx")]) == 0
    session = onnxruntime.InferenceSession(str(tmp_path / "h.onnx"))
    columns = json.loads(session.get_modelmeta().custom_metadata_map["columns"])
    assert columns == [{"name": "sold", "input": "float64", "unit": "seconds since 1970-01-01 UTC"},
                       {"name": "t", "input": "float64"}, {"name": "size", "input": "float32"}]
    assert [(i.name, i.type) for i in session.get_inputs()] == [("sold", "tensor(double)"), ("t", "tensor(double)"), ("size", "tensor(float)")]
    dates = pd.to_datetime(frame["sold"])  # the documented way: pandas datetimes as float64 seconds since 1970 UTC
    seconds = ((dates - pd.Timestamp("1970-01-01")) / pd.Timedelta(seconds=1)).to_numpy()
    feed = {"sold": seconds, "t": frame["t"].to_numpy(), "size": frame["size"].to_numpy(np.float32)}
    out = session.run(["outputs"], feed)[0][:, 0]
    assert main(["predict", str(tmp_path / "runs" / "h"), str(tmp_path / "houses.csv"), "--out", str(tmp_path / "p.csv")]) == 0
    written = np.array([float(row["predicted_price"]) for row in csv.DictReader(open(tmp_path / "p.csv"))])
    np.testing.assert_allclose(out, written, rtol=1e-5, atol=1e-4)
    assert np.sqrt(np.mean((written - frame["price"].to_numpy()) ** 2)) < 0.2  # t kept its digits


def test_an_export_without_out_goes_beside_the_run_under_the_path_it_was_given(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    riskmin.fit("linear", "lab1", epochs=1, progress=False).save("runs/h")
    capsys.readouterr()
    assert main(["export", "runs/h", "--format", "torchscript"]) == 0
    assert capsys.readouterr().out == "torchscript file written to runs/h.pt\n" and (tmp_path / "runs" / "h.pt").is_file()
    monkeypatch.chdir(tmp_path / "runs" / "h")
    assert main(["export", ".", "--format", "torchscript", "--overwrite"]) == 0  # the folder's own name, beside it
    assert capsys.readouterr().out == f"torchscript file written to {tmp_path / 'runs' / 'h.pt'}\n"


def test_an_export_never_replaces_the_file_the_run_trained_on(tmp_path, capsys):
    path = table(tmp_path / "shop.csv", classes=False)
    before = path.read_bytes()
    assert main(["train", str(path), "--target", "price", "--missing", "mean", "--features", "size", "--epochs", "1",
                 "--progress", "off", "--out", str(tmp_path / "runs"), "--name", "shop"]) == 0
    capsys.readouterr()
    # with --overwrite it was replaced by the TorchScript archive
    assert main(["export", str(tmp_path / "runs" / "shop"), "--format", "torchscript", "--out", str(path), "--overwrite"]) == 2
    assert capsys.readouterr().err == f"error: --out {path} is the input file {path}; write the exported file to another file\n"
    assert path.read_bytes() == before
