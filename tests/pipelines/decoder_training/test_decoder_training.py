"""Stage 5 and the evaluation of the shared tiny study, as `kedro run` left them: each decoder's
loss dropped, adapters and projections are versioned PEFT folders that load, MLflow has the loss
histories, and reconstruction_eval / token_count wrote their reports, records and chart."""

import json

import mlflow
import pandas as pd
import pytest
from peft import PeftModel
from safetensors.torch import load_file
from transformers import LlamaForCausalLM

from session_runs import latest
from tiny import DECODER_STEPS, DECODERS, EVALUATED_PAIRS, TRAINED_STUDY

pytestmark = pytest.mark.slow


def _widths() -> tuple[int, int]:
    factory = TRAINED_STUDY["model_factory"]
    return factory["decoder"]["hidden_size"], factory["encoder"]["hidden_size"]


def test_decoders_are_versioned_peft_folders_with_their_projection(trained_study):
    models = trained_study.project / "data/06_models"
    base = latest(models / "decoder_base") / "decoder_base"
    for decoder in DECODERS:
        folder = latest(models / "adapters" / decoder) / decoder
        projection = load_file(folder / "extra_weights.safetensors")
        assert (
            projection["projection.weight"].shape == _widths()
        )  # 64-wide states into a 32-wide decoder
        model = PeftModel.from_pretrained(LlamaForCausalLM.from_pretrained(base), folder)
        assert any("lora_" in name for name, _ in model.named_parameters())


def test_decoders_learn_and_log_to_mlflow(trained_study):
    mlflow.set_tracking_uri(f"sqlite:///{trained_study.project / 'mlflow.db'}")
    (run,) = mlflow.search_runs(experiment_names=["heima_kedro"], output_format="list")
    client = mlflow.MlflowClient()
    for decoder in DECODERS:
        history = sorted(
            client.get_metric_history(run.info.run_id, f"{decoder}.loss"), key=lambda m: m.step
        )
        losses = [m.value for m in history]
        assert len(losses) == DECODER_STEPS
        assert sum(losses[-3:]) < 0.8 * sum(losses[:3]), f"{decoder} did not learn: {losses}"
        files = {a.path for a in client.list_artifacts(run.info.run_id, f"adapters/{decoder}")}
        assert f"adapters/{decoder}/extra_weights.safetensors" in files
    assert run.data.params["decoder_training.decoder_caption.target"] == "caption"
    assert "plots/decoder_training_curves.png" in {
        a.path for a in client.list_artifacts(run.info.run_id, "plots")
    }
    logged = client.get_run(run.info.run_id).data.metrics
    report = json.loads(
        trained_study.output("data/08_reporting/reconstruction_metrics.json").read_text()
    )
    counts = json.loads(trained_study.output("data/08_reporting/token_counts.json").read_text())
    assert logged["token_count.ratio_total"] == pytest.approx(counts["ratio_total"])
    assert logged["reconstruction_eval.rouge_l.caption"] == pytest.approx(
        report["caption"]["rouge_l"]
    )
    assert logged["reconstruction_eval.shuffled.rouge_l.caption"] == pytest.approx(
        report["controls"]["shuffled"]["caption"]["rouge_l"]
    )


def test_reconstruction_report_accounts_for_every_pair_and_condition(trained_study):
    report = json.loads(
        trained_study.output("data/08_reporting/reconstruction_metrics.json").read_text()
    )
    for stage in ("summary", "caption", "reasoning", "conclusion"):
        assert set(report[stage]) == {"bleu", "meteor", "rouge_l"}
    assert set(report["controls"]) == {"shuffled", "zeros"}
    assert set(report["accuracy"]) == {"heima", "cot"} and report["pairs"] == EVALUATED_PAIRS
    records = pd.read_parquet(
        trained_study.output("data/07_model_output/reconstruction_records.parquet")
    )
    for stage in ("summary", "caption", "reasoning"):
        rows = records[records["stage"] == stage]
        assert (
            len(rows) == 3 * EVALUATED_PAIRS
        )  # every pair under every condition, failures included
        failures = rows.loc[rows["condition"] == "real", "span_failure"].notna().sum()
        assert report["span_failures"][stage]["count"] == failures
        assert (rows.loc[rows["span_failure"].notna(), "rouge_l"] == 0).all()
    assert (
        len(records[records["stage"] == "conclusion"]) == 2 * EVALUATED_PAIRS
    )  # both models' answers


def test_token_counts_split_each_answer_and_chart_them(trained_study):
    counts = json.loads(trained_study.output("data/08_reporting/token_counts.json").read_text())
    for model in ("cot", "heima"):
        assert set(counts[model]) == {"total", "stages", "conclusion", "latency_s"}
        assert counts[model]["total"] == pytest.approx(  # means over the same answers
            counts[model]["stages"] + counts[model]["conclusion"]
        )
    assert counts["ratio_total"] == counts["heima"]["total"] / counts["cot"]["total"]
    assert counts["pairs"] == TRAINED_STUDY["token_count"]["limit"]
    assert trained_study.output("data/08_reporting/token_counts.png").stat().st_size > 10_000
