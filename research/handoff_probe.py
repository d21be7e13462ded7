"""What do the hand-off states hold? Linear probes of the states the Heima Decoders read.

Works on a project kept by ``bench_study.py --keep DIR`` (or any project whose ``encoder_training``
has run on ShapesCoT). Runs the frozen stage-4 encoder teacher-forced over the train and test
pairs exactly as ``decoder_training`` does, fits a logistic regression per label (each cell's
colour, shape and object; the object count; the answer) on the training pairs' states and scores
it on the test pairs' states, beside always answering the commonest label. It also gives ROUGE-L
ceilings of the caption and the reasoning for a scene known in part, and what the caption decoder
of the latest ``reconstruction_records`` named right. ``--layers`` probes every layer's state, at
the emitting position and at the thinking token's own. What it found: docs/research/decoders.md.

    .venv/bin/python research/handoff_probe.py --project DIR --out /tmp/handoff_probe.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from heima_kedro.data.conversations import IMAGE_PLACEHOLDER
from heima_kedro.data.shapes_cot import (
    COLOURS,
    COLUMNS,
    ROWS,
    SHAPES,
    SIZES,
    Question,
    Scene,
    ShapesCoTConfig,
    answer_question,
    answer_rng,
    example_for_image,
    write_caption,
    write_reasoning,
)
from heima_kedro.evaluation.probes import CELL_LABELS, cell_labels, cell_probe, linear_probe
from heima_kedro.evaluation.text_metrics import Scorer
from heima_kedro.models.batching import collate
from heima_kedro.models.handoff import collect_thinking_states
from heima_kedro.models.tokenizer import pad_token_id, thinking_token_ids
from heima_kedro.training.samples import EncoderSamples
from stage3_spike import shapes_config

#: What each ceiling's text is written for; for a redraw of the true layout, which attributes of
#: the true objects it keeps (None: written otherwise, see ``rouge_l_ceilings``).
CEILING_SCENES: dict[str, tuple[str, ...] | None] = {
    "true scene": None,
    "true layout, sizes and colours": ("size", "colour"),
    "true layout, sizes and shapes": ("size", "shape"),
    "true layout and sizes": ("size",),
    "true layout": (),
    "true layout and sizes, only the sure words": None,
    "another scene": None,
}
#: Texts written for other colours and shapes whose common words make the "sure words" text.
SURE_WORD_DRAWS = 6


def _with_layout(
    rng: random.Random, *, scene: Scene, question: Question, keep: tuple[str, ...]
) -> Scene:
    """The scene's objects in their cells (with the attributes in ``keep``), every other
    attribute drawn again until the names are unique and the question still has an answer."""
    drawn = {"colour": list(COLOURS), "shape": list(SHAPES), "size": list(SIZES)}
    for _ in range(1000):
        objects = tuple(
            dataclasses.replace(
                obj,
                **{name: rng.choice(values) for name, values in drawn.items() if name not in keep},
            )
            for obj in scene.objects
        )
        if len({obj.name for obj in objects}) < len(objects):
            continue
        candidate = Scene(objects=objects)
        try:
            answer_question(candidate, question)
            write_reasoning(answer_rng(random.Random(0), wording="fixed"), candidate, question)
        except ValueError:
            continue
        return candidate
    raise RuntimeError(f"no scene with this layout answers {question}")


def _another_scene(
    *, index: int, question: Question, scenes: list[Scene], images: list[str]
) -> Scene:
    """The scene of the pair half the set away from ``index`` (or the next one after it) that
    comes from another image and in which ``question`` has an answer."""
    for offset in range(len(scenes)):
        j = (index + len(scenes) // 2 + offset) % len(scenes)
        if images[j] == images[index]:  # pairs of one record share its scene
            continue
        try:
            answer_question(scenes[j], question)
        except ValueError:
            continue
        return scenes[j]
    raise RuntimeError(f"no other scene answers {question}")


def _write(stage: str, *, scene: Scene, question: Question, seed: str, wording: str) -> str:
    """The caption or reasoning of ``scene`` for ``question``, worded by the draws of ``seed``."""
    rng = answer_rng(random.Random(seed), wording=wording)
    return (
        write_caption(rng, scene) if stage == "caption" else write_reasoning(rng, scene, question)
    )


def _common_words(texts: list[str]) -> str:
    """The words (as ROUGE tokenises them) that every text has, in order: their longest common
    subsequence, what a decoder unsure of some attributes could write without guessing them."""
    common = re.findall(r"[a-z0-9]+", texts[0].lower())
    for text in texts[1:]:
        words = re.findall(r"[a-z0-9]+", text.lower())
        length = [[0] * (len(words) + 1) for _ in range(len(common) + 1)]
        for i, a in enumerate(common):
            for j, b in enumerate(words):
                length[i + 1][j + 1] = (
                    length[i][j] + 1 if a == b else max(length[i][j + 1], length[i + 1][j])
                )
        kept, i, j = [], len(common), len(words)
        while i and j:
            if common[i - 1] == words[j - 1]:
                kept.append(common[i - 1])
                i, j = i - 1, j - 1
            elif length[i - 1][j] >= length[i][j - 1]:
                i -= 1
            else:
                j -= 1
        common = kept[::-1]
    return " ".join(common)


def rouge_l_ceilings(
    *, pairs: pd.DataFrame, config: ShapesCoTConfig
) -> dict[str, dict[str, float]]:
    """ROUGE-L of each true caption and reasoning against the same stage written for: the true
    scene (a fresh wording draw under "drawn", the true text itself under "fixed"); the true
    layout with some of the objects' attributes drawn again (``CEILING_SCENES``); only the words
    common to texts for the true layout and sizes with colours and shapes drawn again
    ``SURE_WORD_DRAWS`` times (a decoder that leaves out what it cannot know); and another
    image's scene (the shuffled control's best; another pair's scene when the question has no
    answer in it). Each written for the pair's own question, in one wording draw per pair: what
    a decoder could write that knew that much of the scene exactly."""
    examples = [example_for_image(config=config, image=image) for image in pairs["image"]]
    questions = []
    for example, text in zip(examples, pairs["question"], strict=True):
        by_text = {
            written: q for q, (written, _) in zip(example.questions, example.pairs, strict=True)
        }
        questions.append(by_text[text.replace(IMAGE_PLACEHOLDER, "").strip()])
    scenes = [example.scene for example in examples]
    images = list(pairs["image"])
    rng, sure_rng = random.Random("ceiling"), random.Random("ceiling:sure words")
    texts: dict[str, dict[str, list[str]]] = {
        name: {"caption": [], "reasoning": []} for name in CEILING_SCENES
    }
    for i, (scene, question) in enumerate(zip(scenes, questions, strict=True)):
        written = {
            name: _with_layout(rng, scene=scene, question=question, keep=keep)
            for name, keep in CEILING_SCENES.items()
            if keep is not None
        }
        written["true scene"] = scene
        written["another scene"] = _another_scene(
            index=i, question=question, scenes=scenes, images=images
        )
        unsure = [
            _with_layout(sure_rng, scene=scene, question=question, keep=("size",))
            for _ in range(SURE_WORD_DRAWS)
        ]
        for stage in ("caption", "reasoning"):
            wording = {"seed": f"ceiling:{i}", "wording": config.wording}
            for name, described in written.items():
                texts[name][stage].append(
                    _write(stage, scene=described, question=question, **wording)
                )
            sure = _common_words(
                [_write(stage, scene=u, question=question, **wording) for u in unsure]
            )
            texts["true layout and sizes, only the sure words"][stage].append(sure)
    scorer = Scorer()
    ceilings = {}
    for stage in ("caption", "reasoning"):
        truth = list(pairs[stage])
        ceilings[stage] = {
            name: round(
                float(
                    np.mean(
                        scorer.score(predictions=texts[name][stage], references=truth)["rouge_l"]
                    )
                ),
                3,
            )
            for name in CEILING_SCENES
        }
    return ceilings


_NAMED_OBJECT = re.compile(
    rf"\b(?P<position>(?:{'|'.join(ROWS)}) (?:{'|'.join(COLUMNS)})|centre)\b[^.]*?"
    rf"\b(?P<size>{'|'.join(SIZES)}) (?P<colour>{'|'.join(COLOURS)}) "
    rf"(?P<shape>{'|'.join(SHAPES)})\b"
)


def named_objects(caption: str) -> dict[str, tuple[str, str, str]]:
    """The (size, colour, shape) a ShapesCoT caption names in each cell, in any wording."""
    return {
        match["position"]: (match["size"], match["colour"], match["shape"])
        for sentence in caption.split(". ")
        if (match := _NAMED_OBJECT.search(sentence))
    }


def caption_readout(records: pd.DataFrame) -> dict[str, dict[str, float]]:
    """What the caption decoder named right under each condition (real, shuffled, zeros): the
    occupied cells it names and the empty cells it names (both per occupied cell), and, on the
    occupied cells it names, how often the size, the colour and the shape are right."""
    readout = {}
    captions = records[records["stage"] == "caption"]
    for condition, rows in captions.groupby("condition"):
        truths = [named_objects(text) for text in rows["reference"]]
        written = [named_objects(text) for text in rows["prediction"].fillna("")]
        occupied = sum(len(truth) for truth in truths)
        pairs = list(zip(written, truths, strict=True))
        hits = [
            (said[cell], truth[cell]) for said, truth in pairs for cell in said if cell in truth
        ]
        spurious = sum(len(set(said) - set(truth)) for said, truth in pairs)
        readout[condition] = {
            "cells_named": round(len(hits) / occupied, 3),
            "empty_cells_named": round(spurious / occupied, 3),
            **{
                attribute: round(float(np.mean([said[k] == truth[k] for said, truth in hits])), 3)
                for k, attribute in enumerate(("size", "colour", "shape"))
            },
        }
    return readout


def layer_states(
    *,
    encoder: torch.nn.Module,
    samples: EncoderSamples,
    pad_id: int,
    token_ids: dict[str, int],
    batch_size: int,
) -> dict[tuple[str, str], np.ndarray]:
    """Per stage and position ("emit": the state that emits the stage's first thinking token;
    "token": the thinking token's own), every layer's state: ``(pairs, layers + 1, width)``."""
    loader = DataLoader(
        samples,
        batch_size=batch_size,
        shuffle=False,
        collate_fn=lambda batch: collate(batch, pad_token_id=pad_id),
    )
    collected: dict[tuple[str, str], list[np.ndarray]] = {
        (stage, position): [] for stage in token_ids for position in ("emit", "token")
    }
    encoder.eval()
    for batch in loader:
        with torch.no_grad():
            inputs = {key: value for key, value in batch.items() if key != "labels"}
            output = encoder(**inputs, output_hidden_states=True, use_cache=False)
        layers = torch.stack(output.hidden_states, dim=1)
        for stage, token_id in token_ids.items():
            for row, ids in enumerate(batch["input_ids"]):
                token = int((ids == token_id).nonzero()[0, 0])
                collected[(stage, "emit")].append(layers[row, :, token - 1].numpy())
                collected[(stage, "token")].append(layers[row, :, token].numpy())
    return {key: np.stack(states) for key, states in collected.items()}


def probe_layers(
    *,
    name: str,
    fit: np.ndarray,
    test: np.ndarray,
    cells: dict[str, dict[str, np.ndarray]],
    splits: dict[str, pd.DataFrame],
) -> list[dict[str, float]]:
    """``cell_object`` (mean over the cells) and ``conclusion`` probe accuracy of each layer
    (``name`` labels the progress bar)."""
    scores = []
    for layer in tqdm(range(fit.shape[1]), desc=name, unit="layer"):
        cell_object = cell_probe(
            label="cell_object", fit=fit[:, layer], test=test[:, layer], cells=cells
        )
        conclusion = linear_probe(
            fit_states=fit[:, layer],
            fit_labels=list(splits["train"]["conclusion"]),
            test_states=test[:, layer],
            test_labels=list(splits["test"]["conclusion"]),
        ).accuracy
        scores.append(
            {"cell_object": round(cell_object.accuracy, 3), "conclusion": round(conclusion, 3)}
        )
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--project", type=Path, required=True, help="a project whose encoder_training has run"
    )
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("/tmp/handoff_probe.json"))
    parser.add_argument(
        "--layers",
        action="store_true",
        help="also probe every layer's caption and reasoning states (emitting and token positions)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    bootstrap_project(args.project)
    with KedroSession.create(project_path=args.project) as session:
        context = session.load_context()
        catalog, params = context.catalog, context.params
        encoder = catalog.load("stage_4.adapter").merged_into(catalog.load("cot_model"))
        processor = catalog.load("processor")
        images = dict(catalog.load("encoder_images"))
        splits = {"train": catalog.load("train_pairs"), "test": catalog.load("test_pairs")}
        records = (
            catalog.load("reconstruction_records")
            if catalog.exists("reconstruction_records")
            else None
        )
    token_ids = thinking_token_ids(processor.tokenizer, params["data_prep"]["thinking"]["tokens"])
    config = shapes_config(params)

    started = time.perf_counter()
    states, per_layer = {}, {}
    for split, pairs in splits.items():
        samples = EncoderSamples(
            pairs=pairs,
            images=images,
            processor=processor,
            target="compress_all",
            max_length=params["decoder_training"]["states"]["max_length"],
        )
        collected = collect_thinking_states(
            encoder=encoder,
            samples=samples,
            pad_token_id=pad_token_id(processor.tokenizer),
            token_ids=token_ids,
            batch_size=args.batch_size,
            device=torch.device("cpu"),
        )
        # The first thinking token of each stage (the default has one per stage).
        states[split] = {
            stage: torch.stack([s[0] for s in per_pair]).numpy()
            for stage, per_pair in collected.items()
        }
        if args.layers:
            per_layer[split] = layer_states(
                encoder=encoder,
                samples=samples,
                pad_id=pad_token_id(processor.tokenizer),
                token_ids={stage: token_ids[stage] for stage in ("caption", "reasoning")},
                batch_size=args.batch_size,
            )
    cells = {split: cell_labels(pairs=pairs, config=config) for split, pairs in splits.items()}
    labels = {
        split: {
            "objects": list((cells[split]["cell_object"] != "").sum(axis=1)),
            "conclusion": list(pairs["conclusion"]),
        }
        for split, pairs in splits.items()
    }

    report = {"project": str(args.project), "train_pairs": len(splits["train"])}
    report["test_pairs"] = len(splits["test"])
    for stage in token_ids:
        fit, test = states["train"][stage], states["test"][stage]
        scores = {}
        for name in CELL_LABELS:
            scores[name] = cell_probe(label=name, fit=fit, test=test, cells=cells)
        for name in ("objects", "conclusion"):
            scores[name] = linear_probe(
                fit_states=fit,
                fit_labels=labels["train"][name],
                test_states=test,
                test_labels=labels["test"][name],
            )
        report[stage] = {
            name: {"accuracy": round(score.accuracy, 3), "majority": round(score.majority, 3)}
            for name, score in scores.items()
        }
    if args.layers:
        report["layers"] = {
            f"{stage}/{position}": probe_layers(
                name=f"{stage}/{position}",
                fit=per_layer["train"][(stage, position)],
                test=per_layer["test"][(stage, position)],
                cells=cells,
                splits=splits,
            )
            for stage, position in per_layer["train"]
        }
    report["rouge_l_ceilings"] = rouge_l_ceilings(pairs=splits["test"], config=config)
    if records is not None:
        report["caption_readout"] = caption_readout(records)
    report["seconds"] = round(time.perf_counter() - started, 1)
    args.out.write_text(json.dumps(report, indent=1))
    print(f"{'stage':<10} {'label':<11} {'probe':>6} {'commonest':>10}")
    for stage in token_ids:
        for name, score in report[stage].items():
            print(f"{stage:<10} {name:<11} {score['accuracy']:>6.3f} {score['majority']:>10.3f}")
    for name, scores in report.get("layers", {}).items():
        print(
            f"{name:<16} cell_object by layer "
            + " ".join(f"{s['cell_object']:.3f}" for s in scores)
        )
        print(
            f"{'':<16} conclusion by layer  " + " ".join(f"{s['conclusion']:.3f}" for s in scores)
        )
    ceilings = report["rouge_l_ceilings"]
    print(f"ROUGE-L of the true text against one written for ({config.wording} wording):")
    print(f"  {'':<44} {'caption':>8} {'reasoning':>10}")
    for name in CEILING_SCENES:
        print(
            f"  {name:<44} {ceilings['caption'][name]:>8.3f} {ceilings['reasoning'][name]:>10.3f}"
        )
    if "caption_readout" in report:
        print("what the caption decoder named (latest reconstruction_eval), per condition:")
        for condition, figures in report["caption_readout"].items():
            print(
                f"  {condition:<9} "
                + ", ".join(f"{name} {value:.2f}" for name, value in figures.items())
            )
    print(f"{report['seconds']:.0f} s; wrote {args.out}")


if __name__ == "__main__":
    main()
