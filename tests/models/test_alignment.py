"""Aligned stages on real tiny models: the decoders' loss reaches the encoder's adapter through
the hand-off and nowhere it should not, and at weight 0 an aligned stage trains the encoder
exactly as the paper's stage does."""

from functools import partial

import pandas as pd
import pytest
import torch
from peft import get_peft_model
from PIL import Image

from heima_kedro.data.cot import DEFAULT_THINKING_TOKENS as TOKENS
from heima_kedro.data.cot import THINKING_STAGES
from heima_kedro.models.alignment import AlignedEncoder, AlignmentConfig
from heima_kedro.models.compute import seeded
from heima_kedro.models.factory import build_tiny_decoder, build_tiny_encoder
from heima_kedro.models.generation import final_norm
from heima_kedro.models.handoff import HandoffConfig, HandoffDecoder, thinking_states
from heima_kedro.models.lora import LoraSettings, decoder_lora_config, encoder_lora_config
from heima_kedro.models.tokenizer import thinking_token_ids
from heima_kedro.training.loop import TrainConfig, _enable_activation_checkpointing, train
from heima_kedro.training.stages import StageConfig, _checkpoint
from heima_kedro.training.trainables import AlignedTrainable, EncoderTrainable
from tiny import ENCODER, WIDE_DECODER


def _images(pairs: pd.DataFrame) -> dict:
    return {row.image: partial(Image.open, row.image_path) for row in pairs.itertuples()}


def _encoder(tokenizer):
    ids = thinking_token_ids(tokenizer, TOKENS)
    with seeded(0):
        return get_peft_model(
            build_tiny_encoder(config=ENCODER, tokenizer=tokenizer),
            encoder_lora_config(
                settings=LoraSettings(r=2, alpha=4), thinking_token_ids=list(ids.values())
            ),
        )


def _aligned(tokenizer, *, weight: float, stages=THINKING_STAGES) -> AlignedEncoder:
    ids = thinking_token_ids(tokenizer, TOKENS)
    decoders = {}
    for stage in stages:
        with seeded(1):
            decoder = get_peft_model(
                build_tiny_decoder(config=WIDE_DECODER, tokenizer=tokenizer),
                decoder_lora_config(settings=LoraSettings(r=2, alpha=4)),
            )
            handoff = HandoffConfig(
                encoder_width=ENCODER.hidden_size,
                decoder_width=WIDE_DECODER.hidden_size,
                token_id=ids[stage],
            )
            projection = handoff.projection()
        decoders[stage] = HandoffDecoder(
            decoder=decoder, projection=projection, token_id=ids[stage]
        )
    return AlignedEncoder(
        encoder=_encoder(tokenizer), decoders=decoders, thinking_ids=ids, weight=weight
    )


def _trainable(model, pairs, processor, tokenizer, pairs_per_batch=None) -> AlignedTrainable:
    return AlignedTrainable(
        model=model,
        processor=processor,
        images=_images(pairs),
        tokenizer=tokenizer,
        decoder_max_length=256,
        pairs_per_batch=pairs_per_batch,
    )


def test_the_decoders_loss_reaches_the_encoder_through_the_emitting_states_only(
    compressed_pairs, processor, tokenizer
):
    pairs = compressed_pairs
    model = _aligned(tokenizer, weight=1.0, stages=("caption",))
    trainable = _trainable(model, pairs, processor, tokenizer)
    samples = trainable.samples(pairs, target="compress_all", max_length=256)
    batch = trainable.collate()([samples[i] for i in range(3)])
    output = model(**{key: value for key, value in batch.items() if key != "labels"})
    output.alignment_loss.backward()  # the decoders' loss alone

    trained = {name: p for name, p in model.named_parameters() if p.requires_grad}
    assert all(p.grad is None for p in model.parameters() if not p.requires_grad)
    lora = [p.grad for name, p in trained.items() if name.startswith("encoder.") and "lora" in name]
    assert any(grad is not None and grad.abs().sum() > 0 for grad in lora)
    assert any(
        p.grad is not None and p.grad.abs().sum() > 0
        for name, p in trained.items()
        if name.startswith("decoders.caption.")
    )
    # The thinking tokens' rows (sorted ids, as the adapter holds them): the head's rows never
    # see the emitting state's gradient, and of the embedding's only the summary token, which
    # comes before the caption's emitting position, does; the caption's and reasoning's own
    # rows come at and after it.
    ids = thinking_token_ids(tokenizer, TOKENS)
    row = {stage: sorted(ids.values()).index(ids[stage]) for stage in THINKING_STAGES}
    (head,) = [p for name, p in trained.items() if "lm_head" in name and "trainable_tokens" in name]
    assert head.grad is None or not head.grad.any()
    (embed,) = [p for name, p in trained.items() if "embed_tokens" in name and "trainable" in name]
    assert embed.grad[row["summary"]].abs().sum() > 0
    assert not embed.grad[row["caption"]].any() and not embed.grad[row["reasoning"]].any()


