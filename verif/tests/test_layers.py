"""The layers import one way: formats -> ``pyhdl``/``sw`` -> ``runtime`` -> CLI (``sw/cli.py``),
with ``verif`` (the regression) above them all and imported by nothing else; ``pyhdl`` imports no
torch."""

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# package -> top-level packages it must never import
FORBIDDEN = {
    "pyhdl": {"verif", "runtime", "torch"},
    "sw": {"verif", "runtime"},
    "runtime": {"verif"},
}
# The command line over everything (docs/spec.md §6) is the one module of sw/ above the runtime.
TOP = {"sw/cli.py": {"runtime"}}


def imported_packages(path: Path) -> set:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_only_layers_below_it(package):
    files = sorted((REPO / package).rglob("*.py"))
    assert files, f"no Python files under {package}/"
    rel = {f: str(f.relative_to(REPO)) for f in files}
    bad = {rel[f]: sorted(imported_packages(f) & (FORBIDDEN[package] - TOP.get(rel[f], set()))) for f in files}
    bad = {f: names for f, names in bad.items() if names}
    assert not bad, f"{package}/ imports layers above it: {bad}"


def test_the_checker_sees_every_import_form(tmp_path):
    src = tmp_path / "m.py"
    src.write_text("import verif.tb\nfrom runtime.eie import host\ndef f():\n    import torch as t\n"
                   "from . import sibling\n")
    assert imported_packages(src) == {"verif", "runtime", "torch"}
