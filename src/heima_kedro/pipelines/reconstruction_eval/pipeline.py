"""Wiring of ``reconstruction_eval``: both models answer the test questions; the Heima answers'
thinking spans feed one reconstruct-and-score pipeline instantiated per stage by namespace
(reconstruction_summary, _caption, _reasoning, each reading the decoder of its stage); then the
conclusions are scored and everything goes into one report."""

from kedro.pipeline import Node, Pipeline

from heima_kedro.data.cot import THINKING_STAGES
from heima_kedro.pipelines.reuse import per_namespace

from .nodes import (
    build_scorer_node,
    cot_answers_node,
    heima_answers_node,
    reconstruct_stage_node,
    reconstruction_report_node,
    score_conclusions_node,
    score_stage_node,
    thinking_spans_node,
)


def _stage() -> Pipeline:
    return Pipeline(
        [
            Node(
                func=reconstruct_stage_node,
                inputs=[
                    "decoder_base@model",
                    "decoder_tokenizer",
                    "decoder_adapter",
                    "heima_thinking_spans",
                    "test_pairs",
                    "params:data_prep.thinking.tokens",
                    "params:reconstruction_eval",
                    "params:stage",
                ],
                outputs="reconstructions",
                name="reconstruct_stage_node",
            ),
            Node(
                func=score_stage_node,
                inputs=["reconstructions", "text_scorer"],
                outputs="scored_reconstructions",
                name="score_stage_node",
            ),
        ]
    )


def create_pipeline(**kwargs) -> Pipeline:
    answers = Pipeline(
        [
            Node(
                func=heima_answers_node,
                inputs=[
                    "cot_model",
                    "processor",
                    "stage_4.adapter",
                    "test_pairs",
                    "encoder_images",
                    "params:data_prep.thinking.tokens",
                    "params:reconstruction_eval",
                ],
                outputs="heima_answers",
                name="heima_answers_node",
            ),
            Node(
                func=cot_answers_node,
                inputs=[
                    "cot_model",
                    "processor",
                    "test_pairs",
                    "encoder_images",
                    "params:reconstruction_eval",
                ],
                outputs="cot_answers",
                name="cot_answers_node",
            ),
            Node(
                func=thinking_spans_node,
                inputs=["heima_answers", "processor", "params:data_prep.thinking.tokens"],
                outputs="heima_thinking_spans",
                name="thinking_spans_node",
            ),
            Node(
                func=build_scorer_node,
                inputs="params:reconstruction_eval",
                outputs="text_scorer",
                name="build_scorer_node",
            ),
        ]
    )
    # Each reconstruction reads the decoder of its stage, and the stage that decoder writes.
    stages = per_namespace(
        _stage(),
        groups={
            f"reconstruction_{stage}": f"decoder_training.decoder_{stage}.target"
            for stage in THINKING_STAGES
        },
        inputs=lambda namespace: {
            "decoder_adapter": f"decoder_{namespace.removeprefix('reconstruction_')}.adapter"
        },
    )
    report = Pipeline(
        [
            Node(
                func=score_conclusions_node,
                inputs=[
                    "heima_answers",
                    "cot_answers",
                    "test_pairs",
                    "text_scorer",
                    "params:reconstruction_eval",
                ],
                outputs="conclusion_records",
                name="score_conclusions_node",
            ),
            Node(
                func=reconstruction_report_node,
                inputs=[
                    *(
                        f"reconstruction_{stage}.scored_reconstructions"
                        for stage in THINKING_STAGES
                    ),
                    "conclusion_records",
                    "text_scorer",
                ],
                outputs=[
                    "reconstruction_metrics",
                    "reconstruction_records",
                    "reconstruction_eval_metrics",
                ],
                name="reconstruction_report_node",
            ),
        ]
    )
    return Pipeline([answers, *stages, report], tags=["reconstruction_eval"])
