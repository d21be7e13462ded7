"""Reading LLaVA-CoT-100k style JSONL into question/answer pairs, with every unusable pair
accounted for under a reason instead of raised or skipped."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import orjson

from heima_kedro.data.cot import STAGES, StageError, check_replaceable, parse_stages

IMAGE_PLACEHOLDER = "<image>"

#: Every reason a pair can be dropped for, in the order the checks run.
DROP_REASONS: tuple[str, ...] = (
    "invalid_json",
    "invalid_record",
    "bad_turn_order",
    "missing_stage",
    "repeated_stage",
    "empty_stage",
    "ambiguous_replacement",
    "missing_image",
    "unreadable_image",
)


@dataclass(frozen=True)
class Drop:
    """One unusable pair (or a whole line that could not be read, counted as one pair)."""

    line: int
    id: str | None
    pair_index: int | None
    reason: str
    detail: str


@dataclass
class ParsedConversations:
    records_read: int
    pairs: list[dict]
    drops: list[Drop]


def with_image_placeholder(question: str) -> str:
    """LLaVA-CoT puts ``<image>`` in the first question only; every sample here needs it."""
    return question if IMAGE_PLACEHOLDER in question else f"{IMAGE_PLACEHOLDER}\n{question}"


def parse_conversations(*, lines: Iterable[str]) -> ParsedConversations:
    """Parse JSONL lines (1-based line numbers in reports) into usable pairs and drops.

    A pair is a dict with ``pair_id, id, pair_index, line, image, question, full_cot`` and the
    four stage texts. Images are not checked here (see :mod:`heima_kedro.data.images`).
    """
    pairs: list[dict] = []
    drops: list[Drop] = []
    seen_ids: set[str] = set()
    records_read = 0
    for line_no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        records_read += 1
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError as error:
            drops.append(Drop(line_no, None, None, "invalid_json", str(error)[:200]))
            continue
        problem = _record_problem(record)
        if problem:
            record_id = record.get("id") if isinstance(record, dict) else None
            drops.append(Drop(line_no, _as_id(record_id), None, "invalid_record", problem))
            continue
        record_id = str(record["id"])
        # A repeated id keeps its pairs but gets distinct pair ids; the split groups by id.
        id_key = record_id if record_id not in seen_ids else f"{record_id}@L{line_no}"
        seen_ids.add(record_id)
        turns = record["conversations"]
        for pair_index in range((len(turns) + 1) // 2):
            human, gpt = turns[2 * pair_index], turns[2 * pair_index + 1 : 2 * pair_index + 2]
            order_problem = _turn_order_problem(human, gpt[0] if gpt else None)
            if order_problem:
                drops.append(Drop(line_no, record_id, pair_index, "bad_turn_order", order_problem))
                continue
            answer = gpt[0]["value"]
            try:
                spans = parse_stages(answer)
                check_replaceable(answer, spans)
            except StageError as error:
                drops.append(Drop(line_no, record_id, pair_index, error.reason, error.detail))
                continue
            pairs.append(
                {
                    "pair_id": f"{id_key}#{pair_index}",
                    "id": record_id,
                    "pair_index": pair_index,
                    "line": line_no,
                    "image": record["image"],
                    "question": with_image_placeholder(human["value"].strip()),
                    "full_cot": answer,
                    **{stage: spans[stage].text for stage in STAGES},
                }
            )
    return ParsedConversations(records_read=records_read, pairs=pairs, drops=drops)


def _as_id(value: object) -> str | None:
    return None if value is None else str(value)


def _record_problem(record: object) -> str:
    if not isinstance(record, dict):
        return f"a record must be a JSON object, got {type(record).__name__}"
    for field, kind in (("id", (str, int)), ("image", str), ("conversations", list)):
        if field not in record:
            return f"field '{field}' is missing"
        if not isinstance(record[field], kind):
            return f"field '{field}' has type {type(record[field]).__name__}"
    if not record["image"].strip():
        return "field 'image' is empty"
    if not record["conversations"]:
        return "field 'conversations' is empty"
    return ""


def _turn_order_problem(human: object, gpt: object) -> str:
    for turn, expected in ((human, "human"), (gpt, "gpt")):
        if turn is None:
            return f"a '{expected}' turn is missing at the end"
        if not isinstance(turn, dict) or not isinstance(turn.get("value"), str):
            return "a turn must be an object with a string 'value'"
        if turn.get("from") != expected:
            return f"expected a '{expected}' turn, found '{turn.get('from')}'"
    return ""
