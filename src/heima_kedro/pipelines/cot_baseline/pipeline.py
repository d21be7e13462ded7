"""Wiring of ``cot_baseline``: tokenizer → tiny models → stage-0 training (tagged
``tiny_models``: an environment whose stage 0 is a published model skips them) → evaluation."""

from kedro.pipeline import Node, Pipeline

from .nodes import (
    build_models_node,
    evaluate_cot_baseline_node,
    plot_cot_baseline_curves_node,
    train_cot_baseline_node,
    train_tokenizer_node,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                func=train_tokenizer_node,
                inputs=["train_pairs", "params:model_factory", "params:data_prep.thinking.tokens"],
                outputs="tokenizer",
                name="train_tokenizer_node",
                tags=["tiny_models"],
            ),
            Node(
                func=build_models_node,
                inputs=["tokenizer", "params:model_factory"],
                outputs=["processor", "encoder_init", "decoder_base@model"],
                name="build_models_node",
                tags=["tiny_models"],
            ),
            Node(
                func=train_cot_baseline_node,
                inputs=[
                    "encoder_init",
                    "processor",
                    "train_pairs",
                    "encoder_images",
                    "params:cot_baseline.stage_0",
                    "cot_baseline_checkpoints",
                    "cot_baseline_live_metrics",
                ],
                outputs=["cot_model", "cot_baseline_loss"],
                name="train_cot_baseline_node",
                tags=["tiny_models"],
            ),
            Node(
                func=evaluate_cot_baseline_node,
                inputs=[
                    "cot_model",
                    "processor",
                    "test_pairs",
                    "encoder_images",
                    "params:cot_baseline.evaluation",
                ],
                outputs=["cot_baseline_evaluation", "cot_baseline_predictions"],
                name="evaluate_cot_baseline_node",
            ),
            Node(
                func=plot_cot_baseline_curves_node,
                inputs="cot_baseline_loss",
                outputs="cot_baseline_curves",
                name="plot_cot_baseline_curves_node",
                tags=["tiny_models"],
            ),
        ],
        tags=["cot_baseline"],
    )
