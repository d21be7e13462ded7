import json

import pandas as pd
import pytest
import yaml

from heima_kedro.data.conversations import DROP_REASONS
from heima_kedro.data.thinking import ThinkingConfig
from heima_kedro.pipelines.data_prep.nodes import (
    build_targets_node,
    check_images_node,
    parse_conversations_node,
    report_node,
    split_pairs_node,
)
from llava_fixtures import EXPECTED_DROPS, EXPECTED_KEPT, cot_answer, record


@pytest.fixture
def params(llava_cot_dir):
    with open("conf/base/parameters_data_prep.yml") as file:
        data_prep = yaml.safe_load(file)["data_prep"]
    return {**data_prep, "image_root": str(llava_cot_dir / "images")}


def _run_nodes(raw: str, params: dict):
    parsed, parse_drops, stats = parse_conversations_node(raw, params)
    usable, image_drops = check_images_node(parsed, params)
    prepared = build_targets_node(usable, params)
    train, test = split_pairs_node(prepared, params)
    report, dropped = report_node(stats, parse_drops, image_drops, prepared, train, test, params)
    return prepared, train, test, report, dropped


def test_report_accounts_for_every_pair(llava_cot_dir, params):
    prepared, train, test, report, dropped = _run_nodes(
        (llava_cot_dir / "train.jsonl").read_text(), params
    )
    assert report["dropped"] == EXPECTED_DROPS
    assert report["pairs_kept"] == len(prepared) == EXPECTED_KEPT
    assert (
        report["pairs_total"]
        == EXPECTED_KEPT + sum(EXPECTED_DROPS.values())
        == len(prepared) + len(dropped)
    )
    assert report["train_pairs"] + report["test_pairs"] == EXPECTED_KEPT
    assert set(dropped["reason"]) <= set(DROP_REASONS)
    assert report["records_read"] == 14
    assert set(report["stage_words"]) == {"summary", "caption", "reasoning", "conclusion"}
    json.dumps(report)  # the report must be plain JSON


def test_targets_compress_progressively_and_decoder_samples_carry_the_tokens(llava_cot_dir, params):
    prepared, *_ = _run_nodes((llava_cot_dir / "train.jsonl").read_text(), params)
    row = prepared.iloc[0]
    assert row["question"].startswith("<image>")
    assert (
        "<THINKING_OF_SUMMARY>" in row["compress_summary"]
        and row["caption"] in row["compress_summary"]
    )
    assert (
        row["caption"] not in row["compress_summary_caption"]
        and row["reasoning"] in row["compress_summary_caption"]
    )
    assert row["compress_all"] == (
        "<SUMMARY> <THINKING_OF_SUMMARY> </SUMMARY>\n\n"
        "<CAPTION> <THINKING_OF_CAPTION> </CAPTION>\n\n"
        "<REASONING> <THINKING_OF_REASONING> </REASONING>\n\n<CONCLUSION> Circle. </CONCLUSION>"
    )
    assert row["no_cot"] == "<CONCLUSION> Circle. </CONCLUSION>"  # the No-CoT baseline's target
    for stage, token in (
        ("summary", "<THINKING_OF_SUMMARY>"),
        ("caption", "<THINKING_OF_CAPTION>"),
        ("reasoning", "<THINKING_OF_REASONING>"),
    ):
        user, assistant = row[f"decoder_{stage}_user"], row[f"decoder_{stage}_assistant"]
        assert user.count(token) == 1 and "<image>" not in user
        assert assistant.endswith(row[stage])
        assert all(
            other not in user
            for other in (
                "<THINKING_OF_SUMMARY>",
                "<THINKING_OF_CAPTION>",
                "<THINKING_OF_REASONING>",
            )
            if other != token
        )


def test_ratio_mode_scales_the_number_of_thinking_tokens(tmp_path, params):
    (tmp_path / "img.png").write_bytes(b"")  # decodes badly but `exists` does not look inside
    caption, reasoning = " ".join(["word"] * 40), " ".join(["thing"] * 44)
    raw = json.dumps(
        record("a", "img.png", ("Q?", cot_answer("one two three four", caption, reasoning, "Yes.")))
    )
    params = {
        **params,
        "image_root": str(tmp_path),
        "image_check": "exists",
        "thinking": {**params["thinking"], "mode": "ratio", "ratio": 0.1},
    }
    prepared, *_ = _run_nodes(raw, params)
    row = prepared.iloc[0]
    assert (row["k_summary"], row["k_caption"], row["k_reasoning"]) == (1, 4, 4)
    assert "<THINKING_OF_CAPTION>" * 4 + " </CAPTION>" in row["compress_all"]
    assert row["decoder_caption_user"].count("<THINKING_OF_CAPTION>") == 4


def test_thinking_config_rejects_bad_values():
    with pytest.raises(ValueError, match="thinking.mode"):
        ThinkingConfig(mode="adaptive")
    with pytest.raises(ValueError, match="thinking.fixed"):
        ThinkingConfig(fixed=0)
    with pytest.raises(ValueError, match="thinking.ratio"):
        ThinkingConfig(mode="ratio", ratio=0)


def _frame(ids):
    return pd.DataFrame({"id": ids, "pair_id": [f"{i}#{n}" for n, i in enumerate(ids)]})


def test_split_is_seeded_by_id_and_never_shares_an_id():
    frame = _frame([f"r{i // 3}" for i in range(300)])  # 100 ids, 3 pairs each
    params = {"split": {"test_fraction": 0.2, "seed": 1}}
    train, test = split_pairs_node(frame, params)
    assert set(train["id"]).isdisjoint(test["id"])
    assert test["id"].nunique() == 20 and len(train) + len(test) == 300
    again_train, again_test = split_pairs_node(frame, params)
    pd.testing.assert_frame_equal(test, again_test)
    _, other_test = split_pairs_node(frame, {"split": {"test_fraction": 0.2, "seed": 2}})
    assert set(other_test["id"]) != set(test["id"])


def test_split_rejects_bad_fraction():
    with pytest.raises(ValueError, match="test_fraction"):
        split_pairs_node(_frame(["a", "b"]), {"split": {"test_fraction": 1.0, "seed": 0}})


def test_missing_image_root_stops_with_the_path(params):
    with pytest.raises(FileNotFoundError, match="Image root not found: '/nowhere/images'"):
        parse_conversations_node("", {**params, "image_root": "/nowhere/images"})
