"""What an answer is worth: its conclusion (right or wrong), its format, and its token counts."""

import pytest

from heima_kedro.evaluation.answers import (
    TokenCounts,
    conclusion_accuracy,
    count_tokens,
    extract_conclusion,
    is_correct,
    normalise_answer,
    well_formed_rate,
)

FULL = (
    "<SUMMARY> s </SUMMARY>\n\n<CAPTION> c </CAPTION>\n\n<REASONING> r </REASONING>\n\n"
    "<CONCLUSION> {} </CONCLUSION>"
)


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
    assert [
        is_correct(answer=p, reference=r) for p, r in zip(predictions, references, strict=True)
    ] == [True, True, False, False]
    with pytest.raises(ValueError, match="references"):
        conclusion_accuracy(predictions=predictions, references=references[:1])


def test_well_formed_rate_needs_all_four_non_empty_stages():
    predictions = [
        FULL.format("Yes."),
        FULL.format(" "),
        FULL.replace("<CAPTION> c </CAPTION>", ""),
    ]
    assert well_formed_rate(predictions=predictions) == pytest.approx(1 / 3)


def test_count_tokens_splits_at_the_conclusion_tag(tokenizer):
    stages = "<SUMMARY> s </SUMMARY> <CAPTION> a red circle </CAPTION> "
    conclusion = "<CONCLUSION> Yes. </CONCLUSION>"
    ids = tokenizer(stages + conclusion, add_special_tokens=False).input_ids
    counts = count_tokens(token_ids=ids, tokenizer=tokenizer)
    assert counts.total == len(ids)
    assert tokenizer.decode(ids[counts.stages :]) == conclusion
    assert count_tokens(token_ids=ids[:5], tokenizer=tokenizer) == TokenCounts(
        stages=5, conclusion=0
    )
