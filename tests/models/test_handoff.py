"""The hidden-state hand-off on real tiny models: which encoder position feeds which decoder
position, what is frozen and what learns, and ragged thinking-token counts across a batch."""

from functools import partial

import pandas as pd
import pytest
import torch
from peft import get_peft_model

from heima_kedro.data.cot import THINKING_STAGES
from heima_kedro.data.decoder_samples import decoder_chat
from heima_kedro.data.shapes_cot import ShapesCoTConfig, generate_shapes_cot
from heima_kedro.data.thinking import ThinkingConfig
from heima_kedro.models.adapters import AdapterWeights
from heima_kedro.models.batching import IGNORE_INDEX, collate, encode_encoder_sample
from heima_kedro.models.factory import build_processor, build_tiny_decoder, build_tiny_encoder
from heima_kedro.models.generation import DecodingConfig
from heima_kedro.models.handoff import (
    HandoffConfig,
    HandoffDecoder,
    encoder_thinking_states,
    inject,
    reconstruct,
    thinking_states,
    trained_decoder,
)
from heima_kedro.models.lora import LoraSettings, decoder_lora_config, encoder_lora_config
from heima_kedro.models.tokenizer import TokenizerConfig, train_tokenizer
from heima_kedro.training.samples import HandoffSamples, handoff_collate
from tiny import ENCODER
from tiny import WIDE_DECODER as DECODER  # wider than the encoder: a learned projection

TOKENS = ThinkingConfig().tokens
#: Thinking-token counts per pair: fixed k = 1 for some, ratio-mode counts 1..4 for others.
COUNTS = (1, 3, 1, 4, 2)


@pytest.fixture(scope="module")
def shapes():
    """(image, question, summary text) of a few ShapesCoT pairs, and a tokenizer trained on them."""
    records, images = generate_shapes_cot(config=ShapesCoTConfig(n_records=6, seed=3))
    pairs = []
    for record in records:
        question, answer = record["conversations"][0]["value"], record["conversations"][1]["value"]
        summary = answer.split("<SUMMARY>")[1].split("</SUMMARY>")[0].strip()
        pairs.append((images[record["image"].rsplit(".", 1)[0]], question, summary))
    texts = [text for _, question, summary in pairs for text in (question, summary)]
    return pairs[: len(COUNTS)], train_tokenizer(
        texts=texts, config=TokenizerConfig(vocab_size=500)
    )


@pytest.fixture(scope="module")
def encoder_batch(shapes):
    """Teacher-forced encoder batch whose pairs carry COUNTS summary tokens (and one of the
    other stages), as `compress_all` does."""
    pairs, tokenizer = shapes
    processor = build_processor(tokenizer=tokenizer, image_size=ENCODER.image_size)
    samples = [
        encode_encoder_sample(
            processor=processor,
            image=image,
            question=question,
            answer=(
                f"<SUMMARY> {TOKENS['summary'] * k} </SUMMARY> "
                f"<CAPTION> {TOKENS['caption']} </CAPTION> "
                f"<REASONING> {TOKENS['reasoning']} </REASONING> <CONCLUSION> yes. </CONCLUSION>"
            ),
        )
        for (image, question, _), k in zip(pairs, COUNTS, strict=True)
    ]
    return collate(samples, pad_token_id=tokenizer.pad_token_id)


@pytest.fixture
def encoder(shapes):
    """The stage-4 shape of the encoder: Mllama + LoRA whose parameters would be trainable."""
    _, tokenizer = shapes
    ids = [tokenizer.convert_tokens_to_ids(TOKENS[s]) for s in THINKING_STAGES]
    model = build_tiny_encoder(config=ENCODER, tokenizer=tokenizer)
    return get_peft_model(
        model, encoder_lora_config(settings=LoraSettings(r=2, alpha=4), thinking_token_ids=ids)
    )


def _handoff_decoder(tokenizer, *, token_id: int) -> HandoffDecoder:
    torch.manual_seed(0)
    decoder = get_peft_model(
        build_tiny_decoder(config=DECODER, tokenizer=tokenizer),
        decoder_lora_config(settings=LoraSettings(r=2, alpha=4)),
    )
    config = HandoffConfig(
        encoder_width=ENCODER.hidden_size, decoder_width=DECODER.hidden_size, token_id=token_id
    )
    return HandoffDecoder(decoder=decoder, projection=config.projection(), token_id=token_id)


