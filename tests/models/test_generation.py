import pytest
import torch

from heima_kedro.data.cot import StageError
from heima_kedro.models.batching import encoder_prompt
from heima_kedro.models.generation import (
    DecodingConfig,
    Generation,
    generate_with_states,
    stage_thinking_states,
)


def _greedy_without_cache(model, processor, image, question, steps):
    prompt = encoder_prompt(processor=processor, question=question)
    inputs = processor(
        images=[[image]], text=[prompt], add_special_tokens=False, return_tensors="pt"
    )
    ids = inputs.pop("input_ids")
    mask = inputs.pop("cross_attention_mask")
    start = ids.shape[1]
    for _ in range(steps):
        n = ids.shape[1]
        cross = torch.cat([mask, mask[:, -1:].expand(-1, n - mask.shape[1], -1, -1)], dim=1)
        with torch.no_grad():
            logits = model(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                cross_attention_mask=cross,
                use_cache=False,
                **{k: v for k, v in inputs.items() if k != "attention_mask"},
            ).logits
        ids = torch.cat([ids, logits[:, -1:].argmax(-1)], dim=1)
        if ids[0, -1] == processor.tokenizer.eos_token_id:
            ids = ids[:, :-1]
            break
    # Special tokens stay in the text, as in generate_with_states (thinking tokens are special).
    return processor.tokenizer.decode(ids[0, start:])


def test_generation_with_cache_and_left_padding_is_plain_greedy(encoder, processor, shapes_pairs):
    """Batched (left-padded, KV-cached) answers equal a cache-free greedy loop per sample."""
    encoder.eval()
    chosen = [shapes_pairs[0], shapes_pairs[3], shapes_pairs[5]]
    assert len({len(q) for _, q, _ in chosen}) > 1  # different prompt lengths, so padding happens
    generations = generate_with_states(
        model=encoder,
        processor=processor,
        images=[image for image, _, _ in chosen],
        questions=[question for _, question, _ in chosen],
        decoding=DecodingConfig(max_new_tokens=8, batch_size=3),
    )
    answers = [generation.text for generation in generations]
    expected = [_greedy_without_cache(encoder, processor, image, q, 8) for image, q, _ in chosen]
    assert answers == expected


def test_generation_checks_lengths(encoder, processor, shapes_pairs):
    with pytest.raises(ValueError, match="questions"):
        generate_with_states(
            model=encoder,
            processor=processor,
            images=[shapes_pairs[0][0]],
            questions=[],
            decoding=DecodingConfig(),
        )


def _generations(encoder, processor, chosen, *, batch_size, capture_ids):
    return generate_with_states(
        model=encoder,
        processor=processor,
        images=[image for image, _, _ in chosen],
        questions=[question for _, question, _ in chosen],
        decoding=DecodingConfig(max_new_tokens=6, batch_size=batch_size),
        capture_ids=capture_ids,
    )


def test_batched_generation_equals_one_at_a_time_and_captures_the_emitting_states(
    encoder, processor, shapes_pairs
):
    """Tokens and captured states of a left-padded batch equal those of one sample at a time,
    and each captured state is the teacher-forced final state at the position before its token."""
    encoder.eval()
    chosen = [shapes_pairs[0], shapes_pairs[3], shapes_pairs[5]]
    every_id = range(len(processor.tokenizer))
    batched = _generations(encoder, processor, chosen, batch_size=3, capture_ids=every_id)
    single = _generations(encoder, processor, chosen, batch_size=1, capture_ids=every_id)
    for a, b in zip(batched, single, strict=True):
        assert a.token_ids == b.token_ids and a.captured_positions == b.captured_positions
        torch.testing.assert_close(a.captured_states, b.captured_states, atol=1e-4, rtol=1e-4)

    image, question, _ = chosen[1]
    generation = single[1]
    assert generation.captured_positions == tuple(range(len(generation.token_ids)))
    inputs = processor(
        images=[[image]],
        text=[encoder_prompt(processor=processor, question=question)],
        add_special_tokens=False,
        return_tensors="pt",
    )
    prompt_length = inputs["input_ids"].shape[1]
    ids = torch.cat([inputs["input_ids"], torch.tensor([generation.token_ids])], dim=1)
    cross = inputs["cross_attention_mask"]
    cross = torch.cat(
        [cross, cross[:, -1:].expand(-1, ids.shape[1] - cross.shape[1], -1, -1)], dim=1
    )
    with torch.no_grad():
        final = encoder(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            cross_attention_mask=cross,
            pixel_values=inputs["pixel_values"],
            aspect_ratio_ids=inputs["aspect_ratio_ids"],
            aspect_ratio_mask=inputs["aspect_ratio_mask"],
            output_hidden_states=True,
            use_cache=False,
        ).hidden_states[-1][0]
    emitting = final[prompt_length - 1 : prompt_length - 1 + len(generation.token_ids)]
    torch.testing.assert_close(generation.captured_states, emitting, atol=1e-4, rtol=1e-4)


def test_only_captured_ids_keep_their_states(encoder, processor, shapes_pairs):
    encoder.eval()
    (generation,) = _generations(encoder, processor, shapes_pairs[:1], batch_size=1, capture_ids=())
    assert generation.captured_positions == () and generation.captured_states.shape[0] == 0


def _answer(tokenizer, text):
    ids = tuple(tokenizer(text, add_special_tokens=False).input_ids)
    positions = tuple(range(len(ids)))
    return Generation(
        token_ids=ids,
        text=tokenizer.decode(list(ids)),
        captured_positions=positions,
        captured_states=torch.arange(len(ids), dtype=torch.float)[:, None],
        seconds=0.0,
    )


def test_stage_thinking_states_take_the_span_or_say_why_not(tokenizer):
    token = "<THINKING_OF_CAPTION>"
    token_id = tokenizer.convert_tokens_to_ids(token)
    heima = (
        "<SUMMARY> s </SUMMARY> <CAPTION> {} </CAPTION> <REASONING> r </REASONING> "
        "<CONCLUSION> Yes. </CONCLUSION>"
    )
    good = _answer(tokenizer, heima.format(token * 2))
    states = stage_thinking_states(generation=good, stage="caption", token=token, token_id=token_id)
    positions = [i for i, t in enumerate(good.token_ids) if t == token_id]
    assert states[:, 0].tolist() == positions and len(positions) == 2

    cases = {
        "missing_stage": heima.replace("<CAPTION> {} </CAPTION>", ""),
        "not_thinking": heima.format("a red circle"),
        "stray_thinking_token": heima.format(token).replace("Yes.", f"Yes {token}"),
    }
    for reason, text in cases.items():
        with pytest.raises(StageError) as error:
            stage_thinking_states(
                generation=_answer(tokenizer, text), stage="caption", token=token, token_id=token_id
            )
        assert error.value.reason == reason


def test_decoding_config_is_validated():
    with pytest.raises(ValueError, match="batch_size"):
        DecodingConfig(batch_size=0)
    with pytest.raises(ValueError, match="temperature"):
        DecodingConfig(do_sample=True, temperature=0.0)
