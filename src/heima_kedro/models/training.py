"""One training loop for every stage, in nanoGPT's shape, on Hugging Face Accelerate.

set learning rate → (evaluate) → micro-steps with gradient accumulation → clip → step → zero
grads → log. The loss is next-token cross-entropy summed over the step's target tokens and
divided by their count, so every target token weighs the same whatever the padding or the
accumulation. Accelerate picks the device and bf16 autocast on CUDA (fp32 on CPU).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial

import torch
from accelerate import Accelerator
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from heima_kedro.models.batching import IGNORE_INDEX, collate
from heima_kedro.models.checkpoints import CheckpointConfig, load_latest_checkpoint, save_checkpoint

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """``max_steps`` (optimizer steps), when set, overrides ``epochs``; the learning rate decays
    by cosine to ``min_lr_ratio × lr`` at the last step. ``eval_every`` 0 evaluates only at the end."""

    lr: float = 1e-3
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.01
    warmup_steps: int = 10
    epochs: int = 1
    max_steps: int | None = None
    batch_size: int = 8
    grad_accum: int = 1
    clip: float = 1.0
    seed: int = 0
    log_every: int = 10
    eval_every: int = 0
    #: With N > 0, every N batches' worth of shuffled samples is sorted by length, so a batch pads
    #: less (Hugging Face's ``group_by_length`` uses N = 50) but mixes less; 0 keeps plain shuffling.
    length_group_batches: int = 0
    activation_checkpointing: bool = True  # on CUDA only: trades compute for memory at 11B

    def __post_init__(self) -> None:
        if not self.lr > 0:
            raise ValueError(f"train.lr must be > 0, got {self.lr!r}")
        if not 0 <= self.min_lr_ratio <= 1:
            raise ValueError(f"train.min_lr_ratio must be in [0, 1], got {self.min_lr_ratio!r}")
        if self.weight_decay < 0:
            raise ValueError(f"train.weight_decay must be >= 0, got {self.weight_decay!r}")
        if self.clip <= 0:
            raise ValueError(f"train.clip must be > 0, got {self.clip!r}")
        for name in ("epochs", "batch_size", "grad_accum", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"train.{name} must be >= 1, got {getattr(self, name)!r}")
        for name in ("warmup_steps", "eval_every", "length_group_batches"):
            if getattr(self, name) < 0:
                raise ValueError(f"train.{name} must be >= 0, got {getattr(self, name)!r}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"train.max_steps must be >= 1 or null, got {self.max_steps!r}")


@dataclass
class TrainResult:
    """Per-step history (mean loss per target token, learning rate) and throughput."""

    losses: list[float] = field(default_factory=list)
    lrs: list[float] = field(default_factory=list)
    evaluations: list[dict] = field(default_factory=list)
    steps: int = 0
    tokens: int = 0
    target_tokens: int = 0
    seconds: float = 0.0

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0


def _enable_activation_checkpointing(model: torch.nn.Module) -> None:
    """Recompute activations in the backward pass; with frozen embeddings (LoRA) the inputs must
    require grad, or checkpointed blocks would see no gradient."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    base.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    base.enable_input_require_grads()


def _history(result: TrainResult) -> dict:
    """The part of a result a checkpoint carries (evaluations are re-run, not restored)."""
    return {key: getattr(result, key) for key in ("losses", "lrs", "steps", "tokens", "target_tokens", "seconds")}


def cosine_lr(
    step: int, *, lr: float, warmup_steps: int, total_steps: int, min_lr_ratio: float
) -> float:
    """Linear warm-up to ``lr``, then cosine decay to ``min_lr_ratio × lr`` at ``total_steps``."""
    if step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    min_lr = lr * min_lr_ratio
    if step >= total_steps - 1:
        return min_lr
    progress = (step - warmup_steps) / max(1, total_steps - 1 - warmup_steps)
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (lr - min_lr)


