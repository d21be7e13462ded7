"""The tiny sizes every test builds its models with, and the runtime parameters that shrink the
study to seconds: one place, so a test never carries its own copy of the factory's fields."""

from __future__ import annotations

from dataclasses import asdict, replace

from heima_kedro.models.factory import TinyDecoderConfig, TinyEncoderConfig

#: Smaller still than the study's default, so a test's model builds and trains in about a second.
ENCODER = TinyEncoderConfig(
    hidden_size=32,
    layers=3,
    heads=2,
    kv_heads=1,
    intermediate_size=64,
    cross_attention_layers=(1,),
    vision_hidden_size=16,
    vision_layers=1,
    vision_global_layers=1,
    vision_heads=2,
    vision_intermediate_size=32,
    image_size=32,
    patch_size=8,
)
DECODER = TinyDecoderConfig(hidden_size=32, layers=2, heads=2, kv_heads=1, intermediate_size=64)
#: Wider than ``ENCODER``, so the hand-off goes through a learned projection.
WIDE_DECODER = replace(DECODER, hidden_size=48)
VOCAB_SIZE = 400

#: Every tiny study's ShapesCoT records.
SHAPES_RECORDS = 40
DECODERS = ("decoder_summary", "decoder_caption", "decoder_reasoning")
ENCODER_STAGES = ("stage_1", "stage_2", "stage_3", "stage_4")


def factory_params(
    *, encoder: TinyEncoderConfig = ENCODER, decoder: TinyDecoderConfig = DECODER
) -> dict:
    """``model_factory`` runtime parameters building these sizes."""

    def lists(config: object) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(config).items()}

    return {
        "encoder": lists(encoder),
        "decoder": lists(decoder),
        "tokenizer": {"vocab_size": VOCAB_SIZE},
    }


def _train(max_steps: int, batch_size: int, *, warmup_steps: int = 1, **more: object) -> dict:
    return {
        "train": {
            "max_steps": max_steps,
            "batch_size": batch_size,
            "warmup_steps": warmup_steps,
            **more,
        }
    }


#: Runtime parameters that shrink the study (data, models, steps) to a few seconds.
TINY_STUDY = {
    "synthetic_data": {"n_records": SHAPES_RECORDS},
    "model_factory": factory_params(),
    "cot_baseline": {
        "stage_0": _train(3, 4),
        "evaluation": {"limit": 4, "decoding": {"max_new_tokens": 8}},
    },
    "encoder_training": {
        **{stage: _train(2, 4) for stage in ENCODER_STAGES},
        "lora": {"r": 2, "alpha": 4},
        "evaluation": {"limit": 4, "decoding": {"max_new_tokens": 8}},
    },
}

#: Pairs each evaluation of the trained study answers.
EVALUATED_PAIRS = 6
STAGE_3_STEPS = 300
DECODER_STEPS = 12

#: The tiny study trained just far enough for its Heima Encoder to answer in the Heima format (a
#: wider encoder, a longer stage 3), through every pipeline of the study; its decoder (32) is
#: narrower than its encoder (64), so the hand-off goes through a projection.
TRAINED_STUDY = {
    **TINY_STUDY,
    "model_factory": factory_params(
        encoder=replace(ENCODER, hidden_size=64, heads=4, kv_heads=2, intermediate_size=128)
    ),
    "cot_baseline": {
        "stage_0": _train(60, 8, warmup_steps=2),
        "evaluation": {"limit": 4, "decoding": {"max_new_tokens": 8}},
    },
    "encoder_training": {
        **TINY_STUDY["encoder_training"],
        "stage_3": _train(STAGE_3_STEPS, 8, warmup_steps=2, lr=1.0e-2),
        "lora": {"r": 8, "alpha": 16},
        "evaluation": {"limit": 4, "decoding": {"max_new_tokens": 40}},
    },
    "decoder_training": {
        "states": {"batch_size": 16},
        "lora": {"r": 4, "alpha": 8},
        **{decoder: _train(DECODER_STEPS, 8, warmup_steps=2) for decoder in DECODERS},
    },
    "reconstruction_eval": {
        "limit": EVALUATED_PAIRS,
        "encoder_decoding": {"max_new_tokens": 40},
        "cot_decoding": {"max_new_tokens": 12},
        "decoder_decoding": {"max_new_tokens": 6},
    },
    # As many optimiser steps as stages 1–4 (306), at the stage-3 batch and learning rate.
    "no_cot_baseline": {
        "stage": {"train": {"batch_size": 8, "warmup_steps": 2, "lr": 1.0e-2}},
        "evaluation": {"limit": EVALUATED_PAIRS, "decoding": {"max_new_tokens": 16}},
    },
    "thinking_controls": {
        "limit": EVALUATED_PAIRS,
        "decoding": {"max_new_tokens": 40},
        "probes": {"fit_limit": 48, "batch_size": 16},
    },
    "token_count": {"limit": 3, "decoding": {"max_new_tokens": 64}},
    # As reconstruction_eval's, so both answer the same pairs the same way.
    "zero_shot_eval": {
        "limit": EVALUATED_PAIRS,
        "heima_decoding": {"max_new_tokens": 40},
        "cot_decoding": {"max_new_tokens": 12},
    },
}
