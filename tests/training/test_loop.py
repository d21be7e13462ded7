import math
from functools import partial

import pytest
import torch
from mlflow.tracking import MlflowClient

from heima_kedro.models.batching import collate, encode_encoder_sample
from heima_kedro.models.factory import build_tiny_encoder
from heima_kedro.training.checkpoints import CheckpointConfig
from heima_kedro.training.live_metrics import LiveMetrics
from heima_kedro.training.loop import (
    TrainConfig,
    _EpochShuffle,
    cosine_lr,
    train,
)


@pytest.fixture(scope="module")
def samples(processor, shapes_pairs):
    return [
        encode_encoder_sample(processor=processor, image=image, question=question, answer=answer)
        for image, question, answer in shapes_pairs[:8]
    ]


def test_cosine_schedule_warms_up_then_decays_to_the_floor():
    lrs = [
        cosine_lr(s, lr=1.0, warmup_steps=4, total_steps=20, min_lr_ratio=0.1) for s in range(20)
    ]
    assert lrs[:4] == [0.25, 0.5, 0.75, 1.0]
    assert all(a >= b for a, b in zip(lrs[3:], lrs[4:], strict=False))
    assert lrs[-1] == pytest.approx(0.1)
    assert cosine_lr(12, lr=1.0, warmup_steps=4, total_steps=21, min_lr_ratio=0.1) == pytest.approx(
        0.55
    )


def test_training_overfits_a_few_samples(encoder, samples, tokenizer):
    config = TrainConfig(lr=1e-2, warmup_steps=2, max_steps=60, batch_size=4, log_every=10)
    result = train(
        model=encoder,
        samples=samples,
        collate_fn=partial(collate, pad_token_id=tokenizer.pad_token_id),
        config=config,
    )
    assert len(result.losses) == result.steps == 60
    assert result.losses[-1] < 0.5 * result.losses[0]
    assert result.tokens > result.target_tokens > 0
    assert result.tokens_per_second > 0 and not encoder.training


def test_training_is_deterministic(tokenizer, samples, encoder_config):
    config = TrainConfig(max_steps=3, batch_size=4, warmup_steps=1)
    runs = [
        train(
            model=build_tiny_encoder(config=encoder_config, tokenizer=tokenizer),
            samples=samples,
            collate_fn=partial(collate, pad_token_id=tokenizer.pad_token_id),
            config=config,
        ).losses
        for _ in range(2)
    ]
    assert runs[0] == runs[1]


def test_loss_is_normalised_by_target_tokens_across_accumulation(
    tokenizer, samples, encoder_config
):
    """One batch of 4 and two accumulated micro-batches of 2 are the same step, and the step's
    loss is the model's own mean next-token loss over those 4 samples."""
    four = samples[:4]

    def first_loss(batch_size: int, grad_accum: int) -> float:
        model = build_tiny_encoder(config=encoder_config, tokenizer=tokenizer)
        config = TrainConfig(
            max_steps=1, batch_size=batch_size, grad_accum=grad_accum, warmup_steps=0
        )
        return train(
            model=model,
            samples=four,
            collate_fn=partial(collate, pad_token_id=tokenizer.pad_token_id),
            config=config,
        ).losses[0]

    whole, accumulated = first_loss(4, 1), first_loss(2, 2)
    assert whole == pytest.approx(accumulated, rel=1e-5)
    batch = collate(four, pad_token_id=tokenizer.pad_token_id)
    model = build_tiny_encoder(config=encoder_config, tokenizer=tokenizer)
    with torch.no_grad():
        assert model(**batch).loss.item() == pytest.approx(whole, rel=1e-5)


def test_evaluate_runs_every_eval_every_steps_and_at_the_end(encoder, samples, tokenizer):
    calls = []

    def evaluate(model):
        calls.append(model.training)
        return {"score": len(calls)}

    config = TrainConfig(max_steps=5, batch_size=4, eval_every=2, warmup_steps=0)
    result = train(
        model=encoder,
        samples=samples,
        collate_fn=partial(collate, pad_token_id=tokenizer.pad_token_id),
        config=config,
        evaluate=evaluate,
    )
    assert [e["step"] for e in result.evaluations] == [2, 4, 5]
    assert [e["score"] for e in result.evaluations] == [1, 2, 3]
    assert calls == [False, False, False]
    assert result.evaluations[0]["train_seconds"] <= result.evaluations[-1]["train_seconds"]


