"""The package's shape, which a newcomer relies on: imports point down the layers only, the
catalog's I/O is imported by no domain module, research stays out, and files stay readable."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src/heima_kedro"
#: What each part of the package may import from the package (itself always).
ALLOWED = {
    "data": {"data"},
    "models": {"data", "models"},
    "training": {"data", "models", "training"},
    "evaluation": {"data", "models", "evaluation"},
    "datasets": {"data", "models", "datasets"},
    "pipelines": {"data", "models", "training", "evaluation", "pipelines"},
    "cli": {"data", "models", "training", "evaluation", "pipelines", "cli", "pipeline_registry"},
}
KEDRO_MODULES = {"__init__", "__main__", "settings", "pipeline_registry", "hooks"}


def _sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _imported_parts(path: Path) -> set[str]:
    """The package's top-level parts that ``path`` imports (``heima_kedro.<part>...``)."""
    parts = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        parts |= {
            name.split(".")[1]
            for name in names
            if name.startswith("heima_kedro.") and name.count(".")
        }
    return parts


def test_imports_point_down_the_layers():
    wrong = {}
    for path in _sources():
        part = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        if part not in KEDRO_MODULES:  # the Kedro project modules sit above everything
            wrong |= {
                str(path.relative_to(PACKAGE)): sorted(found)
                for found in [_imported_parts(path) - ALLOWED[part]]
                if found
            }
    assert not wrong, f"imports against the layers: {wrong}"


def test_research_is_never_imported_by_the_package():
    for path in _sources():
        modules = {
            n.module for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.ImportFrom)
        }
        assert not {m for m in modules if m and m.split(".")[0] in {"research", "probes"}}, path


def test_the_package_shows_its_parts():
    modules = {p.stem for p in PACKAGE.glob("*.py")} - KEDRO_MODULES
    assert len(modules) <= 8, f"top-level modules besides Kedro's: {sorted(modules)}"
    assert {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"} == set(
        ALLOWED
    )


def test_no_source_file_is_over_500_lines():
    long = {
        str(p.relative_to(PACKAGE)): n
        for p in _sources()
        if (n := len(p.read_text().splitlines())) > 500
    }
    assert not long, f"files over 500 lines: {long}"
