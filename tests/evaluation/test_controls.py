"""The answer-level controls on tiny models, where each outcome is known by construction."""

import pytest
import torch

from heima_kedro.data.cot import DEFAULT_THINKING_TOKENS, THINKING_STAGES, compress, parse_stages
from heima_kedro.evaluation.controls import (
    answer_under_controls,
    derangement,
    donors_by_thinking,
    thinking_prefix,
)
from heima_kedro.models.batching import encoder_prompt
from heima_kedro.models.generation import DecodingConfig, Generation, text_model
from heima_kedro.models.tokenizer import thinking_token_ids

#: Room for the prefix (about 20 tokens) and a few tokens of conclusion.
DECODING = DecodingConfig(max_new_tokens=28, batch_size=2)


def _heima_answers(processor, pairs):
    """Each pair's compressed answer as if the encoder had generated it (one thinking token per
    stage, conclusion included)."""
    generations = []
    for _, _, answer in pairs:
        spans = parse_stages(answer)
        text = compress(
            answer,
            {stage: spans[stage].text for stage in THINKING_STAGES},
            stages=THINKING_STAGES,
            thinking_text=DEFAULT_THINKING_TOKENS,
        )
        ids = tuple(processor.tokenizer(text, add_special_tokens=False).input_ids)
        generations.append(
            Generation(
                token_ids=ids,
                text=processor.tokenizer.decode(ids),
                captured_positions=(),
                captured_states=torch.empty(0),
                seconds=0.0,
            )
        )
    return generations


def _controls(model, processor, pairs, *, seed=0, decoding=DECODING):
    ids = thinking_token_ids(processor.tokenizer, DEFAULT_THINKING_TOKENS).values()
    return answer_under_controls(
        model=model.eval(),
        processor=processor,
        images=[image for image, _, _ in pairs],
        questions=[question for _, question, _ in pairs],
        generations=_heima_answers(processor, pairs),
        thinking_ids=list(ids),
        decoding=decoding,
        seed=seed,
    )


def _greedy(model, processor, image, question, prefix, *, drop=()):
    """Cache-free greedy continuation of prompt + prefix, with the prefix positions in ``drop``
    left out of the sequence while every other token keeps its position id."""
    prompt = encoder_prompt(processor=processor, question=question)
    inputs = processor(
        images=[[image]], text=[prompt], add_special_tokens=False, return_tensors="pt"
    )
    prompt_ids = inputs.pop("input_ids")[0].tolist()
    cross = inputs.pop("cross_attention_mask")
    inputs.pop("attention_mask")
    kept = [
        (i, t) for i, t in enumerate(prompt_ids + list(prefix)) if i - len(prompt_ids) not in drop
    ]
    positions, ids = [p for p, _ in kept], [t for _, t in kept]
    new = []
    for _ in range(DECODING.max_new_tokens - len(prefix)):  # the answer's own budget
        n = len(ids)
        mask = torch.cat([cross, cross[:, -1:].expand(-1, n - cross.shape[1], -1, -1)], dim=1)
        with torch.no_grad():
            logits = model(
                input_ids=torch.tensor([ids]),
                position_ids=torch.tensor([positions]),
                attention_mask=torch.ones(1, n, dtype=torch.long),
                cross_attention_mask=mask[:, :n],
                use_cache=False,
                **inputs,
            ).logits
        token = int(logits[0, -1].argmax())
        if token == processor.tokenizer.eos_token_id:
            break
        new.append(token)
        ids.append(token)
        positions.append(positions[-1] + 1)
    return processor.tokenizer.decode(list(prefix) + new)


def test_derangement_moves_every_item_and_is_seeded():
    donors = derangement(7, seed=3)
    assert sorted(donors) == list(range(7))
    assert all(donor != i for i, donor in enumerate(donors))
    assert derangement(7, seed=3) == donors
    assert derangement(1, seed=0) == [0]


def test_donors_come_from_pairs_with_the_same_thinking_tokens_in_order():
    one_each, two_summaries = (1, 2, 3), (1, 1, 2, 3)
    kinds = [one_each, one_each, two_summaries, one_each, (1, 2, 2, 3), (1, 2, 3, 3)]
    donors = donors_by_thinking(kinds, seed=0)
    assert donors[2] is None and donors[4] is None and donors[5] is None  # alone with its kind
    assert {donors[0], donors[1], donors[3]} == {0, 1, 3}
    assert all(donors[i] != i for i in (0, 1, 3))


def test_prefix_stops_before_the_conclusion_and_needs_thinking(processor, shapes_pairs):
    (generation,) = _heima_answers(processor, shapes_pairs[:1])
    prefix = thinking_prefix(
        generation=generation,
        thinking_ids=set(thinking_token_ids(processor.tokenizer, DEFAULT_THINKING_TOKENS).values()),
        processor=processor,
    )
    text = processor.tokenizer.decode(prefix)
    assert "<CONCLUSION>" not in text and text.strip().endswith("</REASONING>")
    assert thinking_prefix(generation=generation, thinking_ids={-1}, processor=processor) is None


