"""Wiring of ``encoder_training``: one stage pipeline, instantiated four times by namespace.

stage_1 (compress_summary) → stage_2 (compress_summary_caption) → stage_3 (compress_all) →
stage_4 (compress_all, consolidation); each starts from the previous stage's adapter.
"""

from kedro.pipeline import Node, Pipeline

from .nodes import (
    evaluate_heima_encoder_node,
    init_encoder_adapter_node,
    plot_encoder_curves_node,
    train_encoder_stage_node,
)

STAGES = ("stage_1", "stage_2", "stage_3", "stage_4")
_SHARED_INPUTS = {"cot_model", "processor", "train_pairs", "encoder_images"}


def _stage() -> Pipeline:
    return Pipeline(
        [
            Node(
                func=train_encoder_stage_node,
                inputs=["cot_model", "processor", "init_adapter", "train_pairs", "encoder_images", "params:stage"],
                outputs=["adapter", "loss"],
                name="train_encoder_stage_node",
            )
        ]
    )


def create_pipeline(**kwargs) -> Pipeline:
    init = Pipeline(
        [
            Node(
                func=init_encoder_adapter_node,
                inputs=["cot_model", "tokenizer", "params:encoder_training.lora", "params:data_prep.thinking.tokens"],
                outputs="encoder_initial_adapter",
                name="init_encoder_adapter_node",
            )
        ]
    )
    stages, previous = [], "encoder_initial_adapter"
    for stage in STAGES:
        stages.append(
            Pipeline(
                _stage(),
                namespace=stage,
                inputs={**{name: name for name in _SHARED_INPUTS}, "init_adapter": previous},
                parameters={"params:stage": f"params:encoder_training.{stage}"},
                tags=[stage],
            )
        )
        previous = f"{stage}.adapter"
    evaluate = Pipeline(
        [
            Node(
                func=evaluate_heima_encoder_node,
                inputs=[
                    "cot_model", "processor", previous, "test_pairs", "encoder_images",
                    "params:data_prep.thinking.tokens", "params:encoder_training.evaluation",
                ],
                outputs=["heima_encoder_evaluation", "heima_encoder_predictions"],
                name="evaluate_heima_encoder_node",
            )
        ]
    )
    plot = Pipeline(
        [
            Node(
                func=plot_encoder_curves_node,
                inputs=[f"{stage}.loss" for stage in STAGES],
                outputs="encoder_training_curves",
                name="plot_encoder_curves_node",
            )
        ]
    )
    return Pipeline([init, *stages, evaluate, plot], tags=["encoder_training"])
