"""compare's nodes on hand-made MLflow search results."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from heima_kedro.pipelines.compare.nodes import (
    compare_runs_node,
    comparison_markdown_node,
    missing_metric_patterns,
    plot_comparison_node,
)

PROJECT_ROOT = Path(__file__).resolve().parents[3]
PARAMS = yaml.safe_load((PROJECT_ROOT / "conf/base/parameters_compare.yml").read_text())["compare"]


def _runs() -> pd.DataFrame:
    """What ``mlflow.search_runs`` returns: four study runs (oldest first; one aligned), and one
    without setting."""
    return pd.DataFrame(
        {
            "run_id": ["a", "b", "e", "c", "d"],
            "start_time": pd.to_datetime(
                [
                    "2026-01-01 10:00",
                    "2026-01-01 11:00",
                    "2026-01-01 11:30",
                    "2026-01-01 12:00",
                    "2026-01-01 13:00",
                ]
            ),
            "tags.mlflow.runName": [
                "study [local] ratio=0.05",
                "study [local] k=4 fixed",
                "study [local] k=1 fixed",
                "study [local] k=1 fixed",
                "cot_baseline [local]",
            ],
            "tags.env": ["local"] * 5,
            "params.data_prep.thinking.mode": ["ratio", "fixed", "fixed", "fixed", None],
            "params.data_prep.thinking.fixed": ["1", "4", "1", "1", None],
            "params.data_prep.thinking.ratio": ["0.05", "0.1", "0.1", "0.1", None],
            "params.encoder_training.alignment.weight": ["0.0", "0.0", "0.5", None, None],
            "metrics.stage_0.loss": [1.5, 1.4, 1.3, 1.3, 1.2],
            "metrics.stage_0.lr": [0.0] * 5,
            "metrics.token_count.compression_ratio": [0.2, 0.1, 0.06, 0.05, np.nan],
        }
    )


def test_table_has_one_row_per_run_ordered_by_setting_with_the_chosen_metrics():
    table = compare_runs_node(_runs(), PARAMS)
    # k=1 (before alignment was a parameter, then aligned), k=4, ratio, no setting
    assert list(table["run_id"]) == ["c", "e", "b", "a", "d"]
    assert list(table["setting"]) == [
        "k=1 fixed",
        "k=1 fixed, alignment 0.5",
        "k=4 fixed",
        "ratio=0.05",
        "not logged",
    ]
    assert table["alignment_weight"].tolist()[1:4] == [0.5, 0.0, 0.0]
    assert table["thinking_tokens_per_stage"].tolist()[:4] == [1, 1, 4, pd.NA]
    assert table["thinking_ratio"].tolist()[3] == 0.05 and pd.isna(table["thinking_ratio"][0])
    assert "stage_0.lr" not in table  # not asked for by any pattern
    assert {"stage_0.loss", "token_count.compression_ratio"} <= set(table.columns)


def test_missing_metrics_are_named_in_the_markdown_and_the_plot_still_draws():
    table = compare_runs_node(_runs(), PARAMS)
    assert missing_metric_patterns(table, PARAMS) == [
        "*accuracy*",
        "study_summary.*",
        "reconstruction_eval.*",
        "reconstruction_eval.rouge_l.*",
        "reconstruction_eval.shuffled.rouge_l.*",
        "study_summary.reconstruction.*",
        "study_summary.probe.*",
    ]
    markdown = comparison_markdown_node(table, PARAMS)
    assert markdown.count("\n| ") == 1 + len(table)  # header and one line per run
    assert "No run logged a metric matching: `*accuracy*`, `study_summary.*`, " in markdown
    figure = plot_comparison_node(table, PARAMS)
    assert len(figure.axes) == len(PARAMS["plot"])


def test_no_runs_is_a_clear_error():
    with pytest.raises(ValueError, match="no finished MLflow runs"):
        compare_runs_node(_runs().iloc[0:0], PARAMS)
