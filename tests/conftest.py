"""Shared fixtures: a hand-made LLaVA-CoT data set and a throw-away copy of the project."""

from __future__ import annotations

from pathlib import Path

import pytest

from heima_kedro.scratch_project import make_scratch_project
from llava_fixtures import write_llava_cot_dir

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def llava_cot_dir(tmp_path: Path) -> Path:
    """A LLaVA-CoT layout (train.jsonl + images/) exercising every drop reason."""
    return write_llava_cot_dir(tmp_path / "llava_cot")


@pytest.fixture
def project_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the project's configuration in a temp folder, as the working directory."""
    root = make_scratch_project(source=PROJECT_ROOT, target=tmp_path / "project")
    monkeypatch.chdir(root)
    return root
