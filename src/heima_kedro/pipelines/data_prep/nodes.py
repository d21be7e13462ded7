"""Nodes of ``data_prep`` (docs/method.md, the data). Every unusable pair ends up in
``dropped_pairs``."""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from heima_kedro.data.conversations import DROP_REASONS, Drop, parse_conversations
from heima_kedro.data.cot import (
    COMPRESSION_TARGETS,
    STAGES,
    THINKING_STAGES,
    compress,
    conclusion_block,
)
from heima_kedro.data.decoder_samples import N_TEMPLATES, decoder_chat
from heima_kedro.data.images import check_images, require_image_root
from heima_kedro.data.thinking import ThinkingConfig

logger = logging.getLogger(__name__)

#: The No-CoT baseline's target: the conclusion alone, every reasoning stage removed.
NO_COT_TARGET = "no_cot"
_DROP_COLUMNS = ["line", "id", "pair_index", "reason", "detail"]


def parse_conversations_node(
    raw_conversations: str, data_prep: dict[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, int]]:
    """Parse the JSONL text into pairs whose four stages are usable; account for the rest."""
    require_image_root(data_prep["image_root"])  # fail before parsing a large file
    parsed = parse_conversations(lines=raw_conversations.splitlines())
    pairs = pd.DataFrame(
        parsed.pairs,
        columns=["pair_id", "id", "pair_index", "line", "image", "question", "full_cot", *STAGES],
    )
    logger.info(
        "Parsed %d records: %d pairs with four usable stages, %d dropped",
        parsed.records_read,
        len(pairs),
        len(parsed.drops),
    )
    return pairs, _drops_frame(parsed.drops), {"records_read": parsed.records_read}