def _decoder_pairs(shapes) -> pd.DataFrame:
    """The summary stage's decoder samples with COUNTS thinking tokens, as data_prep writes them."""
    pairs, _ = shapes
    rows = []
    for index, ((_, question, summary), k) in enumerate(zip(pairs, COUNTS, strict=True)):
        user, assistant = decoder_chat(
            stage="summary",
            question=question,
            thinking=TOKENS["summary"] * k,
            stage_text=summary,
            question_template=index,
            answer_template=index,
        )
        rows.append(
            {"k_summary": k, "decoder_summary_user": user, "decoder_summary_assistant": assistant}
        )
    return pd.DataFrame(rows)


def test_thinking_states_take_the_position_before_each_thinking_token():
    hidden = torch.arange(2 * 6 * 3, dtype=torch.float).reshape(2, 6, 3)  # every position distinct
    ids = torch.tensor([[1, 2, 9, 9, 3, 0], [1, 9, 2, 3, 9, 0]])
    first, second = thinking_states(hidden_states=hidden, input_ids=ids, token_id=9)
    assert torch.equal(first, hidden[0, [1, 2]])  # not [2, 3], the thinking tokens' own positions
    assert torch.equal(second, hidden[1, [0, 3]])


def test_inject_replaces_exactly_the_thinking_positions_in_order():
    embeds = torch.randn(2, 5, 4)
    ids = torch.tensor([[1, 7, 7, 2, 0], [7, 3, 4, 5, 7]])
    states = [torch.randn(2, 4), torch.randn(2, 4)]
    out = inject(
        inputs_embeds=embeds,
        input_ids=ids,
        token_id=7,
        states=states,
        projection=torch.nn.Identity(),
    )
    assert torch.equal(out[0, [1, 2]], states[0]) and torch.equal(out[1, [0, 4]], states[1])
    untouched = ids != 7
    assert torch.equal(out[untouched], embeds[untouched])
    with pytest.raises(ValueError, match="sample 1 has 2 thinking-token positions but 1"):
        inject(
            inputs_embeds=embeds,
            input_ids=ids,
            token_id=7,
            states=[states[0], states[1][:1]],
            projection=torch.nn.Identity(),
        )
    with pytest.raises(ValueError, match="1 samples of thinking states for a batch of 2"):
        inject(
            inputs_embeds=embeds,
            input_ids=ids,
            token_id=7,
            states=states[:1],
            projection=torch.nn.Identity(),
        )


def test_projection_is_learned_only_when_widths_differ():
    assert isinstance(
        HandoffConfig(encoder_width=8, decoder_width=8, token_id=3).projection(), torch.nn.Identity
    )
    projection = HandoffConfig(encoder_width=8, decoder_width=16, token_id=3).projection()
    assert (projection.in_features, projection.out_features) == (8, 16)
    with pytest.raises(ValueError, match="decoder_width"):
        HandoffConfig(encoder_width=8, decoder_width=0, token_id=3)


def test_real_encoder_hands_off_the_post_norm_state_that_emits_each_thinking_token(
    shapes, encoder, encoder_batch
):
    """hidden_states[-1] is the final norm's output, and the state taken for a thinking token is
    the one at the position before it; the token's own position holds a different state."""
    _, tokenizer = shapes
    captured = {}
    norm = encoder.get_base_model().model.language_model.norm
    handle = norm.register_forward_hook(lambda module, args, output: captured.update(normed=output))
    try:
        states = encoder_thinking_states(
            encoder=encoder,
            batch=encoder_batch,
            token_ids={s: tokenizer.convert_tokens_to_ids(TOKENS[s]) for s in THINKING_STAGES},
        )
    finally:
        handle.remove()
    normed, ids = captured["normed"], encoder_batch["input_ids"]
    for stage in THINKING_STAGES:
        token_id = tokenizer.convert_tokens_to_ids(TOKENS[stage])
        for row, sample in enumerate(states[stage]):
            positions = (ids[row] == token_id).nonzero().flatten()
            assert torch.equal(sample, normed[row, positions - 1])
            assert not torch.allclose(sample, normed[row, positions], atol=1e-3)
    assert [len(sample) for sample in states["summary"]] == list(COUNTS)
    assert [len(sample) for sample in states["reasoning"]] == [1] * len(COUNTS)


