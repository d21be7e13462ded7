"""Two tiny study runs with different thinking settings, then ``compare`` through a KedroSession:
one table row per run, named and described by its setting."""

import mlflow
import pandas as pd
import pytest

from heima_kedro.cli.sweep import sweep_settings
from session_runs import latest_file, run_session
from tiny import TINY_STUDY


@pytest.mark.slow
def test_compare_reads_back_one_row_per_run_with_its_setting(project_copy):
    settings = sweep_settings(fixed=[2], ratios=[0.05])
    for setting in settings:
        run_session(
            project_copy,
            env="base",
            pipelines=["synthetic_data", "data_prep", "cot_baseline"],
            params={**TINY_STUDY, **setting.runtime_params},
        )
    run_session(project_copy, env="base", pipelines=["compare"])

    reporting = project_copy / "data/08_reporting"
    table = pd.read_csv(latest_file(reporting / "run_comparison.csv"))
    assert len(table) == 2
    assert list(table["setting"]) == ["k=2 fixed", "ratio=0.05"]
    assert list(table["run_name"]) == [
        "synthetic_data+data_prep+cot_baseline [base] k=2 fixed",
        "synthetic_data+data_prep+cot_baseline [base] ratio=0.05",
    ]
    assert list(table["thinking_mode"]) == ["fixed", "ratio"]
    assert table["thinking_tokens_per_stage"][0] == 2 and table["thinking_ratio"][1] == 0.05
    assert table["stage_0.loss"].notna().all()

    markdown = latest_file(reporting / "run_comparison.md").read_text()
    assert "k=2 fixed" in markdown and "`reconstruction_eval.*`" in markdown
    assert latest_file(reporting / "run_comparison.png").stat().st_size > 10_000

    # compare is an analysis over runs, not a run itself
    mlflow.set_tracking_uri(f"sqlite:///{project_copy / 'mlflow.db'}")
    assert len(mlflow.search_runs(experiment_names=["heima_kedro"])) == 2
