"""`riskmin export RUN --format onnx|torchscript`: one file that holds a run's model and all its preprocessing,
so that a program without riskmin (or without Python, for ONNX) gets the numbers `riskmin predict` writes.

    raw columns -> one-hot text columns (ONNX) -> missing values filled -> (x - mean) / std -> model
                -> target restored (regression; exp of it for a log target) | softmax (cross_entropy)
                   | sigmoid (bce) -> outputs

The ONNX file takes one input per feature column of the run, named as the column: float32 of
shape [rows] for a number column (NaN is a missing value), string of shape [rows] for a text
column (an empty string is a missing value; a category the run never saw is all zeros, or
(other) where the run pools the column's rarer categories, as in `riskmin predict`). Its one output, `outputs`, holds
the predicted values of a regression, one
column per target, or the probability of every class in the order of the `classes` metadata.
The TorchScript file takes the number columns side by side as one float32 tensor [rows x columns],
in the order of its `features` metadata. What either cannot represent is refused in one sentence.
"""

from __future__ import annotations

import copy
import io
import json
import warnings
from pathlib import Path

import torch
from torch import nn

from .._data._columns import input_centres
from ..config import RiskminError
from ..data import Standardizer

FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}  # each format's file name ending, by default
SUFFIXES = {
    "onnx": (".onnx",),
    "torchscript": (".pt", ".pth", ".ts"),
}  # those its files go by, the other's may not take
KINDS = {"onnx": "an ONNX", "torchscript": "a TorchScript"}  # a file of each, as a message names it
OPSET = 17
ENCODED = "riskmin_encoded"  # the graph's name for the encoded rows between the column inputs and the model


class Served(nn.Module):
    """A run's model between its stored preprocessing and the outputs `riskmin predict` writes."""

    # the buffers __init__ registers
    centres: torch.Tensor
    fill: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor
    target_mean: torch.Tensor
    target_scale: torch.Tensor

    def __init__(
        self,
        model: nn.Module,
        standardizer: Standardizer,
        loss: str,
        two_classes: bool,
        centres: torch.Tensor,
        refuses_missing: bool = False,
    ):
        super().__init__()
        self.model, self.loss, self.two_classes = model, loss, two_classes
        self.centred = bool(centres.any())  # columns read in float64 and centred before training (_columns.offset)
        self.register_buffer("centres", centres.to(torch.float64))
        self.filled = standardizer.fill is not None
        # a graph that can raise (TorchScript's) refuses a NaN where the run has no fill, as `riskmin predict` does
        self.refuse = scripted(refuse_missing) if refuses_missing and not self.filled else None
        self.register_buffer("fill", standardizer.fill if self.filled else torch.zeros(len(standardizer.mean)))
        self.register_buffer("mean", standardizer.mean.clone())
        # inf on a one-hot column never seen in training: it becomes 0
        self.register_buffer("std", standardizer.std.clone())
        target = standardizer.target
        self.restored = target is not None and loss not in ("cross_entropy", "bce")
        self.register_buffer("target_mean", target.mean.clone() if target is not None else torch.zeros(1))
        self.register_buffer(
            "target_scale", torch.tensor(target.scale if target is not None else 1.0, dtype=torch.float32)
        )
        # trained on log y: the graph answers exp of it, as `riskmin predict` does
        self.log = self.restored and target is not None and target.log

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.refuse is not None:
            x = self.refuse(x)
        if self.centred:  # subtracted in float64: given float64 rows, such a column keeps its digits
            x = (x.to(torch.float64) - self.centres).to(torch.float32)
        else:  # float64 rows too, as columns.json says a date is given: read in float32, as the run read it
            x = x.to(torch.float32)
        if self.filled:
            x = torch.where(torch.isnan(x), self.fill, x)
        out = self.model((x - self.mean) / self.std)
        if self.restored:
            value = out * self.target_scale + self.target_mean
            return torch.exp(value) if self.log else value
        if self.loss == "cross_entropy":
            return torch.softmax(out, 1)
        if self.loss == "bce":
            yes = torch.sigmoid(out)
            return torch.cat([1 - yes, yes], 1) if self.two_classes else yes
        return out


def refuse_missing(x: torch.Tensor) -> torch.Tensor:
    """x itself, or an error where it holds NaN: `riskmin predict` refuses a missing value the run cannot fill.

    Scripted (`scripted`), not traced, so that the test survives in a traced graph (an ONNX graph cannot raise: it
    answers NaN).
    """
    if bool(torch.isnan(x).any()):
        raise ValueError("a feature value is missing (NaN) and the run was trained without --missing mean; fill it")
    return x