def test_no_gradient_reaches_the_frozen_encoder_while_lora_and_projection_learn(
    shapes, encoder, encoder_batch
):
    _, tokenizer = shapes
    token_id = tokenizer.convert_tokens_to_ids(TOKENS["summary"])
    assert any(p.requires_grad for p in encoder.parameters())  # the LoRA would train if reached
    states = encoder_thinking_states(
        encoder=encoder, batch=encoder_batch, token_ids={"summary": token_id}
    )["summary"]
    samples = HandoffSamples(
        pairs=_decoder_pairs(shapes),
        stage="summary",
        states=states,
        tokenizer=tokenizer,
        max_length=256,
    )
    batch = handoff_collate(
        [samples[i] for i in range(len(samples))], pad_token_id=tokenizer.pad_token_id
    )
    model = _handoff_decoder(tokenizer, token_id=token_id).train()
    labels = batch.pop("labels")
    logits = model(**batch).logits
    torch.nn.functional.cross_entropy(
        logits[:, :-1].reshape(-1, logits.size(-1)),
        labels[:, 1:].reshape(-1),
        ignore_index=IGNORE_INDEX,
    ).backward()

    assert all(p.grad is None for p in encoder.parameters())
    assert encoder.training  # the encoder's mode is restored after its no-grad pass
    lora = [p for n, p in model.decoder.named_parameters() if "lora_" in n]
    assert lora and all(p.grad is not None for p in lora)
    assert any(p.grad.abs().sum() > 0 for p in lora)
    assert model.projection.weight.grad.abs().sum() > 0
    assert all(p.grad is None for n, p in model.decoder.named_parameters() if "lora_" not in n)


def test_ragged_thinking_counts_match_each_sample_alone(shapes, encoder, encoder_batch):
    """Pairs with 1..4 thinking tokens in one padded batch: each thinking position reads its own
    pair's states in order, and every sample's logits equal those of the sample run alone."""
    _, tokenizer = shapes
    token_id = tokenizer.convert_tokens_to_ids(TOKENS["summary"])
    states = encoder_thinking_states(
        encoder=encoder, batch=encoder_batch, token_ids={"summary": token_id}
    )["summary"]
    samples = HandoffSamples(
        pairs=_decoder_pairs(shapes),
        stage="summary",
        states=states,
        tokenizer=tokenizer,
        max_length=256,
    )
    collate_fn = partial(handoff_collate, pad_token_id=tokenizer.pad_token_id)
    batch = collate_fn([samples[i] for i in range(len(samples))])
    model = _handoff_decoder(tokenizer, token_id=token_id).eval()
    with torch.no_grad():
        logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
        embed = model.decoder.get_input_embeddings()
        for row in range(len(samples)):
            alone = collate_fn([samples[row]])
            n = alone["input_ids"].shape[1]
            # the hand-off written out by hand: the k-th thinking position gets the k-th state
            embeds = embed(alone["input_ids"]).clone()
            positions = (alone["input_ids"][0] == token_id).nonzero().flatten().tolist()
            assert len(positions) == COUNTS[row]
            for k, position in enumerate(positions):
                embeds[0, position] = model.projection(states[row][k])
            expected = model.decoder(
                inputs_embeds=embeds, attention_mask=alone["attention_mask"]
            ).logits
            assert torch.allclose(logits[row, :n], expected[0], atol=1e-5)
            if COUNTS[row] > 1:  # the states in another order give another output
                wrong = model(
                    input_ids=alone["input_ids"],
                    attention_mask=alone["attention_mask"],
                    thinking_states=[states[row].roll(1, dims=0)],
                ).logits
                assert not torch.allclose(wrong[0], expected[0], atol=1e-4)