def check_images_node(
    parsed_pairs: pd.DataFrame, data_prep: dict[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Keep pairs whose image exists and decodes; each distinct image is checked once."""
    problems = check_images(
        image_root=data_prep["image_root"],
        images=parsed_pairs["image"],
        check=data_prep.get("image_check", "decode"),
    )
    bad = parsed_pairs["image"].isin(list(problems))
    drops = [
        Drop(row.line, row.id, row.pair_index, *problems[row.image])
        for row in parsed_pairs[bad].itertuples()
    ]
    logger.info(
        "Checked %d distinct images: %d unusable, %d pairs dropped",
        parsed_pairs["image"].nunique(),
        len(problems),
        len(drops),
    )
    kept = parsed_pairs[~bad].reset_index(drop=True) if drops else parsed_pairs.copy()
    paths = {image: str(Path(data_prep["image_root"]) / image) for image in kept["image"].unique()}
    kept.insert(5, "image_path", kept["image"].map(paths))
    return kept, _drops_frame(drops)


def build_targets_node(usable_pairs: pd.DataFrame, data_prep: dict[str, Any]) -> pd.DataFrame:
    """Add word counts, thinking-token counts, the three progressive targets, the No-CoT target
    and the decoder samples. Built column by column: this runs on 100k-pair files."""
    thinking = ThinkingConfig(**data_prep["thinking"])
    rng = np.random.default_rng(data_prep["template_seed"])
    templates = rng.integers(
        0, N_TEMPLATES, size=(len(usable_pairs), len(THINKING_STAGES), 2)
    ).tolist()
    columns: dict[str, list] = {
        name: []
        for name in (
            *(f"words_{stage}" for stage in STAGES),
            *COMPRESSION_TARGETS,
            NO_COT_TARGET,
            *(f"k_{stage}" for stage in THINKING_STAGES),
            *(
                f"decoder_{stage}_{turn}"
                for stage in THINKING_STAGES
                for turn in ("user", "assistant")
            ),
        )
    }
    stage_texts = [usable_pairs[stage].tolist() for stage in STAGES]
    questions = usable_pairs["question"].tolist()
    for i, answer in enumerate(usable_pairs["full_cot"].tolist()):
        texts = dict(zip(STAGES, (column[i] for column in stage_texts), strict=True))
        words = {stage: len(text.split()) for stage, text in texts.items()}
        counts = {stage: thinking.count(words=words[stage]) for stage in THINKING_STAGES}
        thinking_text = {stage: thinking.text(stage=stage, count=counts[stage]) for stage in counts}
        for stage in STAGES:
            columns[f"words_{stage}"].append(words[stage])
        for column, stages in COMPRESSION_TARGETS.items():
            columns[column].append(
                compress(answer, texts, stages=stages, thinking_text=thinking_text)
            )
        columns[NO_COT_TARGET].append(conclusion_block(answer))
        for j, stage in enumerate(THINKING_STAGES):
            columns[f"k_{stage}"].append(counts[stage])
            user, assistant = decoder_chat(
                stage=stage,
                question=questions[i],
                thinking=thinking_text[stage],
                stage_text=texts[stage],
                question_template=templates[i][j][0],
                answer_template=templates[i][j][1],
            )
            columns[f"decoder_{stage}_user"].append(user)
            columns[f"decoder_{stage}_assistant"].append(assistant)
    return usable_pairs.assign(**columns)


def split_pairs_node(
    prepared_pairs: pd.DataFrame, data_prep: dict[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Seeded split by record id, so no image's questions are on both sides."""
    split = data_prep["split"]
    test_fraction = split["test_fraction"]
    if not 0 <= test_fraction < 1:
        raise ValueError(f"data_prep.split.test_fraction must be in [0, 1), got {test_fraction}")
    ids = np.array(sorted(prepared_pairs["id"].unique()), dtype=object)
    n_test = round(test_fraction * len(ids))
    if test_fraction > 0 and len(ids) > 1:
        n_test = min(max(n_test, 1), len(ids) - 1)
    test_ids = set(np.random.default_rng(split["seed"]).permutation(ids)[:n_test])
    is_test = prepared_pairs["id"].isin(test_ids)
    train, test = prepared_pairs[~is_test], prepared_pairs[is_test]
    logger.info(
        "Split %d pairs: %d train, %d test (%d test ids)",
        len(prepared_pairs),
        len(train),
        len(test),
        n_test,
    )
    return train.reset_index(drop=True), test.reset_index(drop=True)


def report_node(
    read_stats: dict[str, int],
    parse_drops: pd.DataFrame,
    image_drops: pd.DataFrame,
    prepared_pairs: pd.DataFrame,
    train_pairs: pd.DataFrame,
    test_pairs: pd.DataFrame,
    data_prep: dict[str, Any],
) -> tuple[dict[str, Any], pd.DataFrame]:
    """The data-quality report and the full list of dropped pairs with their reasons."""
    dropped_pairs = pd.concat([parse_drops, image_drops], ignore_index=True)
    counts = dropped_pairs["reason"].value_counts()
    kept = prepared_pairs
    report = {
        "records_read": read_stats["records_read"],
        "pairs_total": len(kept) + len(dropped_pairs),
        "pairs_kept": len(kept),
        "dropped": {reason: int(counts.get(reason, 0)) for reason in DROP_REASONS},
        "train_pairs": len(train_pairs),
        "test_pairs": len(test_pairs),
        "train_ids": int(train_pairs["id"].nunique()),
        "test_ids": int(test_pairs["id"].nunique()),
        "distinct_images": int(kept["image"].nunique()),
        "stage_words": {stage: _stats(kept[f"words_{stage}"]) for stage in STAGES},
        "thinking_tokens": {stage: _stats(kept[f"k_{stage}"]) for stage in THINKING_STAGES},
        "settings": {
            "image_root": str(data_prep["image_root"]),
            "image_check": data_prep.get("image_check", "decode"),
            "thinking": asdict(ThinkingConfig(**data_prep["thinking"])),
            "split": dict(data_prep["split"]),
        },
    }
    if len(dropped_pairs):
        logger.warning(
            "Dropped %d of %d pairs: %s",
            len(dropped_pairs),
            report["pairs_total"],
            {k: v for k, v in report["dropped"].items() if v},
        )
    return report, dropped_pairs


def _drops_frame(drops: list[Drop]) -> pd.DataFrame:
    return pd.DataFrame([asdict(drop) for drop in drops], columns=_DROP_COLUMNS).astype(
        {"line": "int64", "pair_index": "Int64"}
    )


def _stats(values: pd.Series) -> dict[str, float]:
    if values.empty:
        return {"count": 0}
    array = values.to_numpy(dtype=float)
    return {
        "count": int(array.size),
        "mean": round(float(array.mean()), 2),
        "min": float(array.min()),
        "p50": float(np.percentile(array, 50)),
        "p95": float(np.percentile(array, 95)),
        "max": float(array.max()),
    }
