"""The study summary of the trained tiny study: every row, from the run's own reports."""

import json

import pandas as pd
import pytest

from tiny import EVALUATED_PAIRS

pytestmark = pytest.mark.slow


def _report(study, name):
    return json.loads(study.output(f"data/08_reporting/{name}.json").read_text())


def test_summary_holds_every_row_from_the_runs_reports(trained_study):
    summary = _report(trained_study, "study_summary")
    rows = {row["model"]: row for row in summary["models"]}
    assert list(rows) == ["cot", "no_cot", "heima", "heima_masked", "heima_other_pair"]
    reconstruction = _report(trained_study, "reconstruction_metrics")
    tokens = _report(trained_study, "token_counts")
    no_cot = _report(trained_study, "no_cot_evaluation")
    controls = _report(trained_study, "answer_controls")
    assert rows["cot"]["accuracy"] == reconstruction["accuracy"]["cot"]
    assert rows["heima"]["accuracy"] == reconstruction["accuracy"]["heima"]
    assert rows["heima"]["token_ratio"] == pytest.approx(tokens["ratio_total"])
    assert rows["no_cot"]["accuracy"] == no_cot["accuracy"]
    assert rows["heima_masked"]["accuracy"] == controls["accuracy"]["masked"]
    assert rows["heima_other_pair"]["accuracy"] == controls["accuracy"]["other_pair"]
    assert {row["stage"] for row in summary["reconstruction_rouge_l"]} == {
        "summary",
        "caption",
        "reasoning",
    }
    labels = {(row["stage"], row["label"]) for row in summary["probes"]}
    assert ("caption", "cell_colour") in labels and ("reasoning", "conclusion") in labels
    markdown = trained_study.output("data/08_reporting/study_summary.md").read_text()
    assert "No-CoT" in markdown and "thinking from another pair" in markdown
    assert trained_study.output("data/08_reporting/study_summary.png").stat().st_size


def test_no_cot_answers_with_the_conclusion_alone(trained_study):
    no_cot = _report(trained_study, "no_cot_evaluation")
    assert no_cot["pairs"] == EVALUATED_PAIRS
    records = pd.read_parquet(
        trained_study.output("data/07_model_output/no_cot_predictions.parquet")
    )
    assert records["no_cot"].str.startswith("<CONCLUSION>").all()
    assert not records["prediction"].str.contains("<SUMMARY>").any()
