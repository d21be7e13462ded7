"""Stages 0–4 wired end to end through a KedroSession on a tiny configuration: every model is a
versioned catalog dataset, adapters load with PEFT, and loss curves reach MLflow."""

import json
from pathlib import Path

import mlflow
import pytest
from peft import PeftModel
from transformers import MllamaForConditionalGeneration

from session_runs import TINY_STUDY, run_session

TINY = TINY_STUDY


def _latest(folder: Path) -> Path:
    return sorted(p for p in folder.iterdir() if p.is_dir())[-1]


@pytest.mark.slow
def test_stages_0_to_4_run_and_version_everything(project_copy):
    run_session(project_copy, env="base",
                pipelines=["synthetic_data", "data_prep", "cot_baseline", "encoder_training"], params=TINY)

    models = project_copy / "data/06_models"
    cot_model = MllamaForConditionalGeneration.from_pretrained(_latest(models / "cot_model") / "cot_model")
    for stage in ("stage_1", "stage_2", "stage_3", "stage_4"):
        folder = _latest(models / "encoder" / stage / "adapter") / "adapter"
        assert {"adapter_config.json", "adapter_model.safetensors"} <= {p.name for p in folder.iterdir()}
    # the last adapter is a plain PEFT folder
    PeftModel.from_pretrained(cot_model, _latest(models / "encoder/stage_4/adapter") / "adapter")

    report = json.loads((_latest(project_copy / "data/08_reporting/heima_encoder_evaluation.json")
                         / "heima_encoder_evaluation.json").read_text())
    assert report["pairs"] == 4 and 0 <= report["heima_format"] <= 1

    mlflow.set_tracking_uri(f"sqlite:///{project_copy / 'mlflow.db'}")
    (run,) = mlflow.search_runs(experiment_names=["heima_kedro"], output_format="list")
    client = mlflow.MlflowClient()
    assert [m.step for m in client.get_metric_history(run.info.run_id, "stage_0.loss")] == [0, 1, 2]
    for stage in ("stage_1", "stage_2", "stage_3", "stage_4"):
        assert len(client.get_metric_history(run.info.run_id, f"{stage}.loss")) == 2
    assert run.data.params["encoder_training.stage_4.train.lr"] == "0.0001"
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert artifacts == {"plots/cot_baseline_curves.png", "plots/encoder_training_curves.png"}
    adapter_files = {a.path for a in client.list_artifacts(run.info.run_id, "adapters/stage_4")}
    assert adapter_files == {"adapters/stage_4/adapter_config.json", "adapters/stage_4/adapter_model.safetensors"}
    assert (_latest(project_copy / "data/08_reporting/encoder_training_curves.png") / "encoder_training_curves.png").stat().st_size > 10_000
