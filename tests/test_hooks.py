"""Project hooks: MLflow run names say what ran (pipelines, environment, thinking setting); a
run's missing inputs are named before its first node."""

import mlflow
import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from heima_kedro.hooks import run_name
from session_runs import run_session
from tiny import TINY_STUDY

FIXED_1 = {"data_prep": {"thinking": {"mode": "fixed", "fixed": 1, "ratio": 0.1}}}


def test_run_name_names_pipelines_env_and_setting():
    assert (
        run_name({"pipeline_names": None, "env": None}, FIXED_1, default_env="local")
        == "study [local] k=1 fixed"
    )
    ratio = {"data_prep": {"thinking": {"mode": "ratio", "fixed": 1, "ratio": 0.05}}}
    assert (
        run_name(
            {"pipeline_names": ["cot_baseline", "data_prep"], "env": "llava_cot"},
            ratio,
            default_env="local",
        )
        == "data_prep+cot_baseline [llava_cot] ratio=0.05"
    )  # in study order


def test_run_name_says_when_only_part_of_a_pipeline_ran():
    run_params = {
        "pipeline_names": ["encoder_training"],
        "env": "base",
        "tags": ["stage_1"],
        "to_nodes": ["x"],
    }
    assert (
        run_name(run_params, {}, default_env="local")
        == "encoder_training tags=stage_1 (slice) [base]"
    )


@pytest.mark.slow
def test_kedro_run_is_an_mlflow_run_named_after_what_ran(project_copy):
    params = {
        "synthetic_data": TINY_STUDY["synthetic_data"],
        "data_prep": {"thinking": {"fixed": 2}},
    }
    run_session(project_copy, env="base", pipelines=["synthetic_data", "data_prep"], params=params)

    mlflow.set_tracking_uri(f"sqlite:///{project_copy / 'mlflow.db'}")
    (run,) = mlflow.search_runs(experiment_names=["heima_kedro"], output_format="list")
    assert run.info.run_name == "synthetic_data+data_prep [base] k=2 fixed"
    assert run.data.params["data_prep.thinking.fixed"] == "2"


def test_missing_published_data_and_models_are_named_before_the_first_node(project_copy):
    with pytest.raises(ValueError) as raised:
        run_session(project_copy, env="llava_cot", pipelines=["data_prep", "encoder_training"])
    (message,) = str(raised.value).splitlines()
    models, data = (project_copy / "data/06_models/llava_cot", project_copy / "data/01_raw")
    assert (
        f"'cot_model', 'processor', 'tokenizer' read {models}/Llama-3.2V-11B-cot, which does not "
        "exist: download Xkev/Llama-3.2V-11B-cot from the Hugging Face Hub into this folder"
        in message
    )
    assert (
        f"'raw_conversations' reads {data}/llava_cot/train.jsonl, which does not exist: put "
        "LLaVA-CoT-100k (huggingface.co/datasets/Xkev/LLaVA-CoT-100k) there" in message
    )
    assert not any((project_copy / "data/02_intermediate").iterdir())


def test_a_slice_that_leaves_out_an_in_memory_inputs_writer_stops_before_its_first_node(
    project_copy,
):
    bootstrap_project(project_copy)
    with KedroSession.create(project_path=project_copy, env="base") as session:
        with pytest.raises(ValueError) as raised:
            session.run(from_nodes=["heima_zero_shot_node"])
    assert (
        "'zero_shot_benchmarks' is held in memory only and no node of this run writes it: add "
        "check_benchmarks_node to the run" in str(raised.value)
    )
    assert not (project_copy / "data/05_model_input/lmms_tasks").exists()
