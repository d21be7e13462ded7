"""Wiring of ``study_summary``: one node over the evaluation reports of the run."""

from kedro.pipeline import Node, Pipeline

from .nodes import study_summary_node


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                func=study_summary_node,
                inputs=[
                    "reconstruction_metrics",
                    "token_counts",
                    "no_cot_evaluation",
                    "answer_controls",
                    "thinking_probes",
                ],
                outputs=[
                    "study_summary",
                    "study_summary_markdown",
                    "study_summary_chart",
                    "study_summary_metrics",
                ],
                name="study_summary_node",
            )
        ],
        tags=["study_summary"],
    )
