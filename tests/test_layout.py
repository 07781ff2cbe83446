"""The layout states the architecture: src/riskmin is six layers, each importing only the ones below it, and every
public module says what it exports. An ast walk, imports inside functions included; nothing is imported to check."""

import ast
from pathlib import Path

import riskmin

SOURCE = Path(riskmin.__file__).parent

# bottom up: a module may import its own layer and the ones before it. Each entry is the first part of a module's name
# under riskmin: a top-level module or a subpackage, whose modules all share its layer.
LAYERS = [
    ("base", ["config", "metrics", "models", "policy", "_files", "_paths"]),
    ("data", ["_data", "data", "datasets", "splits"]),
    ("runs", ["_runs"]),
    ("training", ["_training", "callbacks", "distributed"]),
    ("experiments", ["_experiments", "stats"]),
    ("cli", ["_cli"]),
    ("facade", ["__init__", "__main__", "sklearn"]),  # riskmin itself, `python -m riskmin`, the scikit-learn extra
]
LAYER = {first: rank for rank, (_, firsts) in enumerate(LAYERS) for first in firsts}
FROM_THE_PACKAGE = {"__version__"}  # what a module may take from riskmin/__init__.py, the facade, other than submodules


def module_names() -> dict:
    """Each module of src/riskmin by its name under riskmin ("_training._loop"; "" for riskmin itself) -> path."""
    names = {}
    for path in sorted(SOURCE.rglob("*.py")):
        parts = list(path.relative_to(SOURCE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def layer_of(name: str) -> int:
    return LAYER[name.split(".")[0] if name else "__init__"]


def imported(name: str, is_package: bool, source: str, known: set) -> list:
    """(line, module under riskmin, what is taken) for each import of riskmin in `source`, wherever it stands."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name[len("riskmin."):] if alias.name != "riskmin" else "", None)
                      for alias in node.names if alias.name.split(".")[0] == "riskmin"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if name else []
                base = base if is_package else base[:-1]
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            elif (node.module or "").split(".")[0] == "riskmin":
                target = node.module[len("riskmin."):] if node.module != "riskmin" else ""
            else:
                continue
            for alias in node.names:
                submodule = f"{target}.{alias.name}".lstrip(".")
                found.append((node.lineno, submodule, None) if submodule in known else (node.lineno, target, alias.name))
    return found


def upward_imports(modules: dict) -> list:
    """Each import of a higher layer, or of a name riskmin/__init__.py holds, as 'module:line imports what'."""
    known, wrong = set(modules), []
    for name, path in modules.items():
        for line, target, taken in imported(name, path.name == "__init__.py", path.read_text(), known):
            where = f"{name or 'riskmin'}:{line} imports {target or 'riskmin'}" + (f".{taken}" if taken else "")
            if target == "" and name != "" and taken not in FROM_THE_PACKAGE:
                wrong.append(where)
            elif target != "" and layer_of(target) > layer_of(name):
                wrong.append(where + f" ({LAYERS[layer_of(name)][0]} below {LAYERS[layer_of(target)][0]})")
    return wrong


def is_public(name: str) -> bool:
    return not any(part.startswith("_") for part in name.split(".") if part)


def declares_all(source: str) -> bool:
    return any(isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets)
               for node in ast.parse(source).body)


def test_every_module_has_a_layer():
    assert [name for name in module_names() if (name.split(".")[0] if name else "__init__") not in LAYER] == []


def test_no_layer_imports_a_layer_above_it():
    assert upward_imports(module_names()) == []


def test_the_check_finds_an_upward_import_at_any_depth(tmp_path):
    (tmp_path / "_data").mkdir()
    (tmp_path / "_data" / "__init__.py").write_text('"""data"""\n')
    (tmp_path / "_data" / "_low.py").write_text("""
from ..config import Config
from .._training import _loop
def late():
    from riskmin._cli._main import main
    import riskmin._experiments._kept
    from .. import fit
""")
    modules = {"_data": tmp_path / "_data" / "__init__.py", "_data._low": tmp_path / "_data" / "_low.py",
               "config": tmp_path / "config.py", "_training._loop": tmp_path / "_loop.py", "_cli._main": tmp_path / "m.py",
               "_experiments._kept": tmp_path / "k.py", "": tmp_path / "__init__.py"}
    for path in modules.values():
        if not path.exists():
            path.write_text("")
    assert [line.split(" imports ")[1].split(" ")[0] for line in upward_imports(modules)] == [
        "_training._loop", "_cli._main.main", "_experiments._kept", "riskmin.fit"]


def test_every_public_module_declares_all_and_has_what_it_names():
    modules = module_names()
    public = {name: path for name, path in modules.items() if is_public(name)}
    assert "sklearn" in public and "data" in public and "_training._loop" not in public
    assert [name for name, path in public.items() if not declares_all(path.read_text())] == []
    for name in public:
        if name in ("", "sklearn"):
            continue  # riskmin's own names are checked by test_cli.py; sklearn's need scikit-learn
        module = __import__(f"riskmin.{name}", fromlist=["__all__"])
        assert [entry for entry in module.__all__ if not hasattr(module, entry)] == [], name


def test_each_subpackage_says_what_it_holds_and_what_it_may_import():
    for path in sorted(SOURCE.glob("*/__init__.py")):
        docstring = " ".join((ast.get_docstring(ast.parse(path.read_text())) or "").split())
        assert "may import" in docstring, path


def test_the_readme_map_matches_the_tree_and_the_layers():
    readme = (SOURCE.parent.parent / "README.md").read_text()
    section = readme.split("## How the code is laid out", 1)[1]
    block = section.split("```text\n", 1)[1].split("```", 1)[0]
    mapped = {}
    for line in block.splitlines()[1:]:
        paths, _, words = line.strip().partition("  ")
        layer = words.strip().split(":")[0]
        for entry in paths.split():
            mapped[entry.removesuffix("/").removesuffix(".py")] = layer
    tree = {path.stem for path in SOURCE.glob("*.py")} | {path.parent.name for path in SOURCE.glob("*/__init__.py")}
    assert sorted(mapped) == sorted(tree)
    named = {first: name for name, firsts in LAYERS for first in firsts}
    assert {entry: layer for entry, layer in mapped.items() if named[entry] != "facade"} == \
        {entry: named[entry] for entry in mapped if named[entry] != "facade"}


def test_no_source_line_is_longer_than_120_characters():
    # ruff's E501 passes over a line that ends in a pragma (a type-ignore or noqa comment); this does not
    long = [f"{path.relative_to(SOURCE)}:{number}" for path in sorted(SOURCE.rglob("*.py"))
            for number, line in enumerate(path.read_text().splitlines(), 1) if len(line) > 120]
    assert not long, long
