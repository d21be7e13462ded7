"""Stage-0 learnability spike: how fast does a tiny Mllama learn ShapesCoT on a 2-core CPU?

Trains the tiny encoder from scratch (full fine-tune, fp32) on ``full_cot`` answers and, every
``--eval-every`` steps, greedily decodes held-out pairs (images from another seed): conclusion
accuracy, well-formed answers, captions naming exactly the reference's cells and objects in order
(``caption``), reference (cell, object) mentions found (``objects``), right comparison verdicts
(``verdicts``), per question type. What it found: docs/research/stage0.md.

    .venv/bin/python research/stage0_spike.py --encoder '{"vision_position_std": 1.0}' \
        --train '{"max_steps": 800, "batch_size": 16, "lr": 3e-3, "warmup_steps": 30,
                  "eval_every": 400}'
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import time
from dataclasses import asdict
from functools import partial

import torch
from transformers import PreTrainedTokenizerFast

from heima_kedro.data.cot import StageError, parse_stages
from heima_kedro.data.shapes_cot import (
    COLOURS,
    SHAPES,
    SIZES,
    ShapesCoTConfig,
    make_example,
    render_scene,
)
from heima_kedro.evaluation.answers import conclusion_accuracy, extract_conclusion, well_formed_rate
from heima_kedro.models.batching import collate, encode_encoder_sample
from heima_kedro.models.factory import TinyEncoderConfig, build_processor, build_tiny_encoder
from heima_kedro.models.generation import DecodingConfig, generate_with_states
from heima_kedro.models.tokenizer import TokenizerConfig, train_tokenizer
from heima_kedro.training.loop import TrainConfig, train

_OBJECT = re.compile(
    rf"(?:{'|'.join(SIZES)}) (?:{'|'.join(COLOURS)}) (?:{'|'.join(SHAPES)})"
    r"|(?:top|middle|bottom) (?:left|centre|right)|centre"
)


def caption_accuracy(*, predictions: list[str], answers: list[str]) -> float:
    """Share of predictions whose caption names the reference's objects and cells, in order."""

    def objects(answer: str) -> list[str] | None:
        try:
            return _OBJECT.findall(parse_stages(answer)["caption"].text)
        except StageError:
            return None

    hits = [objects(p) == objects(a) for p, a in zip(predictions, answers, strict=True)]
    return sum(hits) / len(hits)


def object_recall(*, predictions: list[str], answers: list[str]) -> float:
    """Share of the reference's (cell, object) mentions that the predicted caption also makes."""

    def mentions(answer: str) -> set[str]:
        try:
            text = parse_stages(answer)["caption"].text
        except StageError:
            return set()
        found = _OBJECT.findall(text)
        return {" ".join(found[i : i + 2]) for i in range(0, len(found) - 1, 2)}

    found = total = 0
    for prediction, answer in zip(predictions, answers, strict=True):
        reference = mentions(answer)
        found += len(reference & mentions(prediction))
        total += len(reference)
    return found / max(total, 1)


_VERDICT = re.compile(r"(?:compare |, )([a-z]+) ([a-z]+) (match|differ)")


def verdict_accuracy(*, predictions: list[str]) -> float:
    """Share of the reasoning's "compare A T match|differ" tests whose verdict is right."""
    tests = [t for p in predictions for t in _VERDICT.findall(p)]
    return sum((v == "match") == (a == t) for a, t, v in tests) / max(len(tests), 1)


def pairs(*, n_pairs: int, seed: int, data: dict) -> list[tuple]:
    """The first ``n_pairs`` (image, question, answer, conclusion, question type) of a seed."""
    config = ShapesCoTConfig(**{**data, "n_records": n_pairs, "seed": seed})
    out = []
    for index in range(config.n_records):
        example = make_example(config=config, index=index)
        image = render_scene(example.scene, image_size=config.image_size)
        for question, (text, answer) in zip(example.questions, example.pairs, strict=True):
            out.append((image, text, answer, extract_conclusion(answer), question.kind))
    return out[:n_pairs]


def _cells(answer: str) -> dict[str, tuple[str, ...]] | None:
    """The caption's {cell: (size, colour, shape)}, or None when it has no caption."""
    try:
        text = parse_stages(answer)["caption"].text
    except StageError:
        return None
    found = _OBJECT.findall(text)
    return {
        found[i]: tuple(found[i + 1].split())
        for i in range(0, len(found) - 1, 2)
        if " " in found[i + 1] and len(found[i + 1].split()) == 3
    }


