"""Stage 5 through a KedroSession on a tiny configuration: each decoder's loss drops, adapters
and projections are versioned PEFT folders that load, and MLflow gets the loss histories."""

from pathlib import Path

import mlflow
import pytest
from peft import PeftModel
from safetensors.torch import load_file
from transformers import LlamaForCausalLM

from session_runs import TINY_STUDY, run_session

DECODERS = ("decoder_summary", "decoder_caption", "decoder_reasoning")
STEPS = 12

# The shared tiny study configuration, with a decoder wider
# than the encoder (48 vs 32) so the hand-off goes through a learned projection.
TINY = {
    **TINY_STUDY,
    "model_factory": {**TINY_STUDY["model_factory"],
                      "decoder": {**TINY_STUDY["model_factory"]["decoder"], "hidden_size": 48}},
    "decoder_training": {
        "encoder": {"batch_size": 16},
        "lora": {"r": 4, "alpha": 8},
        **{stage: {"train": {"max_steps": STEPS, "batch_size": 8, "warmup_steps": 2, "lr": 1.0e-2}}
           for stage in ("summary", "caption", "reasoning")},
    },
}


def _latest(folder: Path) -> Path:
    return sorted(p for p in folder.iterdir() if p.is_dir())[-1]


@pytest.mark.slow
def test_decoders_train_through_the_handoff_and_version_everything(project_copy):
    run_session(project_copy, env="base", params=TINY, pipelines=[
        "synthetic_data", "data_prep", "cot_baseline", "encoder_training", "decoder_training"])

    models = project_copy / "data/06_models"
    base = _latest(models / "decoder_base") / "decoder_base"
    for decoder in DECODERS:
        folder = _latest(models / "decoders" / decoder / "adapter") / "adapter"
        projection = load_file(folder / "extra_weights.safetensors")
        assert projection["projection.weight"].shape == (48, 32)
        model = PeftModel.from_pretrained(LlamaForCausalLM.from_pretrained(base), folder)
        assert any("lora_" in name for name, _ in model.named_parameters())

    mlflow.set_tracking_uri(f"sqlite:///{project_copy / 'mlflow.db'}")
    (run,) = mlflow.search_runs(experiment_names=["heima_kedro"], output_format="list")
    client = mlflow.MlflowClient()
    for decoder in DECODERS:
        losses = [m.value for m in sorted(client.get_metric_history(run.info.run_id, f"{decoder}.loss"),
                                          key=lambda m: m.step)]
        assert len(losses) == STEPS
        assert sum(losses[-3:]) < 0.8 * sum(losses[:3]), f"{decoder} did not learn: {losses}"
        files = {a.path for a in client.list_artifacts(run.info.run_id, f"adapters/{decoder}")}
        assert f"adapters/{decoder}/extra_weights.safetensors" in files
    assert run.data.params["decoder_training.caption.stage"] == "caption"
    assert "plots/decoder_training_curves.png" in {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
