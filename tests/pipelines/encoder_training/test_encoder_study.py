"""Stages 0–4 of the shared tiny study, as `kedro run` left them: every model is a versioned
catalog dataset, the adapters load with PEFT, and each stage's loss curve reached MLflow."""

import json

import mlflow
import pytest
from peft import PeftModel
from transformers import MllamaForConditionalGeneration

from session_runs import latest
from tiny import ENCODER_STAGES, TRAINED_STUDY

pytestmark = pytest.mark.slow


def _run(study) -> mlflow.entities.Run:
    mlflow.set_tracking_uri(f"sqlite:///{study.project / 'mlflow.db'}")
    (run,) = mlflow.search_runs(experiment_names=["heima_kedro"], output_format="list")
    return run


def test_every_stage_is_a_versioned_peft_adapter_on_the_cot_model(trained_study):
    models = trained_study.project / "data/06_models"
    cot_model = MllamaForConditionalGeneration.from_pretrained(
        latest(models / "cot_model") / "cot_model"
    )
    for stage in ENCODER_STAGES:
        folder = latest(models / "adapters" / stage) / stage
        assert {"adapter_config.json", "adapter_model.safetensors"} <= {
            p.name for p in folder.iterdir()
        }
    model = PeftModel.from_pretrained(cot_model, latest(models / "adapters/stage_4") / "stage_4")
    assert any("lora_" in name for name, _ in model.named_parameters())
    report = json.loads(
        trained_study.output("data/08_reporting/heima_encoder_evaluation.json").read_text()
    )
    assert report["pairs"] == TRAINED_STUDY["encoder_training"]["evaluation"]["limit"]
    assert 0 < report["heima_format"] <= 1  # the fixture found an answer in the Heima format


def test_each_stage_logs_its_loss_curve_parameters_and_artifacts(trained_study):
    run = _run(trained_study)
    client = mlflow.MlflowClient()
    steps = {"stage_0": TRAINED_STUDY["cot_baseline"]["stage_0"]["train"]["max_steps"]}
    steps |= {
        stage: TRAINED_STUDY["encoder_training"][stage]["train"]["max_steps"]
        for stage in ENCODER_STAGES
    }
    for stage, max_steps in steps.items():
        history = client.get_metric_history(run.info.run_id, f"{stage}.loss")
        assert sorted(m.step for m in history) == list(range(max_steps)), stage
    assert run.data.params["encoder_training.stage_4.train.lr"] == "0.0001"
    plots = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert {"plots/cot_baseline_curves.png", "plots/encoder_training_curves.png"} <= plots
    adapter_files = {a.path for a in client.list_artifacts(run.info.run_id, "adapters/stage_4")}
    assert adapter_files == {
        "adapters/stage_4/adapter_config.json",
        "adapters/stage_4/adapter_model.safetensors",
    }
    assert (
        trained_study.output("data/08_reporting/encoder_training_curves.png").stat().st_size
        > 10_000
    )


def test_every_stage_checkpointed_into_the_folder_of_its_namespace(trained_study):
    checkpoints = trained_study.project / "data/06_models/checkpoints"
    steps = {"stage_0": TRAINED_STUDY["cot_baseline"]["stage_0"]["train"]["max_steps"]}
    steps |= {
        stage: TRAINED_STUDY["encoder_training"][stage]["train"]["max_steps"]
        for stage in ENCODER_STAGES
    }
    for stage, max_steps in steps.items():
        assert [p.name for p in (checkpoints / stage).glob("step_*")] == [
            f"step_{max_steps:08d}"
        ], stage
