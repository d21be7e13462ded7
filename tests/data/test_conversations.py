import json

from heima_kedro.data.conversations import DROP_REASONS, parse_conversations, with_image_placeholder
from heima_kedro.data.images import check_images
from llava_fixtures import EXPECTED_DROPS, EXPECTED_KEPT, GOOD, record


def _reasons(parsed):
    return [drop.reason for drop in parsed.drops]


def test_every_pair_of_the_hand_made_file_is_kept_or_accounted(llava_cot_dir):
    lines = (llava_cot_dir / "train.jsonl").read_text().splitlines()
    parsed = parse_conversations(lines=lines)
    assert parsed.records_read == 14  # the blank line is not a record
    problems = check_images(
        image_root=llava_cot_dir / "images", images=[p["image"] for p in parsed.pairs]
    )
    image_drops = [problems[p["image"]][0] for p in parsed.pairs if p["image"] in problems]
    reasons = _reasons(parsed) + image_drops
    assert {reason: reasons.count(reason) for reason in DROP_REASONS} == EXPECTED_DROPS
    assert len(parsed.pairs) - len(image_drops) == EXPECTED_KEPT


def test_drop_names_line_id_and_pair():
    lines = [json.dumps(record("x", "a.png", ("Q?", GOOD), ("Q2?", GOOD.replace("<SUMMARY>", ""))))]
    (drop,) = parse_conversations(lines=lines).drops
    assert (drop.line, drop.id, drop.pair_index, drop.reason) == (1, "x", 1, "missing_stage")


def test_question_gets_one_image_placeholder():
    assert with_image_placeholder("What?") == "<image>\nWhat?"
    assert with_image_placeholder("<image>\nWhat?") == "<image>\nWhat?"


def test_repeated_ids_keep_their_pairs_under_distinct_pair_ids():
    lines = [json.dumps(record("same", "a.png", ("Q?", GOOD)))] * 2
    pairs = parse_conversations(lines=lines).pairs
    assert [p["pair_id"] for p in pairs] == ["same#0", "same@L2#0"]
    assert {p["id"] for p in pairs} == {"same"}


def test_non_object_and_badly_typed_records_are_invalid():
    lines = ["[1, 2]", json.dumps({"id": "a", "image": "a.png", "conversations": "nope"})]
    assert _reasons(parse_conversations(lines=lines)) == ["invalid_record", "invalid_record"]


def test_image_check_runs_once_per_distinct_image(llava_cot_dir, monkeypatch):
    import heima_kedro.data.images as images_module

    opened = []
    real_open = images_module.Image.open
    monkeypatch.setattr(
        images_module.Image, "open", lambda path: opened.append(path) or real_open(path)
    )
    root = llava_cot_dir / "images"
    problems = check_images(
        image_root=root, images=["sub/a.png"] * 1000 + ["sub/corrupt.png", "sub/nope.png"]
    )
    assert {image: reason for image, (reason, _) in problems.items()} == {
        "sub/corrupt.png": "unreadable_image",
        "sub/nope.png": "missing_image",
    }
    assert str(root / "sub/nope.png") in problems["sub/nope.png"][1]
    assert sorted(opened) == [root / "sub/a.png", root / "sub/corrupt.png"]


def test_exists_check_does_not_open_files(llava_cot_dir):
    problems = check_images(
        image_root=llava_cot_dir / "images",
        images=["sub/corrupt.png", "sub/nope.png"],
        check="exists",
    )
    assert set(problems) == {"sub/nope.png"}
