"""Wiring of ``compare``: MLflow runs → comparison table → Markdown and plot. An analysis over
finished runs, so it is left out of ``__default__`` (and of MLflow tracking, see mlflow.yml)."""

from kedro.pipeline import Node, Pipeline

from .nodes import compare_runs_node, comparison_markdown_node, plot_comparison_node


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                func=compare_runs_node,
                inputs=["mlflow_runs", "params:compare"],
                outputs="run_comparison_table",
                name="compare_runs_node",
            ),
            Node(
                func=comparison_markdown_node,
                inputs=["run_comparison_table", "params:compare"],
                outputs="run_comparison_markdown",
                name="write_comparison_markdown_node",
            ),
            Node(
                func=plot_comparison_node,
                inputs=["run_comparison_table", "params:compare"],
                outputs="run_comparison_plot",
                name="plot_comparison_node",
            ),
        ],
        tags=["compare"],
    )