def test_real_and_masked_continuations_equal_cache_free_greedy(encoder, processor, shapes_pairs):
    """real: the prefix continued as it stands; masked: as if the thinking tokens were not in
    the sequence at all (every other token at its own position)."""
    with torch.no_grad():  # larger weights, so that an answer depends on what it attends to
        for parameter in encoder.parameters():
            parameter.mul_(8)
    pairs = [shapes_pairs[i] for i in (0, 3, 5, 7)]  # prompts of different lengths
    answers = _controls(encoder, processor, pairs)
    assert any(r.text != m.text for r, m in zip(answers["real"], answers["masked"], strict=True))
    thinking = set(thinking_token_ids(processor.tokenizer, DEFAULT_THINKING_TOKENS).values())
    for pair, generation, real, masked in zip(
        pairs, _heima_answers(processor, pairs), answers["real"], answers["masked"], strict=True
    ):
        image, question, _ = pair
        prefix = thinking_prefix(generation=generation, thinking_ids=thinking, processor=processor)
        drop = {i for i, token in enumerate(prefix) if token in thinking}
        assert len(drop) == 3
        assert real.text == _greedy(encoder, processor, image, question, prefix)
        assert masked.text == _greedy(encoder, processor, image, question, prefix, drop=drop)
        assert real.generated_tokens > len(prefix)


def test_an_answer_that_cannot_read_other_positions_is_the_same_under_every_control(
    encoder, processor, shapes_pairs
):
    """With every self-attention output zeroed, no position reads another: masking the thinking
    tokens or giving them another pair's states cannot change any answer."""
    for layer in text_model(encoder).layers:
        if hasattr(layer, "self_attn"):
            torch.nn.init.zeros_(layer.self_attn.o_proj.weight)
    answers = _controls(encoder, processor, shapes_pairs[:4])
    real = [a.text for a in answers["real"]]
    assert [a.text for a in answers["masked"]] == real
    assert [a.text for a in answers["other_pair"]] == real
    donors = [a.donor for a in answers["other_pair"]]
    assert sorted(donors) == [0, 1, 2, 3] and all(d != i for i, d in enumerate(donors))


def test_another_pair_with_the_same_thinking_changes_nothing(encoder, processor, shapes_pairs):
    """Two copies of one pair are each other's donors: their answers under other_pair are the
    real ones, while a pair whose donor differs may change."""
    answers = _controls(encoder, processor, [shapes_pairs[2], shapes_pairs[2]])
    assert [a.donor for a in answers["other_pair"]] == [1, 0]
    assert [a.text for a in answers["other_pair"]] == [a.text for a in answers["real"]]


@pytest.mark.parametrize("batch_size", [2, 1])  # donors in the same batch, in another batch
def test_other_pair_puts_the_donors_states_at_the_thinking_positions(
    encoder, processor, shapes_pairs, batch_size
):
    """Read at the final norm's input (the last layer's output after the edit): under
    other_pair each pair's thinking positions hold exactly its donor's real states."""
    seen: list[torch.Tensor] = []
    handle = text_model(encoder).norm.register_forward_pre_hook(
        lambda _m, args: seen.append(args[0].detach().clone()) if args[0].shape[1] > 1 else None
    )
    pairs = shapes_pairs[:2]
    try:
        answers = _controls(
            encoder,
            processor,
            pairs,
            decoding=DecodingConfig(max_new_tokens=28, batch_size=batch_size),
        )
    finally:
        handle.remove()
    thinking = set(thinking_token_ids(processor.tokenizer, DEFAULT_THINKING_TOKENS).values())
    prefixes = [
        thinking_prefix(generation=g, thinking_ids=thinking, processor=processor)
        for g in _heima_answers(processor, pairs)
    ]

    def states(condition: int, pair: int) -> torch.Tensor:
        """Pair's thinking-position states in the prompt pass of condition (0 real, 2 other)."""
        passes_per_condition = len(pairs) // batch_size
        batch, row = divmod(pair, batch_size)
        output = seen[condition * passes_per_condition + batch][row]
        start = output.shape[0] - len(prefixes[pair])  # prefixes are right-aligned
        return output[[start + i for i, t in enumerate(prefixes[pair]) if t in thinking]]

    assert len(seen) == 3 * len(pairs) // batch_size
    donors = [a.donor for a in answers["other_pair"]]
    assert donors == [1, 0]
    for pair, donor in enumerate(donors):
        assert torch.equal(states(2, pair), states(0, donor))
        assert not torch.equal(states(2, pair), states(0, pair))