def _param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Decay matrices and embeddings only, as nanoGPT: never norms, biases or gates."""
    params = [p for p in model.parameters() if p.requires_grad]
    return [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]


class _EpochShuffle(torch.utils.data.Sampler[int]):
    """A permutation that depends only on (seed, epoch), so a resumed run sees the same batches.
    With ``lengths``, each run of ``group`` shuffled samples is sorted by length, longest first,
    so neighbouring samples (one batch) pad to similar lengths."""

    def __init__(self, size: int, seed: int, *, lengths: Sequence[int] | None = None, group: int = 1) -> None:
        self.size, self.seed, self.epoch = size, seed, 0
        self.lengths, self.group = lengths, group

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        order = torch.randperm(self.size, generator=generator).tolist()
        if self.lengths is None:
            return iter(order)
        groups = (order[i : i + self.group] for i in range(0, self.size, self.group))
        return iter([i for group in groups for i in sorted(group, key=lambda i: -self.lengths[i])])

    def __len__(self) -> int:
        return self.size


def _batches(
    loader: DataLoader, sampler: _EpochShuffle, accelerator: Accelerator, *, skip: int
) -> Iterator[dict[str, torch.Tensor]]:
    """Batches forever, epoch after epoch, starting after the first ``skip`` (never loaded)."""
    epoch, offset = divmod(skip, len(loader))
    while True:
        sampler.epoch = epoch
        yield from accelerator.skip_first_batches(loader, offset) if offset else loader
        epoch, offset = epoch + 1, 0


def _summed_loss(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    inputs = {key: value for key, value in batch.items() if key != "labels"}
    logits = model(**inputs, use_cache=False).logits[:, :-1].float()
    targets = batch["labels"][:, 1:]
    return torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.size(-1)),
        targets.reshape(-1),
        ignore_index=IGNORE_INDEX,
        reduction="sum",
    )


def _evaluate(
    evaluate: Callable[[torch.nn.Module], dict],
    model: torch.nn.Module,
    step: int,
    so_far: TrainResult,
) -> dict:
    model.eval()
    with torch.no_grad():
        scores = evaluate(model)
    model.train()
    return {"step": step, "train_seconds": so_far.seconds, **scores}


def train(
    *,
    model: torch.nn.Module,
    samples: Sequence[dict[str, torch.Tensor]],
    pad_token_id: int,
    config: TrainConfig,
    evaluate: Callable[[torch.nn.Module], dict] | None = None,
    checkpoint: CheckpointConfig | None = None,
    collate_fn: Callable[[list], dict] | None = None,
) -> TrainResult:
    """Train ``model`` in place on encoded samples (see :mod:`heima_kedro.models.batching`).

    ``evaluate`` (optional) is called with the unwrapped model every ``eval_every`` steps and
    after the last step; its dicts are kept, with the step and elapsed seconds, in the result.
    With ``checkpoint``, the run saves every ``checkpoint.every`` steps and first resumes from
    the newest checkpoint of the same fingerprint, ending with the same weights and history as
    an uninterrupted run. With ``config.length_group_batches``, ``samples.lengths()`` gives the
    samples' lengths where it exists (a lazy data set need not encode every sample for them).
    ``collate_fn`` replaces the default right-padding collate when a model
    takes more than the text batch (a batch must still hold ``labels`` and ``attention_mask``).
    """
    accelerator = Accelerator(mixed_precision="bf16" if torch.cuda.is_available() else "no")
    if config.activation_checkpointing and torch.cuda.is_available():
        _enable_activation_checkpointing(model)
    lengths = None
    if config.length_group_batches:
        lengths = samples.lengths() if hasattr(samples, "lengths") else [len(s["input_ids"]) for s in samples]
    sampler = _EpochShuffle(
        len(samples), config.seed, lengths=lengths, group=config.length_group_batches * config.batch_size
    )
    loader = DataLoader(
        samples,
        batch_size=config.batch_size,
        sampler=sampler,
        collate_fn=collate_fn or partial(collate, pad_token_id=pad_token_id),
    )
    optimizer = torch.optim.AdamW(
        _param_groups(model, config.weight_decay), lr=config.lr, betas=(0.9, 0.95), fused=False
    )
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    total_steps = config.max_steps or config.epochs * math.ceil(len(loader) / config.grad_accum)
    result, start = TrainResult(), 0
    resumed = checkpoint and load_latest_checkpoint(config=checkpoint, model=accelerator.unwrap_model(model))
    if resumed:
        start, state = resumed
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        result = TrainResult(**state["result"])
        logger.info("Resuming from the checkpoint of step %d/%d in %s", start, total_steps, checkpoint.directory)
    batches = _batches(loader, sampler, accelerator, skip=start * config.grad_accum)
    model.train()
    progress = tqdm(
        range(start, total_steps), desc="train", initial=start, total=total_steps,
        disable=not accelerator.is_local_main_process,
    )
    for step in progress:
        # set the learning rate
        lr = cosine_lr(
            step,
            lr=config.lr,
            warmup_steps=config.warmup_steps,
            total_steps=total_steps,
            min_lr_ratio=config.min_lr_ratio,
        )
        for group in optimizer.param_groups:
            group["lr"] = lr

        # evaluate; its time is not training time
        if evaluate is not None and config.eval_every and step and step % config.eval_every == 0:
            result.evaluations.append(
                _evaluate(evaluate, accelerator.unwrap_model(model), step, result)
            )
        tick = time.perf_counter()

        # micro-steps: the step's loss is normalised by all of its target tokens
        micro_batches = [next(batches) for _ in range(config.grad_accum)]
        n_targets = sum(int((b["labels"][:, 1:] != IGNORE_INDEX).sum()) for b in micro_batches)
        step_loss = 0.0
        for batch in micro_batches:
            with accelerator.autocast():
                loss = _summed_loss(model, batch) / max(n_targets, 1)
            accelerator.backward(loss)
            step_loss += loss.item()
            result.tokens += int(batch["attention_mask"].sum())
        result.target_tokens += n_targets

        # clip, step, zero grads
        accelerator.clip_grad_norm_(model.parameters(), config.clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        result.seconds += time.perf_counter() - tick

        # log
        result.steps = step + 1
        result.losses.append(step_loss)
        result.lrs.append(lr)
        if step % config.log_every == 0 or step == total_steps - 1:
            progress.set_postfix(loss=f"{step_loss:.3f}", lr=f"{lr:.2e}")
            logger.info("step %d/%d loss %.4f lr %.2e", step + 1, total_steps, step_loss, lr)

        # checkpoint (the main process writes; every process waits for it)
        if checkpoint and ((step + 1) % checkpoint.every == 0 or step + 1 == total_steps):
            if accelerator.is_main_process:
                save_checkpoint(
                    config=checkpoint, step=step + 1, model=accelerator.unwrap_model(model),
                    state={"optimizer": optimizer.state_dict(), "torch_rng": torch.get_rng_state(),
                           "result": _history(result)},
                )
            accelerator.wait_for_everyone()

    if evaluate is not None:
        result.evaluations.append(
            _evaluate(evaluate, accelerator.unwrap_model(model), total_steps, result)
        )
    # Hand back the caller's model without Accelerate's autocast wrapper.
    accelerator.unwrap_model(model, keep_fp32_wrapper=False).eval()
    return result
