"""Wiring of ``synthetic_data``: parameters → ShapesCoT JSONL and images."""

from kedro.pipeline import Node, Pipeline

from .nodes import generate_shapes_cot_node


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                func=generate_shapes_cot_node,
                inputs="params:synthetic_data",
                outputs=["raw_conversations", "shapes_cot_images"],
                name="generate_shapes_cot_node",
            ),
        ],
        tags=["synthetic_data"],
    )
