"""riskmin uses public PyTorch only: no attribute, module or getattr name starting with an underscore on torch or on
anything imported from it. A private name can change or vanish in any release, and with it what riskmin trains."""

import ast
from pathlib import Path

import riskmin

SOURCE = Path(riskmin.__file__).parent

# "module.py: name" -> why it may stay; torch.optim itself is built on the torch._foreach_* family, the one that may
# earn a line here. None is needed today.
ALLOWED: dict = {}


def private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def torch_names(tree: ast.Module) -> set:
    """The names a module binds to torch or to anything imported from it."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {(alias.asname or alias.name).split(".")[0] for alias in node.names if alias.name.split(".")[0] == "torch"}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "torch":
            names |= {alias.asname or alias.name for alias in node.names}
    return names


def root(node: ast.AST):
    while isinstance(node, (ast.Attribute, ast.Call, ast.Subscript)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


def private_uses(source: str) -> list:
    """Each private torch name in `source`, as 'line: name'."""
    tree = ast.parse(source)
    torchy, found = torch_names(tree), []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "torch":
            found += [f"{node.lineno}: {node.module}.{alias.name}" for alias in node.names
                      if private(alias.name) or any(private(part) for part in node.module.split("."))]
        elif isinstance(node, ast.Import):
            found += [f"{node.lineno}: {alias.name}" for alias in node.names
                      if alias.name.startswith("torch") and any(private(part) for part in alias.name.split("."))]
        elif isinstance(node, ast.Attribute) and private(node.attr) and root(node.value) in torchy:
            found.append(f"{node.lineno}: {ast.unparse(node)}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("getattr", "hasattr", "setattr") \
                and len(node.args) >= 2 and root(node.args[0]) in torchy and isinstance(node.args[1], ast.Constant) \
                and isinstance(node.args[1].value, str) and private(node.args[1].value):
            found.append(f"{node.lineno}: {ast.unparse(node)}")
    return found


def test_the_check_finds_each_way_of_reaching_a_private_name():
    source = """
import torch
import torch._dynamo
from torch import nn
from torch.utils._foreach_utils import helper
from torch.optim import _functional
kernel = torch._fused_adam_
hooks = torch.optim.optimizer._global_optimizer_pre_hooks
norm = nn.modules.batchnorm._BatchNorm
fused = getattr(torch, "_fused_sgd_", None)
public = torch.optim.Adam, nn.Linear, torch.Tensor.__add__
"""
    assert [use.split(":")[0] for use in private_uses(source)] == ["3", "5", "6", "7", "8", "9", "10"]


def test_riskmin_uses_no_private_torch_name():
    unexplained = []
    for path in sorted(SOURCE.rglob("*.py")):
        for use in private_uses(path.read_text()):
            line, name = use.split(": ", 1)
            if f"{path.relative_to(SOURCE)}: {name}" not in ALLOWED:
                unexplained.append(f"{path.relative_to(SOURCE)}:{line}: {name}")
    assert not unexplained, "private torch names in src/riskmin: " + "; ".join(unexplained)
