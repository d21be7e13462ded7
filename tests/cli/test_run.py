"""``kedro run`` (and ``heima-kedro`` without a subcommand) without ``--pipelines``: the study of
the environment, which in ``llava_cot`` leaves out the ShapesCoT generator and the tiny stage 0."""

from pathlib import Path

import pytest
from kedro.framework.startup import bootstrap_project

from heima_kedro.__main__ import main
from heima_kedro.cli.run import environment_parameters
from heima_kedro.pipeline_registry import STUDY_PHASES, default_pipeline_for, register_pipelines

GENERATED_HERE = {
    "generate_shapes_cot_node",
    "train_tokenizer_node",
    "build_models_node",
    "train_cot_baseline_node",
    "plot_cot_baseline_curves_node",
}


def _default(env, params=None):
    return default_pipeline_for(environment_parameters(env=env, conf_source=None, params=params))


def test_each_environment_names_its_study(project_copy):
    bootstrap_project(project_copy)
    assert _default(None) == "__default__"
    assert _default("llava_cot") == "from_published_model"
    # Own raw data, tiny models trained on it: only the generator is left out.
    assert _default("llava_cot", {"model_factory": {"enabled": True}}) == "from_raw_data"
    assert _default(None, {"synthetic_data": {"enabled": False}}) == "from_raw_data"


def test_every_pipeline_folder_is_registered():
    package = Path(__file__).resolve().parents[2] / "src/heima_kedro/pipelines"
    assert {path.parent.name for path in package.glob("*/pipeline.py")} == set(STUDY_PHASES)


def test_the_published_model_study_leaves_out_only_what_is_generated_here(project_copy):
    bootstrap_project(project_copy)
    pipelines = register_pipelines()
    names = {key: {node.name for node in pipelines[key].nodes} for key in pipelines}
    assert names["__default__"] - names["from_published_model"] == GENERATED_HERE
    assert names["__default__"] - names["from_raw_data"] == {"generate_shapes_cot_node"}
    # The CoT row of the study is the published model's own evaluation.
    assert "evaluate_cot_baseline_node" in names["from_published_model"]


def test_kedro_run_in_llava_cot_runs_without_the_generator(project_copy):
    # --tags slices the pipeline run: the environment's study has no node tagged
    # synthetic_data, where `__default__` would start the generator, which refuses here.
    with pytest.raises(ValueError, match="no nodes"):
        main(["--env", "llava_cot", "--tags", "synthetic_data"])
    with pytest.raises(ValueError, match="disabled in this environment"):
        main(["--env", "llava_cot", "--pipelines", "__default__", "--tags", "synthetic_data"])
