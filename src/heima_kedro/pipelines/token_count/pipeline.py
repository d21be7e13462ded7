"""Wiring of ``token_count``: both models answer the same test questions, timed; one report."""

from kedro.pipeline import Node, Pipeline

from .nodes import cot_token_counts_node, heima_token_counts_node, token_count_report_node


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                func=cot_token_counts_node,
                inputs=[
                    "cot_model",
                    "processor",
                    "test_pairs",
                    "encoder_images",
                    "params:token_count",
                ],
                outputs="cot_token_counts",
                name="cot_token_counts_node",
            ),
            Node(
                func=heima_token_counts_node,
                inputs=[
                    "cot_model",
                    "processor",
                    "stage_4.adapter",
                    "test_pairs",
                    "encoder_images",
                    "params:token_count",
                ],
                outputs="heima_token_counts",
                name="heima_token_counts_node",
            ),
            Node(
                func=token_count_report_node,
                inputs=["cot_token_counts", "heima_token_counts", "params:token_count"],
                outputs=[
                    "token_counts",
                    "token_count_records",
                    "token_count_chart",
                    "token_count_metrics",
                ],
                name="token_count_report_node",
            ),
        ],
        tags=["token_count"],
    )
