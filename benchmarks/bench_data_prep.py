"""Data-prep throughput: 100,000 LLaVA-CoT-format pairs through the ``data_prep`` nodes.

Writes a LLaVA-CoT file (answers with LLaVA-CoT-like stage lengths; images shared between
pairs, as the issue allows), runs parse → image check → targets → split → report, then the
Parquet writes of the two splits, and prints pairs/s. Figures go to
``benchmarks/results/data_prep.json``.

    python benchmarks/bench_data_prep.py [--pairs 100000] [--images 2000]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

from _results import write_result
from heima_kedro.pipelines.data_prep.nodes import (
    build_targets_node,
    check_images_node,
    parse_conversations_node,
    report_node,
    split_pairs_node,
)

ROOT = Path(__file__).resolve().parents[1]
WORDS = (
    "the image shows a chart with bars lines values labels axis title colour left right "
    "top bottom highest lowest compare question answer therefore because first then"
).split()


def _text(rng: np.random.Generator, n_words: int, tag: str) -> str:
    return f"{tag} " + " ".join(rng.choice(WORDS, size=n_words)) + "."


def write_dataset(folder: Path, *, pairs: int, images: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    image_dir = folder / "images" / "bench"
    image_dir.mkdir(parents=True)
    for i in range(images):
        Image.new("RGB", (64, 64), tuple(int(c) for c in rng.integers(0, 255, 3))).save(
            image_dir / f"{i}.png"
        )
    lines, written, record = [], 0, 0
    while written < pairs:
        n = min(int(rng.integers(1, 4)), pairs - written)
        turns = []
        for j in range(n):
            uid = f"{record}-{j}"  # keeps each stage text unique within its answer
            answer = (
                f"<SUMMARY> {_text(rng, 20, 'Summary ' + uid)} </SUMMARY>\n\n"
                f"<CAPTION> {_text(rng, 50, 'Caption ' + uid)} </CAPTION>\n\n"
                f"<REASONING> {_text(rng, 80, 'Reasoning ' + uid)} </REASONING>\n\n"
                f"<CONCLUSION> Answer {j}. </CONCLUSION>"
            )
            question = (
                "<image>\n" if j == 0 else ""
            ) + f"What does chart {record} show about item {j}?"
            turns += [{"from": "human", "value": question}, {"from": "gpt", "value": answer}]
        lines.append(
            json.dumps(
                {
                    "id": f"bench_{record}",
                    "image": f"bench/{record % images}.png",
                    "conversations": turns,
                }
            )
        )
        written += n
        record += 1
    path = folder / "train.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=100_000)
    parser.add_argument(
        "--images", type=int, default=2_000, help="distinct images shared by the pairs"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        jsonl = write_dataset(folder, pairs=args.pairs, images=args.images)
        params = yaml.safe_load((ROOT / "conf/base/parameters_data_prep.yml").read_text())[
            "data_prep"
        ]
        params["image_root"] = str(folder / "images")
        raw = jsonl.read_text()

        timings: dict[str, float] = {}
        start = time.perf_counter()
        parsed, parse_drops, stats = parse_conversations_node(raw, params)
        timings["parse_s"] = time.perf_counter() - start
        mark = time.perf_counter()
        usable, image_drops = check_images_node(parsed, params)
        timings["check_images_s"] = time.perf_counter() - mark
        mark = time.perf_counter()
        prepared = build_targets_node(usable, params)
        timings["build_targets_s"] = time.perf_counter() - mark
        mark = time.perf_counter()
        train, test = split_pairs_node(prepared, params)
        report, _ = report_node(stats, parse_drops, image_drops, prepared, train, test, params)
        timings["split_and_report_s"] = time.perf_counter() - mark
        timings["nodes_total_s"] = time.perf_counter() - start
        mark = time.perf_counter()
        train.to_parquet(folder / "train.parquet")
        test.to_parquet(folder / "test.parquet")
        timings["parquet_write_s"] = time.perf_counter() - mark

    assert report["pairs_kept"] == args.pairs, report["dropped"]
    figures = {
        "pairs": args.pairs,
        "distinct_images": args.images,
        "jsonl_mb": round(len(raw) / 1e6, 1),
        **{key: round(value, 3) for key, value in timings.items()},
        "pairs_per_s": round(args.pairs / timings["nodes_total_s"]),
        "pairs_per_s_with_writes": round(
            args.pairs / (timings["nodes_total_s"] + timings["parquet_write_s"])
        ),
        "target_s": 15.0,
    }
    headline = {
        "pairs": f"{args.pairs:,}",
        "nodes": f"{timings['nodes_total_s']:.1f} s ({figures['pairs_per_s']:,} pairs/s)",
        "with Parquet writes": f"{timings['nodes_total_s'] + timings['parquet_write_s']:.1f} s",
    }
    out = write_result("data_prep", headline=headline, figures=figures)
    print(
        f"data_prep on {args.pairs:,} pairs ({figures['jsonl_mb']} MB JSONL, "
        f"{args.images:,} images):"
    )
    for key, value in timings.items():
        print(f"  {key:<20} {value:8.2f}")
    print(
        f"  {figures['pairs_per_s']:,} pairs/s (nodes); "
        f"{figures['pairs_per_s_with_writes']:,} pairs/s with Parquet writes"
    )
    print(f"  figures written to {out}")


if __name__ == "__main__":
    main()