def test_epochs_set_the_number_of_steps(encoder, samples, tokenizer):
    config = TrainConfig(epochs=2, batch_size=3, grad_accum=2)
    result = train(
        model=encoder,
        samples=samples,
        collate_fn=partial(collate, pad_token_id=tokenizer.pad_token_id),
        config=config,
    )
    assert result.steps == 2 * math.ceil(math.ceil(8 / 3) / 2)


def test_group_by_length_pads_less_and_still_uses_every_sample_once_per_epoch():
    lengths = torch.randint(20, 300, (1000,), generator=torch.Generator().manual_seed(0)).tolist()
    batch = 16

    def padded(sampler: _EpochShuffle) -> int:
        order = list(sampler)
        assert sorted(order) == list(range(len(lengths)))
        return sum(
            max(lengths[i] for i in order[k : k + batch]) * len(order[k : k + batch])
            for k in range(0, len(order), batch)
        )

    plain = _EpochShuffle(len(lengths), 0)
    group = 50 * batch
    grouped = _EpochShuffle(len(lengths), 0, lengths=lengths, group=group)
    assert padded(grouped) < 0.8 * padded(plain)
    first = list(grouped)
    assert first == list(_EpochShuffle(len(lengths), 0, lengths=lengths, group=group))
    grouped.epoch = 1
    assert list(grouped) != first
    # only reorders within runs of `group` samples of the plain shuffle
    plain_order = list(plain)
    for k in range(0, len(lengths), group):
        assert set(first[k : k + group]) == set(plain_order[k : k + group])
        run = [lengths[i] for i in first[k : k + group]]
        assert run == sorted(run, reverse=True)


def test_group_by_length_trains_deterministically(tokenizer, samples, encoder_config):
    config = TrainConfig(max_steps=3, batch_size=2, warmup_steps=1, length_group_batches=2)
    losses = []
    for _ in range(2):
        model = build_tiny_encoder(config=encoder_config, tokenizer=tokenizer)
        result = train(
            model=model,
            samples=samples,
            collate_fn=partial(collate, pad_token_id=tokenizer.pad_token_id),
            config=config,
        )
        losses.append(result.losses)
    assert losses[0] == losses[1]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"lr": 0}, "lr"),
        ({"batch_size": 0}, "batch_size"),
        ({"grad_accum": 0}, "grad_accum"),
        ({"max_steps": 0}, "max_steps"),
        ({"warmup_steps": -1}, "warmup_steps"),
        ({"clip": 0}, "clip"),
        ({"betas": (0.9, 1.0)}, "betas"),
        ({"betas": (0.9,)}, "betas"),
        ({"min_lr_ratio": 2}, "min_lr_ratio"),
        ({"weight_decay": -1}, "weight_decay"),
        ({"length_group_batches": -1}, "length_group_batches"),
        ({"num_workers": -1}, "num_workers"),
    ],
)
def test_config_rejects_bad_values(kwargs, field):
    with pytest.raises(ValueError, match=f"train.{field}"):
        TrainConfig(**kwargs)


def test_losses_logged_every_few_steps_are_every_steps_own_loss(tokenizer, samples, encoder_config):
    """The loss reaches the host only at log steps; the history still holds each step's loss."""
    runs = []
    for log_every in (1, 4):
        model = build_tiny_encoder(config=encoder_config, tokenizer=tokenizer)
        config = TrainConfig(max_steps=6, batch_size=4, warmup_steps=1, log_every=log_every)
        runs.append(
            train(
                model=model,
                samples=samples,
                config=config,
                collate_fn=partial(collate, pad_token_id=tokenizer.pad_token_id),
            )
        )
    assert runs[0].losses == runs[1].losses and len(runs[1].losses) == 6
    assert (runs[0].tokens, runs[0].target_tokens) == (runs[1].tokens, runs[1].target_tokens)


