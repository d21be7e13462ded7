"""Wiring of ``encoder_training``: one stage pipeline, instantiated four times by namespace.

stage_1 (compress_summary) → stage_2 (compress_summary_caption) → stage_3 (compress_all) →
stage_4 (compress_all, consolidation); each starts from the previous stage's adapter and reads
its parameters from ``encoder_training.<stage>``.
"""

from kedro.pipeline import Node, Pipeline

from heima_kedro.pipelines.reuse import over_namespaces, per_namespace

from .nodes import (
    evaluate_heima_encoder_node,
    init_encoder_adapter_node,
    plot_encoder_curves_node,
    train_encoder_stage_node,
)

STAGES = ("stage_1", "stage_2", "stage_3", "stage_4")


def _stage() -> Pipeline:
    return Pipeline(
        [
            Node(
                func=train_encoder_stage_node,
                inputs=[
                    "cot_model",
                    "processor",
                    "init_adapter",
                    "train_pairs",
                    "encoder_images",
                    "params:stage",
                    "checkpoints",
                    "live_metrics",
                    "params:encoder_training.alignment",
                    "decoder_base@lazy",
                    "decoder_tokenizer",
                    "params:decoder_training.lora",
                    "params:data_prep.thinking.tokens",
                ],
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
                inputs=[
                    "cot_model",
                    "tokenizer",
                    "params:encoder_training.lora",
                    "params:data_prep.thinking.tokens",
                ],
                outputs="encoder_initial_adapter",
                name="init_encoder_adapter_node",
            )
        ]
    )
    starts = dict(
        zip(
            STAGES,
            ["encoder_initial_adapter", *(f"{stage}.adapter" for stage in STAGES[:-1])],
            strict=True,
        )
    )
    stages = per_namespace(
        _stage(),
        groups={stage: f"encoder_training.{stage}" for stage in STAGES},
        own=["checkpoints", "live_metrics"],
        inputs=lambda stage: {"init_adapter": starts[stage]},
    )
    evaluate = Pipeline(
        [
            Node(
                func=evaluate_heima_encoder_node,
                inputs=[
                    "cot_model",
                    "processor",
                    f"{STAGES[-1]}.adapter",
                    "test_pairs",
                    "encoder_images",
                    "params:data_prep.thinking.tokens",
                    "params:encoder_training.evaluation",
                ],
                outputs=["heima_encoder_evaluation", "heima_encoder_predictions"],
                name="evaluate_heima_encoder_node",
            )
        ]
    )
    plot = over_namespaces(
        plot_encoder_curves_node,
        namespaces=STAGES,
        dataset="loss",
        outputs="encoder_training_curves",
        name="plot_encoder_curves_node",
    )
    return Pipeline([init, *stages, evaluate, plot], tags=["encoder_training"])