def breakdown(*, predictions: list[str], test_pairs: list[tuple]) -> dict:
    """Accuracy per question type, and caption errors per attribute of the reference objects."""
    per_type: dict[str, list[bool]] = {}
    for prediction, pair in zip(predictions, test_pairs, strict=True):
        per_type.setdefault(pair[4], []).append(extract_conclusion(prediction) == pair[3])
    errors = dict.fromkeys(("objects", "missing", "size", "colour", "shape", "extra", "count"), 0)
    for prediction, pair in zip(predictions, test_pairs, strict=True):
        reference, predicted = _cells(pair[2]), _cells(prediction) or {}
        errors["objects"] += len(reference)
        errors["extra"] += len(set(predicted) - set(reference))
        errors["count"] += len(predicted) != len(reference)
        for cell, attributes in reference.items():
            if cell not in predicted:
                errors["missing"] += 1
                continue
            for name, want, got in zip(
                ("size", "colour", "shape"), attributes, predicted[cell], strict=True
            ):
                errors[name] += want != got
    return {
        "per_type": {
            kind: round(sum(hits) / len(hits), 2) for kind, hits in sorted(per_type.items())
        },
        "errors": errors,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-pairs", type=int, default=3000)
    parser.add_argument("--test-pairs", type=int, default=150)
    parser.add_argument("--vocab-size", type=int, default=1024)
    parser.add_argument(
        "--tokenizer", help="load this saved tokenizer folder instead of training one"
    )
    parser.add_argument("--encoder", default="{}", help="JSON overrides of TinyEncoderConfig")
    parser.add_argument("--train", default="{}", help="JSON overrides of TrainConfig")
    parser.add_argument("--eval-on-train", action="store_true")
    parser.add_argument("--data", default="{}", help="JSON overrides of ShapesCoTConfig")
    parser.add_argument("--max-new-tokens", type=int, default=320)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="/tmp/stage0_spike.json")
    parser.add_argument("--save-model", help="save the trained model's state dict here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING)

    started = time.perf_counter()
    data = json.loads(args.data)
    train_pairs = pairs(n_pairs=args.train_pairs, seed=0, data=data)
    test_pairs = pairs(n_pairs=args.test_pairs, seed=1, data=data)
    if args.eval_on_train:
        test_pairs = train_pairs[: args.test_pairs]
    if args.tokenizer:
        tokenizer = PreTrainedTokenizerFast.from_pretrained(args.tokenizer)
    else:
        tokenizer = train_tokenizer(
            texts=[text for _, question, answer, *_ in train_pairs for text in (question, answer)],
            config=TokenizerConfig(vocab_size=args.vocab_size),
        )
    encoder_config = TinyEncoderConfig(**json.loads(args.encoder))
    train_config = TrainConfig(**json.loads(args.train))
    processor = build_processor(tokenizer=tokenizer, image_size=encoder_config.image_size)
    model = build_tiny_encoder(config=encoder_config, tokenizer=tokenizer)
    samples = [
        encode_encoder_sample(processor=processor, image=image, question=question, answer=answer)
        for image, question, answer, *_ in train_pairs
    ]
    lengths = [len(s["input_ids"]) for s in samples]
    prepared = time.perf_counter() - started
    print(
        f"prepared {len(samples)} samples in {prepared:.1f}s; vocab {len(tokenizer)}; "
        f"tokens/sample mean {sum(lengths) / len(lengths):.0f} max {max(lengths)}; "
        f"params {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M",
        flush=True,
    )

    def evaluate(trained: torch.nn.Module) -> dict:
        tick = time.perf_counter()
        generations = generate_with_states(
            model=trained,
            processor=processor,
            images=[p[0] for p in test_pairs],
            questions=[p[1] for p in test_pairs],
            decoding=DecodingConfig(max_new_tokens=args.max_new_tokens, batch_size=50),
        )
        predictions = [generation.text for generation in generations]
        scores = {
            "accuracy": conclusion_accuracy(
                predictions=predictions, references=[p[3] for p in test_pairs]
            ),
            "well_formed": well_formed_rate(predictions=predictions),
            "caption": caption_accuracy(
                predictions=predictions, answers=[p[2] for p in test_pairs]
            ),
            "objects": object_recall(predictions=predictions, answers=[p[2] for p in test_pairs]),
            "verdicts": verdict_accuracy(predictions=predictions),
            "eval_seconds": time.perf_counter() - tick,
            **breakdown(predictions=predictions, test_pairs=test_pairs),
            "predictions": predictions,
        }
        print({k: v for k, v in scores.items() if k != "predictions"}, flush=True)
        return scores

    result = train(
        model=model,
        samples=samples,
        collate_fn=partial(collate, pad_token_id=tokenizer.pad_token_id),
        config=train_config,
        evaluate=evaluate,
    )
    for evaluation in result.evaluations:
        print(
            f"step {evaluation['step']:4d}  train {evaluation['train_seconds']:6.1f}s  "
            f"acc {evaluation['accuracy']:.3f}  well-formed {evaluation['well_formed']:.3f}  "
            f"caption {evaluation['caption']:.3f}  objects {evaluation['objects']:.3f}  "
            f"verdicts {evaluation['verdicts']:.2f}"
        )
    print(f"tokens/s {result.tokens_per_second:.0f}; final loss {result.losses[-1]:.3f}")
    print("example:", result.evaluations[-1]["predictions"][0])
    if args.save_model:
        torch.save(model.state_dict(), args.save_model)
    with open(args.out, "w") as handle:
        json.dump(
            {
                "data": data,
                "encoder": asdict(encoder_config),
                "train": asdict(train_config),
                "vocab_size": len(tokenizer),
                "prepare_seconds": prepared,
                "tokens_per_second": result.tokens_per_second,
                "losses": result.losses,
                "evaluations": result.evaluations,
            },
            handle,
            indent=1,
        )


if __name__ == "__main__":
    main()
