"""Wiring of ``data_prep``: parse → check images → build targets → split → report."""

from kedro.pipeline import Node, Pipeline

from .nodes import (
    build_targets_node,
    check_images_node,
    parse_conversations_node,
    report_node,
    split_pairs_node,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                func=parse_conversations_node,
                inputs=["raw_conversations", "params:data_prep"],
                outputs=["parsed_pairs", "parse_drops", "read_stats"],
                name="parse_conversations_node",
            ),
            Node(
                func=check_images_node,
                inputs=["parsed_pairs", "params:data_prep"],
                outputs=["usable_pairs", "image_drops"],
                name="check_images_node",
            ),
            Node(
                func=build_targets_node,
                inputs=["usable_pairs", "params:data_prep"],
                outputs="prepared_pairs",
                name="build_targets_node",
            ),
            Node(
                func=split_pairs_node,
                inputs=["prepared_pairs", "params:data_prep"],
                outputs=["train_pairs", "test_pairs"],
                name="split_pairs_node",
            ),
            Node(
                func=report_node,
                inputs=[
                    "read_stats",
                    "parse_drops",
                    "image_drops",
                    "prepared_pairs",
                    "train_pairs",
                    "test_pairs",
                    "params:data_prep",
                ],
                outputs=["data_quality_report", "dropped_pairs"],
                name="report_node",
            ),
        ],
        tags=["data_prep"],
    )
