"""The layers of ARCHITECTURE.md: optimizers < check < learn < grade, and nothing imports
upwards (nor the package's top, which imports them all)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "optimlab"
LAYERS = ["optimizers", "check", "learn", "grade"]


def _imports(path: Path) -> list[str]:
    """Every optimlab module ``path`` imports, as an absolute dotted name."""
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    package = list(rel.parts[:-1])
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            if node.module:
                out.append(module)
            else:
                out += [f"{module}.{a.name}" for a in node.names]
    return [m for m in out if m == "optimlab" or m.startswith("optimlab.")]


def _layer(module: str) -> int:
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in LAYERS:
        return LAYERS.index(parts[1])
    if module in ("optimlab", "optimlab.reference"):
        # the public API imports check and optimizers (and needs them imported first)
        return LAYERS.index("check") + 1
    return len(LAYERS)  # the CLI, on top of everything


@pytest.mark.parametrize("layer", LAYERS)
def test_no_layer_imports_upwards(layer):
    bad = []
    for path in sorted((PACKAGE / layer).rglob("*.py")):
        for module in _imports(path):
            if _layer(module) > LAYERS.index(layer):
                bad.append(f"{path.relative_to(PACKAGE)} imports {module}")
    assert not bad, "\n".join(bad)


def test_the_layers_are_the_whole_package():
    top = {p.name for p in PACKAGE.iterdir() if not p.name.startswith((".", "__pycache__"))}
    assert top == {*LAYERS, "__init__.py", "cli.py", "reference.py"}, top
