"""Wiring of ``no_cot_baseline``: its stage parameters (steps of stages 1–4) → training from the
stage-0 model → evaluation on the test pairs."""

from kedro.pipeline import Node, Pipeline

from .nodes import evaluate_no_cot_node, no_cot_stage_node, train_no_cot_node


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                func=no_cot_stage_node,
                inputs=["params:no_cot_baseline", "params:encoder_training", "train_pairs"],
                outputs="no_cot_stage",
                name="no_cot_stage_node",
            ),
            Node(
                func=train_no_cot_node,
                inputs=[
                    "cot_model",
                    "processor",
                    "train_pairs",
                    "encoder_images",
                    "params:encoder_training.lora",
                    "params:data_prep.thinking.tokens",
                    "no_cot_stage",
                    "no_cot.checkpoints",
                    "no_cot.live_metrics",
                ],
                outputs=["no_cot.adapter", "no_cot.loss"],
                name="train_no_cot_node",
            ),
            Node(
                func=evaluate_no_cot_node,
                inputs=[
                    "cot_model",
                    "processor",
                    "no_cot.adapter",
                    "test_pairs",
                    "encoder_images",
                    "params:no_cot_baseline.evaluation",
                ],
                outputs=["no_cot_evaluation", "no_cot_predictions"],
                name="evaluate_no_cot_node",
            ),
        ],
        tags=["no_cot_baseline"],
    )
