"""Stage 5 and the evaluation through a KedroSession on a tiny configuration: each decoder's loss
drops, adapters and projections are versioned PEFT folders that load, MLflow gets the loss
histories, and reconstruction_eval / token_count write their reports, records and chart."""

import json
from pathlib import Path

import mlflow
import pandas as pd
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
    "reconstruction_eval": {"limit": 6, "encoder_decoding": {"max_new_tokens": 12},
                            "cot_decoding": {"max_new_tokens": 12}, "decoder_decoding": {"max_new_tokens": 6}},
    "token_count": {"limit": 3, "decoding": {"max_new_tokens": 12}},
}


def _latest(folder: Path) -> Path:
    return sorted(p for p in folder.iterdir() if p.is_dir())[-1]


@pytest.mark.slow
def test_decoders_train_through_the_handoff_and_version_everything(project_copy):
    run_session(project_copy, env="base", params=TINY, pipelines=[
        "synthetic_data", "data_prep", "cot_baseline", "encoder_training", "decoder_training",
        "reconstruction_eval", "token_count"])

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

    _check_evaluation_outputs(project_copy, client, run.info.run_id)


def _check_evaluation_outputs(project: Path, client: mlflow.MlflowClient, run_id: str) -> None:
    reporting = project / "data/08_reporting"
    report = json.loads((_latest(reporting / "reconstruction_metrics.json") / "reconstruction_metrics.json").read_text())
    for stage in ("summary", "caption", "reasoning", "conclusion"):
        assert set(report[stage]) == {"bleu", "meteor", "rouge_l"}
    assert set(report["controls"]) == {"shuffled", "zeros"}
    assert set(report["accuracy"]) == {"heima", "cot"} and report["pairs"] == 6
    records = pd.read_parquet(_latest(project / "data/07_model_output/reconstruction_records.parquet"))
    for stage in ("summary", "caption", "reasoning"):
        rows = records[records["stage"] == stage]
        assert len(rows) == 3 * 6  # every pair under every condition, failures included
        failures = rows.loc[rows["condition"] == "real", "span_failure"].notna().sum()
        assert report["span_failures"][stage]["count"] == failures
        assert (rows.loc[rows["span_failure"].notna(), "rouge_l"] == 0).all()
    assert len(records[records["stage"] == "conclusion"]) == 2 * 6  # both models' answers

    counts = json.loads((_latest(reporting / "token_counts.json") / "token_counts.json").read_text())
    for model in ("cot", "heima"):
        assert set(counts[model]) == {"total", "stages", "conclusion", "latency_s"}
        assert counts[model]["total"] == counts[model]["stages"] + counts[model]["conclusion"]
    assert counts["ratio_total"] == counts["heima"]["total"] / counts["cot"]["total"]
    assert (_latest(reporting / "token_counts.png") / "token_counts.png").stat().st_size > 10_000

    logged = client.get_run(run_id).data.metrics
    assert logged["token_count.ratio_total"] == pytest.approx(counts["ratio_total"])
    assert logged["reconstruction_eval.rouge_l.caption"] == pytest.approx(report["caption"]["rouge_l"])
    assert logged["reconstruction_eval.shuffled.rouge_l.caption"] == pytest.approx(
        report["controls"]["shuffled"]["caption"]["rouge_l"])
