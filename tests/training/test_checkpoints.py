"""A run interrupted mid-way and started again ends exactly where an uninterrupted run ends."""

import json
from functools import partial

import pytest
import torch
from peft import LoraConfig, get_peft_model

from heima_kedro.models.batching import collate, encode_encoder_sample
from heima_kedro.models.factory import build_tiny_encoder
from heima_kedro.training.checkpoints import (
    CheckpointConfig,
    data_digest,
    fingerprint,
    save_checkpoint,
)
from heima_kedro.training.loop import TrainConfig, train

CONFIG = TrainConfig(lr=5e-3, warmup_steps=1, max_steps=7, batch_size=3, grad_accum=2, eval_every=4)


@pytest.fixture(scope="module")
def samples(processor, shapes_pairs):
    return [
        encode_encoder_sample(processor=processor, image=image, question=question, answer=answer)
        for image, question, answer in shapes_pairs[:10]
    ]


class Interrupted(Exception):
    pass


def _interrupt(model):
    raise Interrupted  # like Ctrl-C or a kill at step 4, after the step-4 checkpoint


def _run(tokenizer, encoder_config, samples, **kwargs):
    model = build_tiny_encoder(config=encoder_config, tokenizer=tokenizer)
    result = train(
        model=model,
        samples=samples,
        collate_fn=partial(collate, pad_token_id=tokenizer.pad_token_id),
        config=CONFIG,
        **kwargs,
    )
    return model, result


def test_resumed_run_equals_uninterrupted_run(tmp_path, tokenizer, encoder_config, samples):
    reference, expected = _run(tokenizer, encoder_config, samples)
    checkpoint = CheckpointConfig(directory=tmp_path, every=2, fingerprint="run-a")

    with pytest.raises(Interrupted):
        _run(tokenizer, encoder_config, samples, checkpoint=checkpoint, evaluate=_interrupt)
    assert [p.name for p in tmp_path.iterdir()] == ["step_00000004"]  # only the newest is kept

    resumed, result = _run(tokenizer, encoder_config, samples, checkpoint=checkpoint)
    assert result.losses == expected.losses and result.steps == 7
    for (name, got), (_, want) in zip(
        resumed.state_dict().items(), reference.state_dict().items(), strict=True
    ):
        torch.testing.assert_close(got, want, msg=name)
    assert [p.name for p in tmp_path.iterdir()] == ["step_00000007"]


def test_checkpoint_of_another_run_is_not_resumed(tmp_path, tokenizer, encoder_config, samples):
    with pytest.raises(Interrupted):
        _run(
            tokenizer,
            encoder_config,
            samples,
            checkpoint=CheckpointConfig(directory=tmp_path, every=2, fingerprint="run-a"),
            evaluate=_interrupt,
        )
    _, expected = _run(tokenizer, encoder_config, samples)
    _, result = _run(
        tokenizer,
        encoder_config,
        samples,
        checkpoint=CheckpointConfig(directory=tmp_path, every=2, fingerprint="run-b"),
    )
    assert result.losses == expected.losses  # trained from the start, not from run-a's step 4


def test_data_digest_sees_every_text_tensor_and_where_items_and_columns_end():
    base = data_digest(["a b", "c"], ["d"])
    assert base == data_digest(["a b", "c"], ["d"])
    assert base != data_digest(["a b", "x"], ["d"])
    assert base != data_digest(["a", "b c"], ["d"])
    assert base != data_digest(["a b"], ["c", "d"])
    states = [torch.ones(2, 3), torch.zeros(1, 3)]
    assert data_digest(states) == data_digest([s.clone() for s in states])
    assert data_digest(states) != data_digest([states[0], torch.full((1, 3), 1e-3)])


def test_fingerprint_sees_weights_config_and_data(tokenizer, encoder_config):
    model = build_tiny_encoder(config=encoder_config, tokenizer=tokenizer)
    base = fingerprint({"lr": 1}, ["a", "b"], model=model)
    assert base == fingerprint({"lr": 1}, ["a", "b"], model=model)
    assert base != fingerprint({"lr": 2}, ["a", "b"], model=model)
    assert base != fingerprint({"lr": 1}, ["a", "c"], model=model)
    with torch.no_grad():
        next(model.parameters()).add_(1.0)
    assert base != fingerprint({"lr": 1}, ["a", "b"], model=model)


def test_fingerprint_sees_a_peft_config_that_leaves_the_weights_alone(tokenizer, encoder_config):
    """LoRA's alpha scales the adapter without changing a weight: it must still tell runs apart."""

    def lora(alpha: int) -> str:
        model = build_tiny_encoder(config=encoder_config, tokenizer=tokenizer)
        torch.manual_seed(0)
        peft = get_peft_model(model, LoraConfig(r=2, lora_alpha=alpha, target_modules=["q_proj"]))
        return fingerprint({}, model=peft)

    assert lora(4) == lora(4) != lora(8)


def test_a_lora_stage_resumes_on_the_same_base_saved_as_a_new_version(
    tmp_path, tokenizer, encoder_config
):
    """A rerun of the study saves stage 0 again (the same weights, a new versioned folder): the
    LoRA stages after it must still resume their checkpoints."""
    model = build_tiny_encoder(config=encoder_config, tokenizer=tokenizer)
    prints = []
    for version in ("2026-12-07T10.00.00.000Z", "2026-12-08T10.00.00.000Z"):
        model.save_pretrained(tmp_path / version / "cot_model")
        base = type(model).from_pretrained(tmp_path / version / "cot_model")
        torch.manual_seed(0)
        peft = get_peft_model(base, LoraConfig(r=2, target_modules=["q_proj"]))
        assert version in peft.peft_config["default"].base_model_name_or_path
        prints.append(fingerprint({}, model=peft))
    assert prints[0] == prints[1]


def test_save_replaces_another_runs_checkpoint_of_the_same_step(tmp_path):
    weights = {"weight": torch.ones(2, 2)}
    for run in ("run-a", "run-b"):
        save_checkpoint(
            config=CheckpointConfig(directory=tmp_path, every=1, fingerprint=run),
            step=3,
            weights=weights,
            state={"step": 3},
        )
    meta = json.loads((tmp_path / "step_00000003" / "meta.json").read_text())
    assert meta["fingerprint"] == "run-b"
