"""Node of ``synthetic_data``: ShapesCoT as catalog-ready JSONL text and PIL images."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import fields

from PIL import Image

from heima_kedro.data.shapes_cot import ShapesCoTConfig, generate_shapes_cot

logger = logging.getLogger(__name__)

_CONFIG_KEYS = frozenset(field.name for field in fields(ShapesCoTConfig))


def generate_shapes_cot_node(synthetic_data: dict) -> tuple[str, dict[str, Image.Image]]:
    """Generate ShapesCoT; refuse when disabled so real data in ``raw_conversations`` survives."""
    params = dict(synthetic_data)
    if not params.pop("enabled", True):
        raise ValueError(
            "synthetic_data writes the embedded ShapesCoT dataset into `raw_conversations` and "
            "is disabled in this environment (synthetic_data.enabled: false) so it cannot "
            "overwrite real data; run the pipelines from data_prep on instead, e.g. "
            "`kedro run --env llava_cot --pipelines data_prep`."
        )
    unknown = sorted(set(params) - _CONFIG_KEYS)
    if unknown:
        raise ValueError(f"unknown synthetic_data parameters: {', '.join(unknown)}")
    start = time.perf_counter()
    records, images = generate_shapes_cot(config=ShapesCoTConfig(**params))
    text = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
    pairs = sum(len(record["conversations"]) // 2 for record in records)
    logger.info(
        "ShapesCoT: %d records, %d pairs in %.2f s",
        len(records),
        pairs,
        time.perf_counter() - start,
    )
    return text, images
