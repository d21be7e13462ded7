import pytest
import torch

from heima_kedro.models.batching import encoder_prompt
from heima_kedro.models.generation import (
    conclusion_accuracy,
    extract_conclusion,
    generate_answers,
    normalise_answer,
    well_formed_rate,
)

FULL = "<SUMMARY> s </SUMMARY>\n\n<CAPTION> c </CAPTION>\n\n<REASONING> r </REASONING>\n\n<CONCLUSION> {} </CONCLUSION>"


def test_normalise_answer_drops_case_punctuation_articles_and_spacing():
    assert normalise_answer("  The Blue  square. ") == "blue square"
    assert normalise_answer("3.") == "3"
    assert normalise_answer("Theme") == "theme"


def test_conclusion_accuracy_matches_normalised_conclusions_only():
    predictions = [
        FULL.format("The blue square."),
        FULL.format("red"),
        "<SUMMARY> s </SUMMARY> The blue square.",  # no conclusion: wrong even if the text fits
        FULL.format("2.") + "<CONCLUSION> 3. </CONCLUSION>",  # two conclusions: unparsable
    ]
    references = ["blue square", "Red.", "The blue square.", "3."]
    assert conclusion_accuracy(predictions=predictions, references=references) == 0.5
    assert extract_conclusion(predictions[2]) is None
    with pytest.raises(ValueError, match="references"):
        conclusion_accuracy(predictions=predictions, references=references[:1])


def test_well_formed_rate_needs_all_four_non_empty_stages():
    predictions = [
        FULL.format("Yes."),
        FULL.format(" "),
        FULL.replace("<CAPTION> c </CAPTION>", ""),
    ]
    assert well_formed_rate(predictions=predictions) == pytest.approx(1 / 3)


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
            break
    return processor.tokenizer.decode(ids[0, start:], skip_special_tokens=True)


def test_generation_with_cache_and_left_padding_is_plain_greedy(encoder, processor, shapes_pairs):
    """Batched (left-padded, KV-cached) answers equal a cache-free greedy loop per sample."""
    encoder.eval()
    chosen = [shapes_pairs[0], shapes_pairs[3], shapes_pairs[5]]
    assert len({len(q) for _, q, _ in chosen}) > 1  # different prompt lengths, so padding happens
    answers = generate_answers(
        model=encoder,
        processor=processor,
        images=[image for image, _, _ in chosen],
        questions=[question for _, question, _ in chosen],
        max_new_tokens=8,
        batch_size=3,
    )
    expected = [_greedy_without_cache(encoder, processor, image, q, 8) for image, q, _ in chosen]
    assert answers == expected


def test_generate_answers_checks_lengths(encoder, processor, shapes_pairs):
    with pytest.raises(ValueError, match="questions"):
        generate_answers(
            model=encoder, processor=processor, images=[shapes_pairs[0][0]], questions=[]
        )
