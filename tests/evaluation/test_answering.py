"""Answering the test pairs as every evaluation does: the pairs an evaluation's parameters select,
answered in order, the same with or without a warm-up, a missing image named first, and the same
answers from launched processes, each answering its share of the batches."""

import itertools
from functools import partial
from pathlib import Path

import pandas as pd
import pytest
import torch
from peft import get_peft_model
from PIL import Image
from transformers import MllamaForConditionalGeneration

from heima_kedro.evaluation.answering import AnsweringConfig, answer_pairs, batch_share
from heima_kedro.models.adapters import AdapterWeights
from heima_kedro.models.compute import seeded
from heima_kedro.models.lora import LoraSettings, encoder_lora_config

ACCELERATE = Path(__file__).parents[2] / "conf/accelerate"


def _pairs(shapes_pairs, n: int = 4) -> tuple[pd.DataFrame, dict]:
    pairs = pd.DataFrame(
        [(f"p{i}", f"{i}.png", question) for i, (_, question, _) in enumerate(shapes_pairs[:n])],
        columns=["pair_id", "image", "question"],
    )
    images = {
        f"{i}.png": (lambda image=image: image) for i, (image, _, _) in enumerate(shapes_pairs[:n])
    }
    return pairs, images


def test_the_first_limit_pairs_are_answered_in_order_whatever_the_warm_up(
    encoder, processor, shapes_pairs
):
    pairs, images = _pairs(shapes_pairs)
    config = AnsweringConfig.from_params(
        {"limit": 3, "decoding": {"max_new_tokens": 5, "batch_size": 2}}
    )
    answered, answers = answer_pairs(
        model=encoder, processor=processor, pairs=pairs, images=images, config=config
    )
    assert answered["pair_id"].tolist() == ["p0", "p1", "p2"] and len(answers) == 3
    _, warmed = answer_pairs(
        model=encoder, processor=processor, pairs=pairs, images=images, config=config, warm_up=True
    )
    assert [a.token_ids for a in warmed] == [a.token_ids for a in answers]
    assert all(0 < len(a.token_ids) <= 5 for a in answers)


def test_a_missing_image_is_named_before_anything_is_answered(encoder, processor, shapes_pairs):
    pairs, images = _pairs(shapes_pairs)
    del images["2.png"]
    config = AnsweringConfig.from_params({"limit": None, "decoding": {}})
    with pytest.raises(KeyError, match="e.g. '2.png'"):
        answer_pairs(model=encoder, processor=processor, pairs=pairs, images=images, config=config)


@pytest.mark.parametrize("change", [{"limit": 0}, {"limit": 1.5}, {"torch_threads": -1}])
def test_bad_answering_parameters_are_named(change):
    with pytest.raises(ValueError, match=next(iter(change))):
        AnsweringConfig.from_params({"decoding": {}, **change})


def test_the_ranks_share_whole_batches_that_cover_the_pairs_once():
    for pairs, batch_size, processes in itertools.product([0, 1, 5, 12], [1, 2, 4], [1, 2, 3, 8]):
        shares = [
            batch_share(pairs=pairs, batch_size=batch_size, rank=rank, processes=processes)
            for rank in range(processes)
        ]
        assert [i for _, start, stop in shares for i in range(start, stop)] == list(range(pairs))
        for first_batch, start, stop in shares:
            assert start == min(first_batch * batch_size, pairs)
            assert stop == pairs or (stop - start) % batch_size == 0


@pytest.mark.slow
def test_two_launched_processes_answer_as_one_process_does_and_merge_the_adapter(
    tmp_path, encoder, processor, shapes_pairs
):
    """Sampled answers, so a rank that seeded its batches from 0 would draw other tokens."""
    encoder.save_pretrained(tmp_path / "base")

    def base():
        return MllamaForConditionalGeneration.from_pretrained(tmp_path / "base")

    ids = [processor.tokenizer.convert_tokens_to_ids("<THINKING_OF_SUMMARY>")]
    peft = get_peft_model(
        base(), encoder_lora_config(settings=LoraSettings(r=2, alpha=4), thinking_token_ids=ids)
    )
    with torch.no_grad(), seeded(0):  # B starts at zero: a no-op adapter would prove nothing
        for name, weight in peft.named_parameters():
            if "lora_B" in name:
                weight.normal_(0, 0.5)
    adapter = AdapterWeights.from_model(peft)
    rows = []
    for i, (image, question, _) in enumerate(shapes_pairs[:5]):
        image.save(tmp_path / f"{i}.png")
        rows.append((f"p{i}", f"{i}.png", str(tmp_path / f"{i}.png"), question))
    pairs = pd.DataFrame(rows, columns=["pair_id", "image", "image_path", "question"])
    images = {row.image: partial(Image.open, row.image_path) for row in pairs.itertuples()}
    params = {"decoding": {"max_new_tokens": 6, "batch_size": 2, "do_sample": True}}
    everything = range(processor.tokenizer.vocab_size)  # every step's state is captured

    answers = {}
    models = {}
    for where, launch in (("here", {}), ("ranks", {"num_processes": 2})):
        models[where] = base()
        _, answers[where] = answer_pairs(
            model=models[where],
            adapter=adapter,
            processor=processor,
            pairs=pairs,
            images=images,
            config=AnsweringConfig.from_params({**params, "launch": launch}),
            capture_ids=everything,
        )
    here, ranks = answers["here"], answers["ranks"]
    assert [a.token_ids for a in ranks] == [a.token_ids for a in here]
    assert [a.text for a in ranks] == [a.text for a in here]
    assert len({a.token_ids for a in here}) > 1  # the pairs' answers differ: order is checked
    for mine, theirs in zip(ranks, here, strict=True):
        torch.testing.assert_close(mine.captured_states, theirs.captured_states)
    # Both leave the caller's model with the adapter merged, as deployed.
    merged = dict(models["here"].named_parameters())
    assert not any("lora" in name for name, _ in models["ranks"].named_parameters())
    for name, weight in models["ranks"].named_parameters():
        torch.testing.assert_close(weight, merged[name])


@pytest.mark.parametrize("config", ["fsdp.yaml", "deepspeed_zero3.yaml"])
def test_an_evaluation_refuses_a_config_that_shards_the_model(config):
    launch = {"config_file": str(ACCELERATE / config)}
    with pytest.raises(ValueError, match="shards the model.*multi_gpu.yaml"):
        AnsweringConfig.from_params({"decoding": {}, "launch": launch})
