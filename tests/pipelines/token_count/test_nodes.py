"""The nodes of ``token_count``: the report from hand-made counts, and on the shared trained study
both models' timed answers, split at the conclusion."""

from __future__ import annotations

import pandas as pd
import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from matplotlib.figure import Figure

from heima_kedro.pipelines.token_count.nodes import (
    cot_token_counts_node,
    heima_token_counts_node,
    token_count_report_node,
)
from tiny import TRAINED_STUDY

COUNTING = {"decoding": {"batch_size": 1}}


def _counts(model: str, totals: list[int], stages: list[int]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "pair_id": [f"p{i}" for i in range(len(totals))],
            "answer": "…",
            "total": totals,
            "stages": stages,
            "conclusion": [t - s for t, s in zip(totals, stages, strict=True)],
            "latency_s": [0.2] * len(totals),
            "model": model,
        }
    )


def test_the_report_gives_means_ratios_records_a_chart_and_metrics():
    cot, heima = _counts("cot", [200, 100], [190, 95]), _counts("heima", [20, 30], [15, 25])
    report, records, chart, metrics = token_count_report_node(cot, heima, COUNTING)
    assert report["cot"]["total"] == 150 and report["heima"]["conclusion"] == 5
    assert report["ratio_total"] == pytest.approx(25 / 150) and report["ratio_latency"] == 1.0
    assert report["pairs"] == 2 and report["batch_size"] == 1
    assert len(records) == 4 and set(records["model"]) == {"cot", "heima"}
    assert isinstance(chart, Figure)
    assert metrics["ratio_total"] == [{"value": pytest.approx(25 / 150), "step": 0}]
    assert metrics["heima.stages"][0]["value"] == 20


def test_the_report_refuses_counts_of_different_pairs():
    with pytest.raises(ValueError, match="not of the same test pairs"):
        token_count_report_node(
            _counts("cot", [1, 2], [0, 1]), _counts("heima", [1], [0]), COUNTING
        )


@pytest.mark.slow
def test_both_models_answer_the_same_pairs_with_counts_that_add_up(trained_study, monkeypatch):
    monkeypatch.chdir(trained_study.project)  # the catalog's paths are relative to the project
    bootstrap_project(trained_study.project)
    with KedroSession.create(
        project_path=trained_study.project, runtime_params=TRAINED_STUDY
    ) as session:
        context = session.load_context()
        catalog, counting = context.catalog, context.params["token_count"]
        inputs = [catalog.load(name) for name in ("processor", "test_pairs", "encoder_images")]
        cot = cot_token_counts_node(catalog.load("cot_model"), *inputs, counting)
        heima = heima_token_counts_node(
            catalog.load("cot_model"),
            inputs[0],
            catalog.load("stage_4.adapter"),
            *inputs[1:],
            counting,
        )
    limit = TRAINED_STUDY["token_count"]["limit"]
    assert (
        cot["pair_id"].tolist()
        == heima["pair_id"].tolist()
        == inputs[1]["pair_id"].head(limit).tolist()
    )
    for counts in (cot, heima):
        assert (counts["total"] == counts["stages"] + counts["conclusion"]).all()
        assert (counts["latency_s"] > 0).all()
    # the CoT model writes its stages out; the Heima Encoder one token per stage
    assert heima["stages"].mean() < cot["stages"].mean()
