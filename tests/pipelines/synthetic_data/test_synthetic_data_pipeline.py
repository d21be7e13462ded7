"""``synthetic_data`` as a user runs it, and its guard against overwriting real data."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from PIL import Image

from heima_kedro.data.shapes_cot import ShapesCoTConfig, generate_shapes_cot
from heima_kedro.pipelines.synthetic_data.nodes import generate_shapes_cot_node

SMALL_PARAMS = {"enabled": True, "n_records": 12, "seed": 9}


def _run(project: Path, *, env: str | None = None, params: dict | None = None) -> None:
    bootstrap_project(project)
    with KedroSession.create(project_path=project, env=env, runtime_params=params) as session:
        try:
            session.run(pipeline_names=["synthetic_data"])
        finally:
            # A run left open would receive the next session's parameters and fail it: close
            # it so only this test fails.
            leaked = mlflow.active_run()
            while mlflow.active_run():
                mlflow.end_run()
            assert leaked is None, (
                f"MLflow run {leaked.info.run_id} still active after the session; "
                "kedro-mlflow with `tracking.run.nested: true` stacks the run once per node "
                "(kedro-mlflow#650), set it to false in mlflow.yml"
            )


def test_node_returns_jsonl_text_and_images_named_by_the_records():
    text, images = generate_shapes_cot_node(SMALL_PARAMS)
    records, expected_images = generate_shapes_cot(config=ShapesCoTConfig(n_records=12, seed=9))
    assert text.endswith("\n") and text.count("\n") == 12
    assert [json.loads(line) for line in text.splitlines()] == records
    assert sorted(images) == sorted(r["image"].removesuffix(".png") for r in records)
    assert all(images[k].tobytes() == expected_images[k].tobytes() for k in images)


def test_disabled_node_refuses_to_overwrite_raw_conversations():
    with pytest.raises(ValueError, match="disabled in this environment"):
        generate_shapes_cot_node({"enabled": False})


def test_unknown_parameter_is_rejected():
    with pytest.raises(ValueError, match="n_images"):
        generate_shapes_cot_node({"enabled": True, "n_images": 3})


def test_base_run_writes_jsonl_and_pngs_that_match_the_generator(project_copy):
    _run(project_copy, params={"synthetic_data": {"n_records": 12, "seed": 9}})
    raw = project_copy / "data/01_raw/shapes_cot"
    records = [json.loads(line) for line in (raw / "train.jsonl").read_text().splitlines()]
    expected, images = generate_shapes_cot(config=ShapesCoTConfig(n_records=12, seed=9))
    assert records == expected
    for record in records:
        with Image.open(raw / "images" / record["image"]) as png:
            assert png.convert("RGB").tobytes() == images[record["image"][:-4]].tobytes()


def test_llava_cot_env_disables_the_pipeline(project_copy):
    real = project_copy / "data/01_raw/llava_cot/train.jsonl"
    real.parent.mkdir(parents=True)
    real.write_text("{}\n")
    with pytest.raises(ValueError, match="--env llava_cot --pipelines data_prep"):
        _run(project_copy, env="llava_cot")
    assert real.read_text() == "{}\n"
