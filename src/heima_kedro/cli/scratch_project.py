"""A throw-away Kedro project that shares this project's configuration: benchmarks and tests run
`kedro run` there, so nothing in the real project's data/ or MLflow store is touched."""

from __future__ import annotations

import shutil
from pathlib import Path

LAYERS = (
    "01_raw",
    "02_intermediate",
    "03_primary",
    "04_feature",
    "05_model_input",
    "06_models",
    "07_model_output",
    "08_reporting",
)


def make_scratch_project(*, source: Path, target: Path) -> Path:
    """Copy ``pyproject.toml``, ``.telemetry`` and ``conf/`` (without ``conf/local``) from
    ``source`` to ``target`` and create the empty folders Kedro expects (``src/``, data layers);
    the package itself is the installed one."""
    target.mkdir(parents=True, exist_ok=True)
    for name in ("pyproject.toml", ".telemetry"):
        shutil.copy(source / name, target / name)
    shutil.copytree(
        source / "conf", target / "conf", ignore=shutil.ignore_patterns("local"), dirs_exist_ok=True
    )
    (target / "conf/local").mkdir(exist_ok=True)
    (target / "src").mkdir(exist_ok=True)
    for layer in LAYERS:
        (target / "data" / layer).mkdir(parents=True, exist_ok=True)
    return target
