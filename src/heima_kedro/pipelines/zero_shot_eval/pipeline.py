"""Wiring of ``zero_shot_eval``: the local task, the benchmarks checked, both models on them,
one report."""

from kedro.pipeline import Node, Pipeline

from .nodes import (
    check_benchmarks_node,
    cot_zero_shot_node,
    heima_zero_shot_node,
    test_pairs_task_node,
    zero_shot_report_node,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                func=test_pairs_task_node,
                inputs=["test_pairs", "params:zero_shot_eval"],
                outputs="heima_test_pairs_task",
                name="test_pairs_task_node",
            ),
            Node(
                func=check_benchmarks_node,
                inputs=["heima_test_pairs_task", "params:zero_shot_eval"],
                outputs="zero_shot_benchmarks",
                name="check_benchmarks_node",
            ),
            Node(
                func=cot_zero_shot_node,
                inputs=["cot_model", "processor", "zero_shot_benchmarks", "heima_test_pairs_task"],
                outputs=["cot_zero_shot_scores", "cot_zero_shot_records"],
                name="cot_zero_shot_node",
            ),
            Node(
                func=heima_zero_shot_node,
                inputs=[
                    "cot_model",
                    "processor",
                    "stage_4.adapter",
                    "zero_shot_benchmarks",
                    "heima_test_pairs_task",
                ],
                outputs=["heima_zero_shot_scores", "heima_zero_shot_records"],
                name="heima_zero_shot_node",
            ),
            Node(
                func=zero_shot_report_node,
                inputs=[
                    "cot_zero_shot_scores",
                    "cot_zero_shot_records",
                    "heima_zero_shot_scores",
                    "heima_zero_shot_records",
                    "zero_shot_benchmarks",
                ],
                outputs=[
                    "zero_shot_table",
                    "zero_shot_table_markdown",
                    "zero_shot_chart",
                    "zero_shot_records",
                    "zero_shot_eval_metrics",
                ],
                name="zero_shot_report_node",
            ),
        ],
        tags=["zero_shot_eval"],
    )
