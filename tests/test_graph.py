"""The computation graph of one training step: the tutorial's boxes (parameters, operations, the output, the loss), the
module left untouched, DOT always and a picture with Graphviz, and `riskmin graph` on a model name or a run."""

import shutil

import pytest
import torch

import riskmin
from riskmin._cli._main import main

TUTORIAL = dict(split="tutorial", standardize=False, standardize_target=False, batch_size=0)


class LineRegression(torch.nn.Module):
    """The tutorial's model: y = a + b x, two parameters."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(42)
        self.a = torch.nn.Parameter(torch.randn(1))
        self.b = torch.nn.Parameter(torch.randn(1))

    def forward(self, x):
        return self.a + self.b * x


def named_edges(drawn) -> set:
    return {(drawn.nodes[a].name, drawn.nodes[b].name) for a, b in drawn.edges}


def test_the_line_models_graph_has_exactly_the_tutorials_boxes():
    # the tutorial: a and b in blue, b * x in grey, a + b x (the prediction) where backward starts from it, then the loss
    drawn = riskmin.graph(LineRegression(), "line", **TUTORIAL)
    assert [(node.kind, node.name) for node in drawn.nodes] == [
        ("loss", "MseLossBackward0"), ("output", "AddBackward0"), ("parameter", "a"), ("operation", "MulBackward0"),
        ("parameter", "b")]
    assert named_edges(drawn) == {("a", "AddBackward0"), ("b", "MulBackward0"), ("MulBackward0", "AddBackward0"),
                                  ("AddBackward0", "MseLossBackward0")}
    assert drawn.nodes[1].shape == (80, 1)  # the whole tutorial training split in one batch, as it trains
    dot = drawn.to_dot()
    assert 'n2 [label="a\\n(1)", fillcolor=lightblue]' in dot and 'fillcolor=lightgrey' in dot
    assert 'n1 [label="AddBackward0\\nthe output (80, 1)", fillcolor=gold]' in dot
    assert 'n0 [label="MseLossBackward0\\nthe loss", fillcolor=darkolivegreen1]' in dot


def test_two_layers_graph_reaches_every_parameter_through_its_operations(lab1):
    drawn = riskmin.graph("two_layer", lab1, hidden=4)
    parameters = {node.name: node.shape for node in drawn.nodes if node.kind == "parameter"}
    assert parameters == {"H1.weight": (4, 10), "H1.bias": (4,), "H2.weight": (2, 4), "H2.bias": (2,)}
    assert sorted(node.name for node in drawn.nodes if node.kind == "operation") == ["AddmmBackward0", "ReluBackward0",
                                                                                    "TBackward0", "TBackward0"]
    assert [node.kind for node in drawn.nodes].count("output") == 1 and drawn.nodes[0].kind == "loss"
    reaches = {0}
    for _ in drawn.nodes:  # every box has a path to the loss
        reaches |= {a for a, b in drawn.edges if b in reaches}
    assert reaches == set(range(len(drawn.nodes)))


def test_the_graph_follows_the_steps_precision(lab1):
    plain = riskmin.graph("linear", lab1)
    mixed = riskmin.graph("linear", lab1, precision="bf16-mixed")
    assert "ToCopyBackward0" not in {node.name for node in plain.nodes}
    assert "ToCopyBackward0" in {node.name for node in mixed.nodes}  # weights cast to bfloat16, the output back for the loss


def test_the_module_given_is_left_as_it_was(lab1):
    model = torch.nn.Sequential(torch.nn.Linear(10, 8), torch.nn.BatchNorm1d(8), torch.nn.Linear(8, 2))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.eval()
    drawn = riskmin.graph(model, lab1)
    assert {k: torch.equal(v, before[k]) for k, v in model.state_dict().items()} == {k: True for k in before}  # running stats too
    assert all(p.grad is None for p in model.parameters()) and not model.training
    assert {node.name for node in drawn.nodes if node.kind == "parameter"} == {name for name, _ in model.named_parameters()}


def test_a_run_is_drawn_with_its_own_model_and_settings(lab1):
    run = riskmin.fit("mlp", lab1, hidden=(5, 3), epochs=1, progress=False)
    drawn = riskmin.graph(run, lab1)
    assert {node.name: node.shape for node in drawn.nodes if node.kind == "parameter"}["2.weight"] == (3, 5)


def test_a_loss_that_no_parameter_reaches_has_no_graph(lab1):
    class Constant(torch.nn.Linear):
        def training_step(self, batch):
            return torch.tensor(1.0)

    with pytest.raises(riskmin.RiskminError, match="^the loss does not depend on any parameter that requires a gradient"):
        riskmin.graph(Constant(10, 2), lab1)


def test_without_graphviz_the_dot_file_is_written_and_one_warning_says_how_to_draw_it(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    with pytest.warns(riskmin.RiskminWarning) as caught:
        written = riskmin.graph(LineRegression(), "line", **TUTORIAL).save(tmp_path / "line.svg")
    assert written == tmp_path / "line.dot" and not (tmp_path / "line.svg").exists()
    assert (tmp_path / "line.dot").read_text().startswith('digraph "one training step of LineRegression on line"')
    message = str(caught[0].message)
    assert "needs Graphviz's dot program, which is not installed (apt install graphviz" in message
    assert message.endswith(f"then run dot -Tsvg {tmp_path / 'line.dot'} -o {tmp_path / 'line.svg'}")


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot program is not installed")
@pytest.mark.parametrize("kind, opening", [("svg", b"<?xml"), ("png", b"\x89PNG")])
def test_with_graphviz_the_picture_is_drawn_beside_its_dot_file(tmp_path, kind, opening):
    written = riskmin.graph(LineRegression(), "line", **TUTORIAL).save(tmp_path / f"line.{kind}")
    assert written == tmp_path / f"line.{kind}" and written.read_bytes().startswith(opening)
    assert (tmp_path / "line.dot").read_text().startswith("digraph")


def test_a_file_that_is_no_graph_is_refused_and_nothing_is_written(tmp_path):
    with pytest.raises(riskmin.RiskminError, match=r"line.txt does not end in .dot, .gv, .svg, .png or .pdf"):
        riskmin.graph(LineRegression(), "line", path=tmp_path / "line.txt", **TUTORIAL)
    assert list(tmp_path.iterdir()) == []


def test_the_graph_command_draws_a_model_by_name_and_a_run(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["graph", "linear", "line", "--split", "tutorial", "--batch-size", "0", "--plot", "line.dot"]) == 0
    assert capsys.readouterr().out == "line.dot: Graph(5 nodes: 2 parameter(s), 1 operation(s), the output, the loss)\n"
    assert 'label="AddmmBackward0\\nthe output (80, 1)"' in (tmp_path / "line.dot").read_text()
    assert main(["train", "lab1", "--model", "mlp", "--hidden", "6", "--epochs", "1", "--progress", "off", "--name", "r"]) == 0
    capsys.readouterr()
    assert main(["graph", "runs/r", "--plot", "run.dot", "--precision", "bf16-mixed"]) == 0
    dot = (tmp_path / "run.dot").read_text()
    assert '"0.weight\\n(6, 10)"' in dot and "ToCopyBackward0" in dot  # the run's model, with the flag's precision


def test_the_graph_command_draws_an_mlp_of_several_widths_given_by_flag_or_file(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # the widths were checked against the default model, two_layer: "gives two_layer 2 widths; it takes one"
    assert main(["graph", "mlp", "lab1", "--hidden", "8,8", "--plot", "flag.dot"]) == 0
    (tmp_path / "mlp.toml").write_text('model = "mlp"\nhidden = [8, 8]\n')  # its model= is no --model given
    assert main(["graph", "mlp", "lab1", "--config", "mlp.toml", "--plot", "file.dot"]) == 0
    assert capsys.readouterr().out.count("Graph(15 nodes: 6 parameter(s)") == 2  # three layers, each weight and bias
    assert (tmp_path / "flag.dot").read_text() == (tmp_path / "file.dot").read_text()


def test_the_graph_command_notes_a_flag_the_model_leaves_unused(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["graph", "linear", "lab1", "--hidden", "8", "--plot", "line.dot"]) == 0  # it drew without a word
    assert capsys.readouterr().out.startswith("note: --hidden is not used with --model linear, only with two_layer or mlp\n")


@pytest.mark.parametrize("args, message", [
    (["nonsense"], "error: nonsense is neither a model name (linear, two_layer, mlp) nor a run directory; give one of them"),
    (["linear", "--model", "mlp"], "error: riskmin graph takes the model as its first argument, MODEL_OR_RUN; drop --model"),
    (["runs/r", "--hidden", "8"], "error: runs/r holds a trained model, built with its own hidden; drop --hidden"),
    (["linear", "--precision", "16-mixed", "--device", "cpu"], "error: precision 16-mixed needs a CUDA GPU"),
])
def test_the_graph_command_refuses_in_one_line_and_writes_nothing(tmp_path, capsys, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "r").mkdir(parents=True)
    (tmp_path / "runs" / "r" / "config.toml").write_text("")
    assert main(["graph", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1
    assert not list(tmp_path.glob("graph.*"))
