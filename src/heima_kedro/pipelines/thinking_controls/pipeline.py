"""Wiring of ``thinking_controls``: the answer-level controls and the probes, both on the stage-4
encoder; they share no intermediate data."""

from kedro.pipeline import Node, Pipeline

from .nodes import answer_controls_node, probe_thinking_states_node


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                func=answer_controls_node,
                inputs=[
                    "cot_model",
                    "processor",
                    "stage_4.adapter",
                    "test_pairs",
                    "encoder_images",
                    "params:data_prep.thinking.tokens",
                    "params:thinking_controls",
                ],
                outputs=["answer_controls", "answer_control_records"],
                name="answer_controls_node",
            ),
            Node(
                func=probe_thinking_states_node,
                inputs=[
                    "cot_model",
                    "processor",
                    "stage_4.adapter",
                    "train_pairs",
                    "test_pairs",
                    "encoder_images",
                    "params:data_prep.thinking.tokens",
                    "params:synthetic_data",
                    "params:thinking_controls",
                ],
                outputs="thinking_probes",
                name="probe_thinking_states_node",
            ),
        ],
        tags=["thinking_controls"],
    )
