import pytest

from heima_kedro.data.cot import (
    DEFAULT_THINKING_TOKENS,
    THINKING_STAGES,
    StageError,
    check_replaceable,
    compress,
    conclusion_block,
    parse_stages,
)

ANSWER = (
    "<SUMMARY>  plan the answer </SUMMARY>\n\n<CAPTION>\ta red circle\n</CAPTION>"
    "<REASONING> red means circle </REASONING>   <CONCLUSION> Circle. </CONCLUSION>"
)


def test_parse_strips_text_and_allows_any_whitespace_between_tags():
    spans = parse_stages(ANSWER)
    assert {stage: span.text for stage, span in spans.items()} == {
        "summary": "plan the answer",
        "caption": "a red circle",
        "reasoning": "red means circle",
        "conclusion": "Circle.",
    }
    for span in spans.values():
        assert ANSWER[span.start : span.end] == span.text


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (ANSWER.replace("<CAPTION>", "<caption>"), "missing_stage"),  # tags are case-sensitive
        (ANSWER.replace("</CONCLUSION>", ""), "missing_stage"),
        (ANSWER.replace("red means circle", " \n "), "empty_stage"),
        (ANSWER + "<SUMMARY> again </SUMMARY>", "repeated_stage"),
        ("</CAPTION>" + ANSWER.replace("</CAPTION>", ""), "missing_stage"),  # closed before opened
    ],
)
def test_parse_rejects_with_reason(answer, reason):
    with pytest.raises(StageError) as error:
        parse_stages(answer)
    assert error.value.reason == reason


def test_replacement_is_ambiguous_when_stage_text_repeats_elsewhere():
    answer = ANSWER.replace("red means circle", "plan the answer, then red means circle")
    with pytest.raises(StageError, match="summary text occurs 2 times") as error:
        check_replaceable(answer, parse_stages(answer))
    assert error.value.reason == "ambiguous_replacement"
    check_replaceable(ANSWER, parse_stages(ANSWER))  # the clean answer passes


def test_compress_is_progressive_and_keeps_tags_and_conclusion():
    texts = {stage: span.text for stage, span in parse_stages(ANSWER).items()}
    tokens = {stage: DEFAULT_THINKING_TOKENS[stage] * 2 for stage in THINKING_STAGES}
    only_summary = compress(ANSWER, texts, stages=("summary",), thinking_text=tokens)
    assert only_summary.startswith(
        "<SUMMARY>  <THINKING_OF_SUMMARY><THINKING_OF_SUMMARY> </SUMMARY>"
    )
    assert "a red circle" in only_summary and "red means circle" in only_summary
    everything = compress(ANSWER, texts, stages=THINKING_STAGES, thinking_text=tokens)
    assert everything == (
        "<SUMMARY>  <THINKING_OF_SUMMARY><THINKING_OF_SUMMARY> </SUMMARY>\n\n"
        "<CAPTION>\t<THINKING_OF_CAPTION><THINKING_OF_CAPTION>\n</CAPTION>"
        "<REASONING> <THINKING_OF_REASONING><THINKING_OF_REASONING> </REASONING>   "
        "<CONCLUSION> Circle. </CONCLUSION>"
    )


def test_heima_format_requires_exactly_the_thinking_tokens():
    from heima_kedro.data.cot import is_heima_format

    tokens = {"summary": "<S>", "caption": "<C><C>", "reasoning": "<R>"}
    good = (
        "<SUMMARY> <S> </SUMMARY> <CAPTION> <C> <C> </CAPTION> <REASONING><R></REASONING> "
        "<CONCLUSION> Yes. </CONCLUSION>"
    )
    assert is_heima_format(answer=good, thinking_text=tokens)
    assert not is_heima_format(
        answer=good.replace("<C> <C>", "<C>"), thinking_text=tokens
    )  # too few
    assert not is_heima_format(
        answer=good.replace("<R>", "<R> because"), thinking_text=tokens
    )  # words leak
    assert not is_heima_format(
        answer=good.replace(" Yes. ", " "), thinking_text=tokens
    )  # no conclusion


def test_conclusion_block_keeps_the_tagged_conclusion_alone():
    assert conclusion_block(ANSWER) == "<CONCLUSION> Circle. </CONCLUSION>"
    with pytest.raises(StageError, match="missing_stage"):
        conclusion_block("<SUMMARY> plan </SUMMARY>")