def test_no_clipping_and_betas_change_the_step(tokenizer, samples, encoder_config):
    def trained(**settings) -> list[float]:
        model = build_tiny_encoder(config=encoder_config, tokenizer=tokenizer)
        config = TrainConfig(lr=5e-2, max_steps=3, batch_size=4, warmup_steps=0, **settings)
        return train(
            model=model,
            samples=samples,
            config=config,
            collate_fn=partial(collate, pad_token_id=tokenizer.pad_token_id),
        ).losses

    clipped = trained(clip=0.01)
    assert trained(clip=None) != clipped
    assert trained(clip=0.01, betas=(0.5, 0.9)) != clipped


def test_training_leaves_the_callers_random_stream_alone(tokenizer, samples, encoder_config):
    model = build_tiny_encoder(config=encoder_config, tokenizer=tokenizer)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    train(
        model=model,
        samples=samples,
        config=TrainConfig(max_steps=2, batch_size=4, warmup_steps=0),
        collate_fn=partial(collate, pad_token_id=tokenizer.pad_token_id),
    )
    assert torch.equal(torch.rand(3), expected)


class _CountedEncoding(torch.utils.data.Dataset):
    def __init__(self, samples):
        self.samples, self.encoded = samples, 0

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, index):
        self.encoded += 1
        return self.samples[index]


def test_encoding_settings_change_how_batches_are_made_not_the_training(
    tokenizer, samples, encoder_config
):
    """Three epochs of 8 samples: cached, each sample is encoded once; with a worker process
    or without, cached or not, every step's loss is the same."""
    runs = {}
    for settings in ({}, {"cache_samples": True}, {"num_workers": 1}):
        counted = _CountedEncoding(samples)
        runs[tuple(settings)] = train(
            model=build_tiny_encoder(config=encoder_config, tokenizer=tokenizer),
            samples=counted,
            collate_fn=partial(collate, pad_token_id=tokenizer.pad_token_id),
            config=TrainConfig(max_steps=6, batch_size=4, warmup_steps=1, **settings),
        ).losses
        if settings.get("cache_samples"):
            assert counted.encoded == len(samples)
        elif not settings:
            assert counted.encoded == 3 * len(samples)
    assert runs[()] == runs[("cache_samples",)] == runs[("num_workers",)]


def _history(live: LiveMetrics, name: str) -> list[tuple[int, float]]:
    client = MlflowClient(tracking_uri=live.tracking_uri)
    return [(m.step, m.value) for m in client.get_metric_history(live.run_id, f"s.{name}")]


def test_live_metrics_reach_mlflow_as_the_run_goes_and_a_resume_logs_the_whole_curve(
    tmp_path, tokenizer, samples, encoder_config
):
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    experiment = client.create_experiment("live")

    def run(steps: int) -> tuple[LiveMetrics, object]:
        live = LiveMetrics(
            tracking_uri=f"sqlite:///{tmp_path}/mlflow.db",
            run_id=client.create_run(experiment).info.run_id,
            prefix="s",
        )
        result = train(
            model=build_tiny_encoder(config=encoder_config, tokenizer=tokenizer),
            samples=samples,
            config=TrainConfig(max_steps=steps, batch_size=4, warmup_steps=1, log_every=3),
            collate_fn=partial(collate, pad_token_id=tokenizer.pad_token_id),
            checkpoint=CheckpointConfig(directory=tmp_path / "ckpt", every=4, fingerprint="f"),
            live=live,
        )
        return live, result

    live, result = run(7)
    assert _history(live, "loss") == list(enumerate(result.losses))  # each step once
    assert _history(live, "lr") == list(enumerate(result.lrs))
    # A rerun resumes after the last step: its own MLflow run still gets the whole curve.
    again, resumed = run(7)
    assert resumed.losses == result.losses
    assert _history(again, "loss") == list(enumerate(result.losses))
