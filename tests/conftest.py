"""Shared fixtures: a hand-made LLaVA-CoT data set and a throw-away copy of the project."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from llava_fixtures import write_llava_cot_dir

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def llava_cot_dir(tmp_path: Path) -> Path:
    """A LLaVA-CoT layout (train.jsonl + images/) exercising every drop reason."""
    return write_llava_cot_dir(tmp_path / "llava_cot")


@pytest.fixture
def project_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the project's configuration in a temp folder, as the working directory."""
    root = tmp_path / "project"
    root.mkdir()
    for name in ("pyproject.toml", ".telemetry"):
        shutil.copy(PROJECT_ROOT / name, root / name)
    shutil.copytree(PROJECT_ROOT / "conf", root / "conf", ignore=shutil.ignore_patterns("local"))
    (root / "conf" / "local").mkdir()
    (root / "src").mkdir()  # bootstrap wants it; the package itself is installed
    for layer in ("01_raw", "02_intermediate", "03_primary", "04_feature", "05_model_input",
                  "06_models", "07_model_output", "08_reporting"):
        (root / "data" / layer).mkdir(parents=True)
    monkeypatch.chdir(root)
    return root
