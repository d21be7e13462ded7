"""Every parameter group a node reads is checked before the run's first node."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from kedro.config import OmegaConfigLoader
from kedro.framework.startup import bootstrap_project

from heima_kedro.cli.scratch_project import make_scratch_project
from heima_kedro.pipeline_registry import register_pipelines
from heima_kedro.pipelines.parameter_checks import checked_group, parameter_errors
from heima_kedro.settings import CONFIG_LOADER_ARGS
from session_runs import run_session

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def conf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's configuration without the user's conf/local."""
    project = tmp_path_factory.mktemp("conf") / "project"
    return make_scratch_project(source=PROJECT_ROOT, target=project) / "conf"


def _parameter_inputs() -> set[str]:
    bootstrap_project(PROJECT_ROOT)
    return {
        name
        for pipeline in register_pipelines().values()
        for node in pipeline.nodes
        for name in node.inputs
        if name.startswith("params:")
    }


def _parameters(conf: Path, env: str) -> dict:
    """The parameters as `kedro run --env <env>` reads them (base: the empty conf/local)."""
    loader = OmegaConfigLoader(
        conf_source=str(conf), env="local" if env == "base" else env, **CONFIG_LOADER_ARGS
    )
    return loader["parameters"]


def _lookup(parameters: dict):
    def load(name: str):
        value = parameters
        for key in name.removeprefix("params:").split("."):
            value = value[key]
        return value

    return load


def test_every_parameter_a_node_reads_has_a_check():
    unchecked = sorted(p for p in _parameter_inputs() if checked_group(p) is None)
    assert unchecked == []


def test_the_longest_group_that_holds_a_parameter_checks_it():
    assert checked_group("params:decoder_training.decoder_caption.target") == (
        "decoder_training.decoder_caption"
    )
    assert checked_group("params:data_prep.thinking.tokens") == "data_prep"
    assert checked_group("params:decoder_training") is None


@pytest.mark.parametrize("env", ["base", "quick", "llava_cot"])
def test_the_shipped_parameters_pass_their_checks(conf, env):
    assert parameter_errors(_parameter_inputs(), load=_lookup(_parameters(conf, env))) == []


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (
            lambda p: p["cot_baseline"]["stage_0"]["train"].update(lr=-1),
            "parameters 'cot_baseline.stage_0': train.lr must be > 0, got -1",
        ),
        (
            lambda p: p["encoder_training"]["stage_3"]["train"].update(batch_size=0),
            "parameters 'encoder_training': stage_3: ",
        ),
        (
            lambda p: p["encoder_training"]["lora"].update(rank=8),
            "parameters 'encoder_training': lora: unknown key 'rank'",
        ),
        (
            lambda p: p["token_count"].pop("decoding"),
            "parameters 'token_count': 'decoding' is missing",
        ),
        (
            lambda p: p["thinking_controls"]["probes"].update(max_length=None),
            "parameters 'thinking_controls': probes: max_length must be an integer >= 1",
        ),
        (
            lambda p: p["reconstruction_eval"]["decoder_decoding"].update(max_new_tokens=0),
            "parameters 'reconstruction_eval': decoder_decoding: ",
        ),
    ],
)
def test_a_bad_value_is_named_by_its_group(conf, change, error):
    parameters = copy.deepcopy(_parameters(conf, "base"))
    change(parameters)
    errors = parameter_errors(_parameter_inputs(), load=_lookup(parameters))
    assert len(errors) == 1
    assert errors[0].startswith(error)
    assert "\n" not in errors[0]


def test_a_bad_value_stops_kedro_run_before_its_first_node(project_copy):
    with pytest.raises(ValueError, match=r"parameters 'cot_baseline\.stage_0': train\.lr"):
        run_session(
            project_copy, env="base", params={"cot_baseline": {"stage_0": {"train": {"lr": -1}}}}
        )
    # the study's first node (the synthetic data) never ran
    assert not any((project_copy / "data/01_raw").iterdir())
