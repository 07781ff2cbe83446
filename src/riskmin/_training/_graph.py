"""The computation graph of one training step, drawn as the tutorials draw it: from the loss back to the parameters.

`graph(model, data)` takes the first batch `fit` would train on and computes its loss as a training
step does (the same loss, precision and accumulation share, the model in training mode), on a copy
of the module, so the one given is left as it was. It then walks autograd's record of that loss
backwards through `grad_fn.next_functions`, the nodes `backward()` would visit, without
differentiating anything. Parameters, operations, the model's output and the loss are told apart
by colour, as in the tutorial's picture. The graph is written as Graphviz DOT, and drawn as SVG,
PNG or PDF by Graphviz's `dot` program when that is installed.
"""

from __future__ import annotations

import collections
import copy
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Optional

import torch
from torch import nn

from ..config import Config, RiskminError, warn
from .._paths import data_label

# the tutorial's blue and grey
COLOURS = {"parameter": "lightblue", "operation": "lightgrey", "output": "gold", "loss": "darkolivegreen1"}
PICTURES = ("svg", "png", "pdf")  # what `dot` draws; .dot and .gv files are the DOT text itself
INSTALL = "apt install graphviz, brew install graphviz, conda install graphviz, or https://graphviz.org/download"


class Node(NamedTuple):
    """A box of the graph: its kind (parameter, operation, output or loss), its name (a parameter's name, else the
    backward function's, such as MulBackward0) and the shape of the tensor it stands for, where known."""

    kind: str
    name: str
    shape: tuple = ()


@dataclass
class Graph:
    """The computation graph of one training step: `nodes` in the order a walk from the loss meets them (the loss
    first), `edges` as (from, to) positions in `nodes`, the result of `from` flowing into `to`.

    >>> drawn = graph("linear", "line", split="tutorial")
    >>> [node.name for node in drawn.nodes]
    ['MseLossBackward0', 'AddmmBackward0', 'H.bias', 'TBackward0', 'H.weight']
    """

    nodes: list
    edges: list
    title: str = "one training step"

    def __repr__(self) -> str:
        kinds = collections.Counter(node.kind for node in self.nodes)
        return (
            f"Graph({len(self.nodes)} nodes: {kinds['parameter']} parameter(s), "
            f"{kinds['operation']} operation(s), "
            f"the output{'' if kinds['output'] else ' (not drawn apart)'}, the loss)"
        )

    def to_dot(self) -> str:
        """The graph as Graphviz DOT text: arrows run from each parameter through the operations to the loss."""
        legend = dot_string(
            self.title + ": blue the parameters, grey the operations, yellow the output, green the loss"
        )
        lines = [
            f"digraph {dot_string(self.title)} {{",
            f"  label={legend}",
            '  labelloc=t; fontname="Helvetica"; fontsize=12',
            '  node [shape=box, style="filled,rounded", fontname="Helvetica", fontsize=11]',
        ]
        for i, node in enumerate(self.nodes):
            lines.append(f"  n{i} [label={dot_string(box_label(node))}, fillcolor={COLOURS[node.kind]}]")
        lines += [f"  n{a} -> n{b}" for a, b in self.edges]
        return "\n".join(lines + ["}"]) + "\n"

    def save(self, path) -> Path:
        """Write the graph to `path`: DOT text for a .dot or .gv file; for .svg, .png or .pdf, the DOT text beside it
        (the same name with .dot) and the picture Graphviz's dot program draws of it. Without that program only the
        DOT file is written, and a warning says how to get it. Returns the path of the last file written."""
        path = Path(path)
        kind = path.suffix[1:].lower()
        if kind not in ("dot", "gv", *PICTURES):
            raise RiskminError(
                f"{path} does not end in .dot, .gv, .svg, .png or .pdf; name the graph's file with one of them"
            )
        source = path if kind in ("dot", "gv") else path.with_suffix(".dot")
        write(source, self.to_dot().encode())
        if source == path:
            return path
        program = shutil.which("dot")
        if program is None:
            warn(
                f"{source} is written, but drawing {path} needs Graphviz's dot program, which is not installed "
                f"({INSTALL}); then run dot -T{kind} {source} -o {path}"
            )
            return source
        write(path, drawn(program, kind, self.to_dot()))
        return path

    def _repr_svg_(self) -> Optional[str]:
        """The picture, as a notebook shows a graph: drawn by Graphviz's dot program, None without it (then the
        repr)."""
        program = shutil.which("dot")
        return drawn(program, "svg", self.to_dot()).decode() if program else None