def test_samples_refuse_states_that_do_not_match_the_thinking_counts(shapes):
    _, tokenizer = shapes
    pairs = _decoder_pairs(shapes)
    states = [torch.zeros(k, ENCODER.hidden_size) for k in COUNTS]
    states[3] = states[3][:2]
    with pytest.raises(ValueError, match="do not match k_summary, e.g. row 3: 2 states for k=4"):
        HandoffSamples(
            pairs=pairs, stage="summary", states=states, tokenizer=tokenizer, max_length=256
        )
    with pytest.raises(ValueError, match="4 thinking states for 5 pairs"):
        HandoffSamples(
            pairs=pairs, stage="summary", states=states[:4], tokenizer=tokenizer, max_length=256
        )


def test_reconstruction_in_a_batch_equals_one_at_a_time_and_reads_the_states(shapes):
    """Left-padded, KV-cached decoder generation gives each prompt the tokens it gets alone, and
    a trained decoder loaded back (LoRA merged, projection from the saved weights) generates
    differently when its states change."""
    pairs, tokenizer = shapes
    token_id = tokenizer.convert_tokens_to_ids(TOKENS["summary"])
    model = _handoff_decoder(tokenizer, token_id=token_id)
    with torch.no_grad():  # a LoRA that is not the identity, so merging it matters
        for name, param in model.decoder.named_parameters():
            if "lora_B" in name:
                param.normal_(std=0.5)
    adapter = AdapterWeights.from_model(
        model.decoder,
        extra={f"projection.{k}": v for k, v in model.projection.state_dict().items()},
    )
    config = HandoffConfig(
        encoder_width=ENCODER.hidden_size, decoder_width=DECODER.hidden_size, token_id=token_id
    )
    base = build_tiny_decoder(config=DECODER, tokenizer=tokenizer)
    loaded = trained_decoder(decoder_base=base, adapter=adapter, config=config)
    users = [_decoder_pairs(shapes).at[i, "decoder_summary_user"] for i in range(len(COUNTS))]
    states = [
        torch.randn(k, ENCODER.hidden_size, generator=torch.Generator().manual_seed(k))
        for k in COUNTS
    ]
    decoding = DecodingConfig(max_new_tokens=6, batch_size=len(COUNTS))
    batched = reconstruct(
        decoder=loaded, tokenizer=tokenizer, users=users, states=states, decoding=decoding
    )
    single = [
        reconstruct(
            decoder=loaded,
            tokenizer=tokenizer,
            users=[u],
            states=[s],
            decoding=DecodingConfig(max_new_tokens=6, batch_size=1),
        )[0]
        for u, s in zip(users, states, strict=True)
    ]
    assert batched == single
    with torch.no_grad():  # the merged model computes what the unmerged one does
        ids = tokenizer(users[0], return_tensors="pt").input_ids
        mask = torch.ones_like(ids)
        torch.testing.assert_close(
            loaded(input_ids=ids, attention_mask=mask, thinking_states=states[:1]).logits,
            model.eval()(input_ids=ids, attention_mask=mask, thinking_states=states[:1]).logits,
            atol=1e-4,
            rtol=1e-4,
        )
    scaled = reconstruct(
        decoder=loaded,
        tokenizer=tokenizer,
        users=users,
        states=[s * 50 for s in states],
        decoding=decoding,
    )
    assert scaled != batched


def test_trained_decoder_refuses_projection_weights_of_another_width(shapes):
    _, tokenizer = shapes
    token_id = tokenizer.convert_tokens_to_ids(TOKENS["summary"])
    model = _handoff_decoder(tokenizer, token_id=token_id)
    adapter = AdapterWeights.from_model(
        model.decoder,
        extra={"projection.weight": torch.zeros(48, 7), "projection.bias": torch.zeros(48)},
    )
    config = HandoffConfig(
        encoder_width=ENCODER.hidden_size, decoder_width=DECODER.hidden_size, token_id=token_id
    )
    with pytest.raises(RuntimeError, match="size mismatch"):
        trained_decoder(
            decoder_base=build_tiny_decoder(config=DECODER, tokenizer=tokenizer),
            adapter=adapter,
            config=config,
        )
