"""Wiring of ``decoder_training``: the frozen stage-4 encoder's thinking states, then one decoder
pipeline instantiated three times by namespace (decoder_summary, decoder_caption,
decoder_reasoning, each reading ``decoder_training.<namespace>``), each from the decoder base,
then their loss curves."""

from kedro.pipeline import Node, Pipeline

from heima_kedro.data.cot import THINKING_STAGES
from heima_kedro.pipelines.reuse import over_namespaces, per_namespace

from .nodes import encode_thinking_states_node, plot_decoder_curves_node, train_decoder_node

DECODERS = tuple(f"decoder_{stage}" for stage in THINKING_STAGES)


def _decoder() -> Pipeline:
    return Pipeline(
        [
            Node(
                func=train_decoder_node,
                inputs=[
                    "decoder_base@model",
                    "decoder_tokenizer",
                    "stage_4.adapter",
                    "decoder_thinking_states",
                    "train_pairs",
                    "params:data_prep.thinking.tokens",
                    "params:decoder_training.lora",
                    "params:decoder_training.torch_threads",
                    "params:stage",
                    "checkpoints",
                    "live_metrics",
                ],
                outputs=["adapter", "loss"],
                name="train_decoder_node",
            )
        ]
    )


def create_pipeline(**kwargs) -> Pipeline:
    states = Pipeline(
        [
            Node(
                func=encode_thinking_states_node,
                inputs=[
                    "cot_model",
                    "processor",
                    "stage_4.adapter",
                    "train_pairs",
                    "encoder_images",
                    "params:data_prep.thinking.tokens",
                    "params:decoder_training.states",
                    "params:decoder_training.torch_threads",
                ],
                outputs="decoder_thinking_states",
                name="encode_thinking_states_node",
            )
        ]
    )
    decoders = per_namespace(
        _decoder(),
        groups={decoder: f"decoder_training.{decoder}" for decoder in DECODERS},
        own=["checkpoints", "live_metrics"],
    )
    plot = over_namespaces(
        plot_decoder_curves_node,
        namespaces=DECODERS,
        dataset="loss",
        outputs="decoder_training_curves",
        name="plot_decoder_curves_node",
    )
    return Pipeline([states, *decoders, plot], tags=["decoder_training"])
