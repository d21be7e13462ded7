"""Shared fixtures: a hand-made LLaVA-CoT data set, a throw-away copy of the project, and one
with a tiny trained study."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from heima_kedro.compute import torch_threads
from heima_kedro.conversations import IMAGE_PLACEHOLDER
from heima_kedro.scratch_project import make_scratch_project
from llava_fixtures import write_llava_cot_dir
from session_runs import TRAINED_TINY_PIPELINES, TRAINED_TINY_STUDY, run_session

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


@dataclass(frozen=True)
class TrainedStudy:
    """A project with a tiny trained study, and a test question (with its image) that its Heima
    Encoder answered in the Heima format in the pipeline's own evaluation."""

    project: Path
    image: Path
    question: str


@pytest.fixture(scope="session")
def trained_study(tmp_path_factory: pytest.TempPathFactory) -> TrainedStudy:
    """Trained once per test session (about 45 s) for the demo and the notebook."""
    root = make_scratch_project(source=PROJECT_ROOT, target=tmp_path_factory.mktemp("trained") / "project")
    with pytest.MonkeyPatch.context() as patch, torch_threads(1):
        patch.chdir(root)  # parameters such as data_prep.image_root are relative to the project
        run_session(root, env="base", pipelines=TRAINED_TINY_PIPELINES, params=TRAINED_TINY_STUDY)
    versions = root / "data/07_model_output/heima_encoder_predictions.parquet"
    latest = sorted(versions.iterdir())[-1] / "heima_encoder_predictions.parquet"
    answered = pd.read_parquet(latest).query("heima_format")
    assert len(answered), "the tiny Heima Encoder answered no test question in the Heima format"
    pair = answered.iloc[0]
    return TrainedStudy(
        project=root,
        image=root / "data/01_raw/shapes_cot/images" / pair["image"],
        question=pair["question"].replace(IMAGE_PLACEHOLDER, "").strip(),
    )