def scripted(function):
    """`function` compiled by TorchScript, whose control flow a traced graph keeps; its deprecation notice unsaid."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.jit.script(function)


def export(run, path, format: str = "onnx") -> Path:
    """Write the run `run` as one `format` file at `path` and return the path.

    >>> import riskmin, tempfile, os
    >>> run = riskmin.fit("linear", "line", split="tutorial", epochs=2, progress=False)
    >>> os.path.getsize(export(run, tempfile.mkdtemp() + "/line.pt", "torchscript")) > 0
    True
    """
    from .._data._outputs import two_classes

    if format not in FORMATS:
        raise RiskminError(f"format {format!r} is not an export format; choose {' or '.join(FORMATS)}")
    names, standardizer = run.data_names, run.preprocessing
    layout = names.get("layout") or [{"name": name, "kind": "numeric"} for name in names["features"]]
    n_inputs = len(standardizer.mean)
    model = copy.deepcopy(run.model).cpu().eval()  # the run's own model stays where and as it was
    with torch.no_grad():
        probe = model(torch.zeros(2, n_inputs))
    centres = input_centres(layout)
    if format == "onnx":  # each ONNX column input is centred on its own, in float64, before it joins the others
        centres = torch.zeros_like(centres)
    # the copy takes no gradient: the exported graph answers tensors without one (.numpy() on them works)
    served = Served(
        model.requires_grad_(False),
        standardizer,
        run.config.loss,
        two_classes(run.config.loss, names.get("classes"), probe),
        centres,
        refuses_missing=format == "torchscript",
    ).eval()
    metadata = {
        "features": json.dumps([c["name"] for c in layout]),
        "targets": json.dumps(names.get("targets", [])),
        "columns": json.dumps([column_input(c) for c in layout]),
        "centres": json.dumps({c["name"]: c["offset"] for c in layout if "offset" in c}),
        "classes": json.dumps(names.get("classes")),
        "loss": run.config.loss,
        "target_transform": run.config.target_transform,
        "riskmin": "export of a riskmin run",
    }
    content = (
        onnx_bytes(served, layout, n_inputs, metadata)
        if format == "onnx"
        else torchscript_bytes(served, layout, n_inputs, metadata)
    )
    from .._files import atomic_write

    path = Path(path)
    try:
        atomic_write(path, content)
    except OSError as error:
        raise RiskminError(f"{path} cannot be written ({error.strerror}); choose another --out") from None
    return path


def torchscript_bytes(served: Served, layout: list, n_inputs: int, metadata: dict) -> bytes:
    """The served model traced by TorchScript, with its metadata as extra files; number columns only."""
    text = [c["name"] for c in layout if c["kind"] != "numeric"]
    if text:
        raise RiskminError(
            f"torchscript takes number columns only but column {text[0]} holds text; export --format "
            "onnx, which one-hot encodes text columns"
        )
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TorchScript's deprecation notice
            traced = torch.jit.trace(served, torch.randn(3, n_inputs))
            buffer = io.BytesIO()
            torch.jit.save(traced, buffer, _extra_files={f"{key}.json": value for key, value in metadata.items()})
    except Exception as error:  # torch raises many kinds here, each about the user's own module
        raise RiskminError(
            f"the model cannot be traced by TorchScript ({str(error).splitlines()[0][:160]}); export --format onnx"
        ) from None
    return buffer.getvalue()


def onnx_bytes(served: Served, layout: list, n_inputs: int, metadata: dict) -> bytes:
    """The served model as ONNX, with one input per raw feature column encoded inside the graph."""
    try:
        import onnx
        from onnx import TensorProto, helper
    except ImportError:
        raise RiskminError("export --format onnx needs the onnx package; pip install 'riskmin[onnx]'") from None
    if "outputs" in [c["name"] for c in layout]:
        raise RiskminError(
            "a feature column is named outputs, the name of the ONNX file's output; rename the column to export the run"
        )
    buffer = io.BytesIO()
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the deprecation notice of the TorchScript-based exporter
            # torch's hint names paths for the file; the TorchScript-based exporter takes a file object too
            torch.onnx.export(
                served,
                (torch.zeros(2, n_inputs),),
                buffer,  # type: ignore[arg-type]
                dynamo=False,
                opset_version=OPSET,
                input_names=[ENCODED],
                output_names=["outputs"],
                dynamic_axes={ENCODED: {0: "rows"}, "outputs": {0: "rows"}},
            )
    except Exception as error:  # torch raises many kinds here, each about the user's own module
        raise RiskminError(f"the model cannot be exported to ONNX ({str(error).splitlines()[0][:160]})") from None
    model = onnx.load_from_string(buffer.getvalue())
    graph = model.graph
    inputs, nodes, parts = [], [], []
    axis = helper.make_tensor("riskmin_axis_1", TensorProto.INT64, [1], [1])
    graph.initializer.append(axis)
    if any(column.get("other") for column in layout):  # what one_hot's pooled category subtracts from
        graph.initializer.append(helper.make_tensor("riskmin_one", TensorProto.FLOAT, [], [1.0]))
    for i, column in enumerate(layout):
        name, part = column["name"], f"riskmin_column_{i}"
        # a date, or a column read in float64 and centred (_columns.offset)
        if column_input(column)["input"] == "float64":
            inputs.append(helper.make_tensor_value_info(name, TensorProto.DOUBLE, ["rows"]))
            centred = name
            if "offset" in column:
                graph.initializer.append(
                    helper.make_tensor(f"{part}_centre", TensorProto.DOUBLE, [], [column["offset"]])
                )
                centred = f"{part}_centred"
                nodes.append(helper.make_node("Sub", [name, f"{part}_centre"], [centred]))
            nodes += [
                helper.make_node("Cast", [centred], [f"{part}_float"], to=TensorProto.FLOAT),
                helper.make_node("Unsqueeze", [f"{part}_float", axis.name], [part]),
            ]
        elif column["kind"] == "numeric":
            inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, ["rows"]))
            nodes.append(helper.make_node("Unsqueeze", [name, axis.name], [part]))
        else:
            inputs.append(helper.make_tensor_value_info(name, TensorProto.STRING, ["rows"]))
            nodes += one_hot(name, part, column)
        parts.append(part)
    nodes.append(helper.make_node("Concat", parts, [ENCODED], axis=1))
    del graph.input[:]
    graph.input.extend(inputs)
    old = list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes + old)
    model.opset_import.append(helper.make_opsetid("ai.onnx.ml", 1))
    for key, value in metadata.items():
        model.metadata_props.append(onnx.StringStringEntryProto(key=key, value=value))
    onnx.checker.check_model(model)
    return model.SerializeToString()


def column_input(column: dict) -> dict:
    """What the ONNX file takes for one feature column: text as string; a date (in its layout's unit, such as seconds
    since
    1970-01-01 UTC) or a column riskmin read in float64 and centres as float64, so that it keeps its digits; any other
    number as float32."""
    if column["kind"] != "numeric":
        return {"name": column["name"], "input": "string"}
    wide = "unit" in column or "offset" in column
    return {
        "name": column["name"],
        "input": "float64" if wide else "float32",
        **({"unit": column["unit"]} if "unit" in column else {}),
    }


def one_hot(name: str, part: str, column: dict) -> list:
    """The nodes that one-hot encode the text input `name` into `part` as riskmin's layout `column` says: an empty
    string or
    an unseen category all zeros, or, where the layout pools its rarer categories, any other non-empty text (other)."""
    from onnx import helper

    categories = column["categories"][:-1] if column.get("other") else column["categories"]
    if not column.get("other"):
        return [
            helper.make_node("OneHotEncoder", [name], [part], domain="ai.onnx.ml", cats_strings=categories, zeros=1)
        ]
    known, empty, seen = f"{part}_known", f"{part}_empty", f"{part}_seen"
    return [
        helper.make_node("OneHotEncoder", [name], [known], domain="ai.onnx.ml", cats_strings=categories, zeros=1),
        helper.make_node("OneHotEncoder", [name], [empty], domain="ai.onnx.ml", cats_strings=[""], zeros=1),
        helper.make_node("Concat", [known, empty], [seen], axis=1),  # at most one 1 per row: a category, or empty
        helper.make_node("ReduceSum", [seen, "riskmin_axis_1"], [f"{part}_any"], keepdims=1),
        helper.make_node("Sub", ["riskmin_one", f"{part}_any"], [f"{part}_other"]),  # 1 for text that is neither
        helper.make_node("Concat", [known, f"{part}_other"], [part], axis=1),
    ]
