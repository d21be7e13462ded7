"""Builders for hand-made LLaVA-CoT-format data with every kind of bad input."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image


def cot_answer(
    summary: str, caption: str, reasoning: str, conclusion: str, sep: str = "\n\n"
) -> str:
    return sep.join(
        [
            f"<SUMMARY> {summary} </SUMMARY>",
            f"<CAPTION> {caption} </CAPTION>",
            f"<REASONING> {reasoning} </REASONING>",
            f"<CONCLUSION> {conclusion} </CONCLUSION>",
        ]
    )


GOOD = cot_answer(
    "I will find the red shape and name it.",
    "A red circle sits on the left and a blue square on the right.",
    "The only red object in the picture is round, so it is a circle.",
    "Circle.",
)


def record(record_id: str, image: str, *pairs: tuple[str, str]) -> dict:
    turns = []
    for question, answer in pairs:
        turns += [{"from": "human", "value": question}, {"from": "gpt", "value": answer}]
    return {"id": record_id, "image": image, "conversations": turns}


#: What the hand-made file must produce, reason by reason.
EXPECTED_DROPS = {
    "invalid_json": 1,
    "invalid_record": 1,
    "bad_turn_order": 2,
    "missing_stage": 1,
    "repeated_stage": 1,
    "empty_stage": 1,
    "ambiguous_replacement": 1,
    "missing_image": 2,
    "unreadable_image": 1,
}
EXPECTED_KEPT = 6


def write_llava_cot_dir(tmp_path: Path) -> Path:
    """A LLaVA-CoT layout (train.jsonl + images/) exercising every drop reason."""
    images = tmp_path / "images" / "sub"
    images.mkdir(parents=True)
    for name, colour in (("a.png", "red"), ("b.png", "blue"), ("c.png", "green")):
        Image.new("RGB", (8, 8), colour).save(images / name)
    (images / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")

    lines = [
        # two good pairs, the second question without <image>; tags separated by single spaces
        json.dumps(
            record(
                "r1",
                "sub/a.png",
                ("<image>\nWhat shape is red?", GOOD),
                (
                    "Which shape is red?",
                    cot_answer(
                        "Look at the red one.", "Shapes.", "Red is round.", "Circle.", sep=" "
                    ),
                ),
            )
        ),
        "{not json",
        json.dumps({"id": "r3", "conversations": []}),  # no image field
        json.dumps(
            {
                "id": "r4",
                "image": "sub/a.png",
                "conversations": [{"from": "gpt", "value": GOOD}, {"from": "human", "value": "Q?"}],
            }
        ),  # wrong order
        json.dumps(
            {
                "id": "r5",
                "image": "sub/b.png",
                "conversations": [
                    {"from": "human", "value": "Q1?"},
                    {"from": "gpt", "value": GOOD},
                    {"from": "human", "value": "dangling question"},
                ],
            }
        ),  # 1 kept + 1 unpaired
        json.dumps(
            record(
                "r6",
                "sub/b.png",
                ("Q?", GOOD.replace("<CAPTION>", "<caption>").replace("</CAPTION>", "</caption>")),
            )
        ),
        json.dumps(record("r7", "sub/b.png", ("Q?", GOOD + "\n<SUMMARY> again </SUMMARY>"))),
        json.dumps(record("r8", "sub/b.png", ("Q?", cot_answer("S.", "C.", "   ", "Yes.")))),
        json.dumps(
            record(
                "r9",
                "sub/b.png",
                (
                    "Q?",
                    cot_answer("Count them.", "Two shapes.", "Count them. There are two.", "2."),
                ),
            )
        ),
        json.dumps(record("r10", "sub/missing.png", ("Q1?", GOOD), ("Q2?", GOOD))),
        json.dumps(record("r11", "sub/corrupt.png", ("Q?", GOOD))),
        "",
        json.dumps(record("r12", "sub/c.png", ("Q?", GOOD))),
        json.dumps(
            record("r1", "sub/c.png", ("Same id again?", GOOD))
        ),  # repeated id: kept, distinct pair_id
        json.dumps(record(13, "sub/a.png", ("Numeric id?", GOOD))),
    ]
    (tmp_path / "train.jsonl").write_text("\n".join(lines) + "\n")
    return tmp_path
