"""The nodes of ``reconstruction_eval`` on small hand-made inputs (spans, controls, scores, the
report) and, on the shared trained study, the encoder's answers through to reconstructions."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from heima_kedro.data.thinking import ThinkingConfig
from heima_kedro.evaluation.text_metrics import Scorer
from heima_kedro.models.generation import Generation
from heima_kedro.pipelines.reconstruction_eval.nodes import (
    _control_states,
    heima_answers_node,
    reconstruct_stage_node,
    reconstruction_report_node,
    score_conclusions_node,
    score_stage_node,
    thinking_spans_node,
)
from tiny import EVALUATED_PAIRS, TRAINED_STUDY

TOKENS = ThinkingConfig().tokens
ANSWER = (
    "<SUMMARY> {summary} </SUMMARY> <CAPTION> {caption} </CAPTION> "
    "<REASONING> {reasoning} </REASONING> <CONCLUSION> {conclusion} </CONCLUSION>"
)


def _generation(tokenizer, text: str) -> Generation:
    """An answer whose every token was captured, each state holding its position."""
    ids = tuple(tokenizer(text, add_special_tokens=False).input_ids)
    return Generation(
        token_ids=ids,
        text=tokenizer.decode(list(ids)),
        captured_positions=tuple(range(len(ids))),
        captured_states=torch.arange(len(ids), dtype=torch.float)[:, None].repeat(1, 4),
        seconds=0.1,
    )


def test_spans_give_each_stage_its_states_or_the_reason_there_are_none(processor):
    heima = ANSWER.format(
        summary=TOKENS["summary"],
        caption=TOKENS["caption"] * 2,
        reasoning=TOKENS["reasoning"],
        conclusion="Yes.",
    )
    written = ANSWER.format(
        summary=TOKENS["summary"],
        caption="a red ring",
        reasoning=TOKENS["reasoning"],
        conclusion="Yes.",
    )
    no_caption = heima.replace(f"<CAPTION> {TOKENS['caption'] * 2} </CAPTION> ", "")
    answers = [_generation(processor.tokenizer, text) for text in (heima, written, no_caption)]
    spans = thinking_spans_node(answers, processor, TOKENS)
    assert [len(s) if isinstance(s, torch.Tensor) else s for s in spans["caption"]] == [
        2,
        "not_thinking",
        "missing_stage",
    ]
    assert all(isinstance(s, torch.Tensor) and len(s) == 1 for s in spans["summary"])
    caption_id = processor.tokenizer.convert_tokens_to_ids(TOKENS["caption"])
    first = spans["caption"][0][:, 0].tolist()  # the states of the steps that emitted the tokens
    assert first == [i for i, t in enumerate(answers[0].token_ids) if t == caption_id]


def test_controls_give_every_pair_another_pairs_states_and_zeros_of_the_same_shape():
    states = [torch.full((1 + i % 2, 3), float(i)) for i in range(6)]
    controls = _control_states(states, seed=0)
    assert controls["real"] is states
    assert all(
        shuffled is not own for shuffled, own in zip(controls["shuffled"], states, strict=True)
    )
    assert sorted(float(s[0, 0]) for s in controls["shuffled"]) == [float(i) for i in range(6)]
    assert [tuple(z.shape) for z in controls["zeros"]] == [tuple(s.shape) for s in states]
    assert all(not z.any() for z in controls["zeros"])
    again = _control_states(states, seed=0)["shuffled"]
    assert all(a is b for a, b in zip(again, controls["shuffled"], strict=True))


def _reconstructions() -> pd.DataFrame:
    rows = []
    for stage in ("summary", "caption", "reasoning"):
        for condition, prediction in (
            ("real", "a red ring"),
            ("shuffled", "a blue cross"),
            ("zeros", ""),
        ):
            rows.append(
                {
                    "pair_id": "p0",
                    "condition": condition,
                    "prediction": prediction,
                    "span_failure": None,
                    "reference": "a red ring",
                    "stage": stage,
                }
            )
            rows.append(
                {
                    "pair_id": "p1",
                    "condition": condition,
                    "prediction": "",
                    "span_failure": "not_thinking",
                    "reference": "two squares",
                    "stage": stage,
                }
            )
    return pd.DataFrame(rows)


def test_a_pair_without_a_span_scores_zero_and_the_report_counts_it():
    scored = score_stage_node(_reconstructions(), Scorer())
    assert (
        (scored.loc[scored["span_failure"].notna(), ["bleu", "meteor", "rouge_l"]] == 0).all().all()
    )
    assert (
        scored.loc[(scored["pair_id"] == "p0") & (scored["condition"] == "real"), "rouge_l"]
        .eq(1.0)
        .all()
    )

    conclusions = pd.DataFrame(
        {
            "pair_id": ["p0", "p1", "p0", "p1"],
            "model": ["heima", "heima", "cot", "cot"],
            "correct": [True, False, True, True],
            "bleu": 0.5,
            "meteor": 0.5,
            "rouge_l": 0.5,
        }
    )
    frames = {
        stage: scored[scored["stage"] == stage] for stage in ("summary", "caption", "reasoning")
    }
    report, records, metrics = reconstruction_report_node(*frames.values(), conclusions, Scorer())
    assert report["caption"]["rouge_l"] == pytest.approx(0.5)  # 1.0 for p0, 0 for the failed p1
    assert report["controls"]["zeros"]["caption"]["rouge_l"] == 0.0
    assert report["accuracy"] == {"heima": 0.5, "cot": 1.0}
    assert report["span_failures"]["caption"] == {"count": 1, "reasons": {"not_thinking": 1}}
    assert report["pairs"] == 2 and report["meteor_synonyms"] is False and "warning" in report
    assert len(records) == len(scored) + len(conclusions)
    assert metrics["accuracy.heima"] == [{"value": 0.5, "step": 0}]
    assert (
        metrics["shuffled.rouge_l.caption"][0]["value"]
        == report["controls"]["shuffled"]["caption"]["rouge_l"]
    )


def test_conclusions_are_right_only_with_their_tags(tokenizer):
    pairs = pd.DataFrame(
        {"pair_id": ["p0", "p1"], "question": ["q0", "q1"], "conclusion": ["Red.", "2."]}
    )
    right = ANSWER.format(summary="s", caption="c", reasoning="r", conclusion="red")
    untagged = "The answer is 2."
    answers = [_generation(tokenizer, right), _generation(tokenizer, untagged)]
    records = score_conclusions_node(answers, answers, pairs, Scorer(), {"limit": None})
    assert records["correct"].tolist() == [True, False, True, False]
    assert records["prediction"].tolist()[:2] == ["red", ""]
    with pytest.raises(ValueError, match="1 heima answers for 2 test pairs"):
        score_conclusions_node(answers[:1], answers, pairs, Scorer(), {"limit": None})


@pytest.mark.slow
def test_the_trained_encoder_answers_and_each_pair_is_reconstructed_under_every_condition(
    trained_study, monkeypatch
):
    """From the trained study's own models: the Heima answers' spans feed the caption decoder,
    and every evaluated pair comes back under every condition, a failed span with its reason."""
    monkeypatch.chdir(trained_study.project)  # the catalog's paths are relative to the project
    bootstrap_project(trained_study.project)
    with KedroSession.create(
        project_path=trained_study.project, runtime_params=TRAINED_STUDY
    ) as session:
        context = session.load_context()
        catalog, params = context.catalog, context.params
        evaluation = params["reconstruction_eval"]
        test_pairs = catalog.load("test_pairs")
        processor = catalog.load("processor")
        answers = heima_answers_node(
            catalog.load("cot_model"),
            processor,
            catalog.load("stage_4.adapter"),
            test_pairs,
            catalog.load("encoder_images"),
            TOKENS,
            evaluation,
        )
        assert len(answers) == EVALUATED_PAIRS
        spans = thinking_spans_node(answers, processor, TOKENS)
        records = reconstruct_stage_node(
            catalog.load("decoder_base@model"),
            catalog.load("decoder_tokenizer"),
            catalog.load("decoder_caption.adapter"),
            spans,
            test_pairs,
            TOKENS,
            evaluation,
            params["decoder_training"]["decoder_caption"]["target"],
        )
    assert len(records) == 3 * EVALUATED_PAIRS
    assert set(records["condition"]) == {"real", "shuffled", "zeros"}
    failed = sum(isinstance(span, str) for span in spans["caption"])
    assert records["span_failure"].notna().sum() == 3 * failed
    assert set(records["reference"]) <= set(test_pairs["caption"])