def test_decoders_reading_some_of_a_batchs_pairs_get_those_pairs_own_states(
    compressed_pairs, processor, tokenizer
):
    pairs = compressed_pairs
    model = _aligned(tokenizer, weight=1.0, stages=("caption",)).eval()
    few = _trainable(model, pairs, processor, tokenizer, pairs_per_batch=2)
    samples = few.samples(pairs, target="compress_all", max_length=256)
    batch = few.collate()([samples[i] for i in (2, 0, 3, 1)])
    assert batch["decoder_rows"].tolist() == [0, 2]  # spread over the length-sorted batch
    assert len(batch["decoders"]["caption"]["input_ids"]) == 2
    read = []
    model.decoders["caption"].register_forward_pre_hook(
        lambda _module, _args, kwargs: read.extend(kwargs["thinking_states"]), with_kwargs=True
    )
    emitted = []
    final_norm(model.encoder).register_forward_hook(lambda *hook: emitted.append(hook[-1]))
    with torch.no_grad():
        model(**{key: value for key, value in batch.items() if key != "labels"})
    every_pair = thinking_states(
        hidden_states=emitted[0],
        input_ids=batch["input_ids"],
        token_id=thinking_token_ids(tokenizer, TOKENS)["caption"],
    )
    assert len(read) == 2
    for got, expected in zip(read, [every_pair[0], every_pair[2]], strict=True):
        torch.testing.assert_close(got, expected)


def test_at_weight_0_an_aligned_stage_trains_the_encoder_as_the_paper_does(
    compressed_pairs, processor, tokenizer
):
    pairs = compressed_pairs
    config = TrainConfig(lr=1e-2, warmup_steps=1, max_steps=3, batch_size=2, seed=5)
    plain = _encoder(tokenizer)
    plain_result = train(
        model=plain,
        samples=EncoderTrainable(model=plain, processor=processor, images=_images(pairs)).samples(
            pairs, target="compress_all", max_length=256
        ),
        collate_fn=EncoderTrainable(model=plain, processor=processor, images={}).collate(),
        config=config,
    )
    aligned = _aligned(tokenizer, weight=0.0)
    trainable = _trainable(aligned, pairs, processor, tokenizer)
    aligned_result = train(
        model=aligned,
        samples=trainable.samples(pairs, target="compress_all", max_length=256),
        collate_fn=trainable.collate(),
        config=config,
    )
    assert aligned_result.losses == plain_result.losses
    weights = dict(aligned.encoder.named_parameters())
    changed = 0
    for name, weight in plain.named_parameters():
        assert torch.equal(weight, weights[name]), name
        changed += weight.requires_grad
    assert changed  # the encoder's adapter trained in both


def test_alignment_settings_are_checked_and_pick_the_compressed_stages():
    assert not AlignmentConfig().enabled
    config = AlignmentConfig.from_params({"weight": 0.5, "decoders": ["caption", "reasoning"]})
    assert config.stages_of("compress_summary") == ()
    assert config.stages_of("compress_summary_caption") == ("caption",)
    assert config.stages_of("compress_all") == ("caption", "reasoning")
    for bad, match in (
        ({"weight": -1}, "weight"),
        ({"decoders": ["conclusion"]}, "decoders"),
        ({"max_length": 0}, "max_length"),
        ({"pairs_per_batch": 0}, "pairs_per_batch"),
        ({"lr": 1}, "unknown alignment parameters"),
    ):
        with pytest.raises(ValueError, match=match):
            AlignmentConfig.from_params(bad)


def test_a_checkpoint_of_other_alignment_settings_is_not_resumed(
    tmp_path, compressed_pairs, processor, tokenizer
):
    stage = StageConfig.from_params(
        {
            "target": "compress_all",
            "max_length": 256,
            "train": {"max_steps": 2},
            "checkpoint": {"every": 1},
        }
    )
    prints = {
        weight: _checkpoint(
            trainable=_trainable(
                _aligned(tokenizer, weight=weight), compressed_pairs, processor, tokenizer
            ),
            pairs=compressed_pairs,
            stage=stage,
            checkpoints=tmp_path,
        ).fingerprint
        for weight in (0.5, 1.0)
    }
    assert prints[0.5] != prints[1.0]  # the same starting weights, seeded alike


def test_activation_checkpointing_reaches_the_decoders_too(tokenizer):
    model = _aligned(tokenizer, weight=1.0, stages=("caption",))
    _enable_activation_checkpointing(model)
    assert model.encoder.get_base_model().is_activation_checkpointing
    assert model.decoders["caption"].get_base_model().is_activation_checkpointing
