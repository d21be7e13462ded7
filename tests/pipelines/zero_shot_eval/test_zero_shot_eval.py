"""``zero_shot_eval``: the report from hand-made results; on the shared trained study, the
plugin's answers and scores equal the study's own on the same pairs, and lmms-eval's command
line runs the plugin; nothing is loaded before the run's inputs and benchmarks are known good."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest
from matplotlib.figure import Figure

from heima_kedro.evaluation.answers import extract_conclusion
from heima_kedro.evaluation.lmms.harness import ZeroShotConfig
from heima_kedro.pipelines.zero_shot_eval import create_pipeline
from heima_kedro.pipelines.zero_shot_eval.nodes import zero_shot_report_node
from session_runs import latest_file, run_session
from tiny import EVALUATED_PAIRS

DECODING = {"max_new_tokens": 4}
MODEL_INPUTS = {"cot_model", "stage_4.adapter"}


def _records(tokens: list[int], concluded: list[bool]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "task": "t",
            "doc_id": range(len(tokens)),
            "total_tokens": tokens,
            "stage_tokens": [t - 2 for t in tokens],
            "has_conclusion": concluded,
        }
    )


def test_the_report_gives_a_row_per_benchmark_its_markdown_a_plot_and_metrics():
    benchmarks = ZeroShotConfig.from_params(
        {
            "tasks": [{"task": "t", "metric": "exact_match,none"}],
            "heima_decoding": DECODING,
            "cot_decoding": DECODING,
        }
    )
    table, markdown, chart, records, metrics = zero_shot_report_node(
        {"t": 0.5},
        _records([200, 100], [True, False]),
        {"t": 0.25},
        _records([20, 10], [True, True]),
        benchmarks,
    )
    (row,) = table.to_dict("records")
    assert row["cot_tokens"] == 150 and row["heima_tokens"] == 15
    assert row["token_ratio"] == pytest.approx(0.1)
    assert (row["cot_no_conclusion"], row["heima_no_conclusion"], row["documents"]) == (1, 0, 2)
    assert "| t | exact_match,none | 0.500 | 0.250 | 150.0 | 15.0 | 0.100 | 1 / 0 | 2 |" in markdown
    assert isinstance(chart, Figure) and len(records) == 4
    assert metrics["t.token_ratio"] == [{"value": pytest.approx(0.1), "step": 0}]


def test_every_node_that_loads_a_model_waits_for_the_checked_benchmarks():
    loading = [n for n in create_pipeline().nodes if MODEL_INPUTS & set(n.inputs)]
    assert len(loading) == 2
    assert all("zero_shot_benchmarks" in n.inputs for n in loading)


def test_missing_checkpoints_stop_the_run_before_its_first_node(project_copy):
    with pytest.raises(ValueError) as raised:
        run_session(project_copy, env="base", pipelines=["zero_shot_eval"])
    message = str(raised.value)
    assert (
        "'cot_model' has no saved version: run `kedro run --pipelines cot_baseline` first"
        in message
    )
    assert "'stage_4.adapter' has no saved version" in message
    assert (
        "'test_pairs' has no saved version: run `kedro run --pipelines data_prep` first" in message
    )
    assert not (project_copy / "data/05_model_input/lmms_tasks").exists()


def _outputs(project, name: str):
    return latest_file(project / name)


@pytest.mark.slow
def test_the_plugin_answers_and_scores_as_the_study_does(trained_study):
    project = trained_study.project
    table = pd.read_csv(_outputs(project, "data/08_reporting/zero_shot_table.csv"))
    assert _outputs(project, "data/08_reporting/zero_shot.png").stat().st_size > 0
    assert (
        "heima_test_pairs" in _outputs(project, "data/08_reporting/zero_shot_table.md").read_text()
    )
    zero_shot = pd.read_parquet(_outputs(project, "data/07_model_output/zero_shot_records.parquet"))
    study = pd.read_parquet(
        _outputs(project, "data/07_model_output/reconstruction_records.parquet")
    )
    study = study[study["stage"] == "conclusion"]
    report = json.loads(
        _outputs(project, "data/08_reporting/reconstruction_metrics.json").read_text()
    )
    (row,) = table.to_dict("records")
    assert row["documents"] == EVALUATED_PAIRS
    for model in ("cot", "heima"):
        ours = zero_shot[zero_shot["model"] == model].sort_values("doc_id")
        theirs = study[study["model"] == model]
        assert ours["answer"].tolist() == theirs["answer"].tolist()  # same pairs, same answers
        assert ours["prediction"].tolist() == theirs["prediction"].tolist()
        assert ours["total_tokens"].tolist() == theirs["generated_tokens"].astype(int).tolist()
        assert row[f"{model}_score"] == pytest.approx(report["accuracy"][model])
        unconcluded = sum(extract_conclusion(a) is None for a in theirs["answer"])
        assert row[f"{model}_no_conclusion"] == unconcluded
    assert (zero_shot.loc[zero_shot["model"] == "heima", "has_conclusion"]).any()


@pytest.mark.slow
def test_lmms_evals_command_line_runs_the_installed_plugin(trained_study, tmp_path):
    project, models = trained_study.project, trained_study.project / "data/06_models"
    args = ",".join(
        [
            f"model={models / 'cot_model'}",
            f"processor={models / 'processor'}",
            f"adapter={models / 'adapters/stage_4'}",
            "max_new_tokens=40",
        ]
    )
    task = project / "data/05_model_input/lmms_tasks/heima_test_pairs"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "lmms_eval",
            "eval",
            "--model",
            "heima",
            "--model_args",
            args,
            "--tasks",
            "heima_test_pairs",
            "--include_path",
            str(task),
            "--limit",
            "2",
            "--batch_size",
            "2",
            "--output_path",
            str(tmp_path),
            "--log_samples",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (results,) = tmp_path.rglob("*results*.json")
    scores = json.loads(results.read_text())["results"]["heima_test_pairs"]
    assert 0.0 <= scores["exact_match,none"] <= 1.0
    (samples,) = tmp_path.rglob("*samples*.jsonl")
    logged = [json.loads(line) for line in samples.read_text().splitlines()]
    assert len(logged) == 2 and all(s["token_counts"][0]["output_tokens"] > 0 for s in logged)
