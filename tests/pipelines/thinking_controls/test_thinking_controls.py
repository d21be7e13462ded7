"""The answer-level controls and the probes as the trained tiny study's run wrote them."""

import json

import pandas as pd
import pytest

from tiny import EVALUATED_PAIRS

pytestmark = pytest.mark.slow


def test_controls_continue_every_answer_and_real_reproduces_it(trained_study):
    report = json.loads(trained_study.output("data/08_reporting/answer_controls.json").read_text())
    reconstruction = json.loads(
        trained_study.output("data/08_reporting/reconstruction_metrics.json").read_text()
    )
    records = pd.read_parquet(
        trained_study.output("data/07_model_output/answer_control_records.parquet")
    )
    assert report["pairs"] == EVALUATED_PAIRS
    # As reconstruction_eval answers: the same pairs, decoding and accuracy.
    assert report["accuracy"]["generated"] == reconstruction["accuracy"]["heima"]
    by = {c: frame.set_index("pair_id") for c, frame in records.groupby("condition")}
    continued = by["real"]["answer"].notna()
    assert continued.any()
    assert continued.sum() == EVALUATED_PAIRS - report["not_answered"]["real"]
    # Continuing an answer from its own thinking, unchanged, gives the answer again.
    pd.testing.assert_series_equal(
        by["real"]["answer"][continued], by["generated"]["answer"][continued]
    )
    donors = by["other_pair"]["donor_pair_id"].dropna()
    assert len(donors) and (donors != donors.index).all()


def test_probes_report_each_stage_and_label_against_the_commonest(trained_study):
    probes = json.loads(trained_study.output("data/08_reporting/thinking_probes.json").read_text())
    assert probes["test_pairs"] == EVALUATED_PAIRS and probes["fit_pairs"] == 48
    for stage in ("summary", "caption", "reasoning"):
        assert set(probes[stage]) == {
            "cell_colour",
            "cell_shape",
            "cell_object",
            "objects",
            "conclusion",
        }
        for score in probes[stage].values():
            assert 0 <= score["accuracy"] <= 1 and 0 <= score["majority"] <= 1