def graph(model, data, config: Optional[Config] = None, path=None, **settings) -> Graph:
    """The computation graph of one training step of `model` on `data` with the settings of `config` and keyword
    overrides, as `fit` would take it: from the loss back to the parameters. `model` is a built-in name, a module (left
    untouched: the step runs on a copy) or a Run (its model and settings). With `path`, written there (see Graph.save).

    >>> graph("linear", "line", split="tutorial")
    Graph(5 nodes: 2 parameter(s), 1 operation(s), the output, the loss)
    """
    from ._loop import setup, step_calls
    from .._runs._rundir import Run

    if isinstance(model, Run):
        config, model = config or model.config, model.model
    model = copy.deepcopy(model) if isinstance(model, nn.Module) else model
    # no directory: no logs
    training = setup(model, data, config, (), None, False, {**settings, "progress": False, "log": "csv"})
    step = step_calls(training)
    outputs = []
    hook = training.model.register_forward_hook(lambda module, inputs, output: outputs.append(output))
    training.model.train()
    try:
        x, y = next(iter(step.batches))
        with training.autocast:
            loss = step.loss_of(x, y)
    finally:
        hook.remove()
    output = outputs[0] if outputs and isinstance(outputs[0], torch.Tensor) else None
    config = training.config
    name = config.model if config.model != "custom" else config.model_class.rsplit(".", 1)[-1]
    data_name = data_label(training.prepared.names, training.config)
    drawn = walk(loss, output, training.model, f"one training step of {name} on {data_name}")
    if path is not None:
        drawn.save(path)
    return drawn


def walk(loss: torch.Tensor, output: Optional[torch.Tensor], model: nn.Module, title: str) -> Graph:
    """The graph autograd recorded for `loss`, breadth first from it: each backward function once, with an edge for
    each of its inputs that needs a gradient (the data needs none, so it is not drawn, as in the tutorial)."""
    if loss.grad_fn is None:
        raise RiskminError(
            "the loss does not depend on any parameter that requires a gradient, so a training step has "
            "no graph to draw; unfreeze a parameter the loss uses"
        )
    names = {id(p): name for name, p in model.named_parameters()}
    root, made = loss.grad_fn, getattr(output, "grad_fn", None)
    position, nodes = {root: 0}, [Node("loss", type(root).__name__, tuple(loss.shape))]
    edges, waiting = [], collections.deque([root])
    while waiting:
        function = waiting.popleft()
        for following, _ in function.next_functions:
            if following is None:  # an input that needs no gradient
                continue
            if following not in position:
                position[following] = len(nodes)
                nodes.append(node_of(following, made, output, names))
                waiting.append(following)
            edges.append((position[following], position[function]))
    return Graph(nodes, edges, title)


def node_of(function, made, output: Optional[torch.Tensor], names: dict) -> Node:
    """The box of a backward function: a parameter (autograd's AccumulateGrad, which holds it as `variable`), the
    function that made the model's output, or another operation."""
    parameter = getattr(function, "variable", None)
    if parameter is not None:
        return Node("parameter", names.get(id(parameter), "a tensor outside the model"), tuple(parameter.shape))
    if output is not None and function is made:  # made is None without an output
        return Node("output", type(function).__name__, tuple(output.shape))
    return Node("operation", type(function).__name__)


def box_label(node: Node) -> str:
    """What a box says: its name, then the shape of its tensor, and what it is where the colour alone would tell."""
    shape = f"({', '.join(map(str, node.shape))})" if node.shape else ""
    role = {"output": "the output ", "loss": "the loss"}.get(node.kind, "")
    return node.name + (f"\n{role}{shape}" if role or shape else "")


def dot_string(text: str) -> str:
    """`text` as a DOT string: quotes and backslashes escaped, newlines as DOT's \\n."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def drawn(program: str, kind: str, dot: str) -> bytes:
    """The picture Graphviz's `program` draws of the DOT text `dot`, as a file of `kind` holds it."""
    result = subprocess.run([program, f"-T{kind}"], input=dot.encode(), capture_output=True, timeout=120, check=False)
    if result.returncode:
        said = result.stderr.decode(errors="replace").strip().splitlines()
        raise RiskminError(
            "Graphviz's dot could not draw the graph "
            f"({said[0] if said else f'status {result.returncode}'}); write it as .dot and draw it with "
            "dot yourself"
        )
    return result.stdout


def write(path: Path, content: bytes) -> None:
    from .._files import atomic_write

    try:
        atomic_write(path, content)
    except OSError as error:
        raise RiskminError(f"{path} cannot be written ({error.strerror}); choose another file for the graph") from None
