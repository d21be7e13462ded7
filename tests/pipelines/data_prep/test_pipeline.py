"""``data_prep`` run as a user runs it: through a KedroSession on the project's configuration."""

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from llava_fixtures import EXPECTED_DROPS, EXPECTED_KEPT


def _run(project: Path, *, env: str, pipeline: str | list[str]) -> None:
    bootstrap_project(project)
    with KedroSession.create(project_path=project, env=env) as session:
        session.run(pipeline_names=[pipeline] if isinstance(pipeline, str) else pipeline)


def _versions(folder: Path) -> list[Path]:
    return sorted(path for path in folder.iterdir() if path.is_dir())


def test_llava_cot_env_prepares_a_hand_made_file_and_keeps_every_version(
    project_copy, llava_cot_dir
):
    shutil.copytree(llava_cot_dir, project_copy / "data/01_raw/llava_cot")
    _run(project_copy, env="llava_cot", pipeline="data_prep")
    _run(project_copy, env="llava_cot", pipeline="data_prep")

    report_versions = _versions(project_copy / "data/08_reporting/data_quality_report.json")
    assert len(report_versions) == 2  # the rerun did not overwrite the first result
    report = json.loads((report_versions[-1] / "data_quality_report.json").read_text())
    assert report["dropped"] == EXPECTED_DROPS and report["pairs_kept"] == EXPECTED_KEPT

    (train_version,) = _versions(project_copy / "data/05_model_input/train_pairs.parquet")[-1:]
    train = pd.read_parquet(train_version / "train_pairs.parquet")
    test = pd.read_parquet(
        _versions(project_copy / "data/05_model_input/test_pairs.parquet")[-1]
        / "test_pairs.parquet"
    )
    assert len(train) + len(test) == EXPECTED_KEPT
    assert set(train["id"]).isdisjoint(test["id"])
    dropped = pd.read_csv(
        _versions(project_copy / "data/08_reporting/dropped_pairs.csv")[-1] / "dropped_pairs.csv"
    )
    assert dropped["reason"].value_counts().to_dict() == EXPECTED_DROPS


def test_embedded_default_prepares_shapes_cot_without_a_drop(project_copy):
    _run(project_copy, env="base", pipeline=["synthetic_data", "data_prep"])
    (version,) = _versions(project_copy / "data/08_reporting/data_quality_report.json")
    report = json.loads((version / "data_quality_report.json").read_text())
    records = yaml.safe_load(
        (project_copy / "conf/base/parameters_synthetic_data.yml").read_text()
    )["synthetic_data"]["n_records"]
    assert report["pairs_kept"] == report["pairs_total"] >= 1.6 * records
    assert sum(report["dropped"].values()) == 0
    assert report["test_ids"] == records // 10 and report["train_ids"] == records - records // 10
    assert 15 <= report["stage_words"]["summary"]["mean"] <= 30
    assert 30 <= report["stage_words"]["caption"]["mean"] <= 60
    assert 40 <= report["stage_words"]["reasoning"]["mean"] <= 100


def test_synthetic_data_refuses_to_overwrite_real_data_in_llava_cot(project_copy):
    with pytest.raises(ValueError, match="disabled in this environment"):
        _run(project_copy, env="llava_cot", pipeline="synthetic_data")
    assert not (project_copy / "data/01_raw/llava_cot/train.jsonl").exists()


def test_missing_jsonl_stops_with_a_message_naming_the_path(project_copy):
    (project_copy / "data/01_raw/llava_cot/images").mkdir(parents=True)
    with pytest.raises(Exception, match="data/01_raw/llava_cot/train.jsonl"):
        _run(project_copy, env="llava_cot", pipeline="data_prep")


def test_missing_image_root_stops_with_a_message_naming_the_path(project_copy, llava_cot_dir):
    target = project_copy / "data/01_raw/llava_cot"
    target.mkdir(parents=True)
    shutil.copy(llava_cot_dir / "train.jsonl", target / "train.jsonl")
    with pytest.raises(FileNotFoundError, match="data/01_raw/llava_cot/images"):
        _run(project_copy, env="llava_cot", pipeline="data_prep")
