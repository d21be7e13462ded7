"""Wiring of ``decoder_training``: the frozen stage-4 encoder's thinking states, then one decoder
pipeline instantiated three times by namespace (decoder_summary, decoder_caption,
decoder_reasoning), each from the decoder base, then their loss curves."""

from kedro.pipeline import Node, Pipeline

from heima_kedro.cot import THINKING_STAGES

from .nodes import encode_thinking_states_node, plot_decoder_curves_node, train_decoder_node

DECODERS = tuple(f"decoder_{stage}" for stage in THINKING_STAGES)
_SHARED_INPUTS = {"decoder_base", "decoder_tokenizer", "decoder_thinking_states", "train_pairs"}


def _decoder() -> Pipeline:
    return Pipeline(
        [
            Node(
                func=train_decoder_node,
                inputs=[
                    "decoder_base", "decoder_tokenizer", "decoder_thinking_states", "train_pairs",
                    "params:data_prep.thinking.tokens", "params:decoder_training.lora", "params:decoder",
                    "params:decoder_training.torch_threads",
                ],
                outputs=["decoder_adapter", "decoder_loss"],
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
                    "cot_model", "processor", "stage_4.adapter", "train_pairs", "encoder_images",
                    "params:data_prep.thinking.tokens", "params:decoder_training.encoder",
                    "params:decoder_training.torch_threads",
                ],
                outputs="decoder_thinking_states",
                name="encode_thinking_states_node",
            )
        ]
    )
    decoders = [
        Pipeline(
            _decoder(),
            namespace=namespace,
            inputs={name: name for name in _SHARED_INPUTS},
            parameters={
                "params:decoder": f"params:decoder_training.{stage}",
                "params:data_prep.thinking.tokens": "params:data_prep.thinking.tokens",
                "params:decoder_training.lora": "params:decoder_training.lora",
                "params:decoder_training.torch_threads": "params:decoder_training.torch_threads",
            },
            tags=[namespace],
        )
        for stage, namespace in zip(THINKING_STAGES, DECODERS, strict=True)
    ]
    plot = Pipeline(
        [
            Node(
                func=plot_decoder_curves_node,
                inputs=[f"{namespace}.decoder_loss" for namespace in DECODERS],
                outputs="decoder_training_curves",
                name="plot_decoder_curves_node",
            )
        ]
    )
    return Pipeline([states, *decoders, plot], tags=["decoder_training"])
