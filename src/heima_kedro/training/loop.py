"""One training loop for every stage, in nanoGPT's shape, on Hugging Face Accelerate.

set learning rate → (evaluate) → micro-steps with gradient accumulation → clip → step → zero
grads → log → checkpoint. The loss is next-token cross-entropy summed over the step's target
tokens (on every process) and divided by their count, so every target token weighs the same
whatever the padding, the accumulation or the number of processes. Accelerate picks the device
and bf16 autocast on CUDA (fp32 on CPU). Under DeepSpeed the engine steps, accumulates and clips
itself, with the loop's settings (not its config file's).
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import torch
from accelerate import Accelerator
from accelerate.utils import DistributedType
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from heima_kedro.models.batching import IGNORE_INDEX
from heima_kedro.models.compute import seeded
from heima_kedro.training.checkpoints import (
    ZERO_FOLDER,
    CheckpointConfig,
    load_latest_checkpoint,
    save_checkpoint,
    step_name,
)
from heima_kedro.training.live_metrics import LiveMetrics
from heima_kedro.training.sharding import (
    gathered_optimizer_state,
    gathered_trainable_state,
    load_zero_state,
    restore_optimizer_state,
    restore_trainable_state,
    save_zero_state,
    trainable_names,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """``max_steps`` (optimizer steps), when set, overrides ``epochs``; the learning rate decays
    by cosine to ``min_lr_ratio × lr`` at the last step. ``clip`` null trains without gradient
    clipping. ``eval_every`` applies to a caller's ``evaluate`` (the research scripts'; the
    pipelines evaluate after training): 0 evaluates only at the end."""

    lr: float = 1e-3
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.95)
    warmup_steps: int = 10
    epochs: int = 1
    max_steps: int | None = None
    batch_size: int = 8
    grad_accum: int = 1
    clip: float | None = 1.0
    seed: int = 0
    log_every: int = 10
    eval_every: int = 0
    #: With N > 0, every N batches' worth of shuffled samples is sorted by length, so a batch pads
    #: less (Hugging Face's ``group_by_length`` uses N = 50) but mixes less; 0: plain shuffling.
    length_group_batches: int = 0
    activation_checkpointing: bool = True  # on CUDA only: trades compute for memory at 11B
    #: Processes that encode batches (images, tokens) while the model trains; 0: the training
    #: process encodes each batch itself, between steps.
    num_workers: int = 0
    #: Keep each sample once encoded, so later epochs only batch it (a small data set trained
    #: for many epochs, such as the embedded default's); at scale samples are encoded on access.
    cache_samples: bool = False
    #: The settings above that change how batches are encoded, not what a run trains to.
    encoding_settings: ClassVar[tuple[str, ...]] = ("num_workers", "cache_samples")

    def __post_init__(self) -> None:
        object.__setattr__(self, "betas", tuple(self.betas))  # YAML and JSON give lists
        if not self.lr > 0:
            raise ValueError(f"train.lr must be > 0, got {self.lr!r}")
        if not 0 <= self.min_lr_ratio <= 1:
            raise ValueError(f"train.min_lr_ratio must be in [0, 1], got {self.min_lr_ratio!r}")
        if self.weight_decay < 0:
            raise ValueError(f"train.weight_decay must be >= 0, got {self.weight_decay!r}")
        if len(self.betas) != 2 or not all(0 <= beta < 1 for beta in self.betas):
            raise ValueError(f"train.betas must be two numbers in [0, 1), got {self.betas!r}")
        if self.clip is not None and not self.clip > 0:
            raise ValueError(f"train.clip must be > 0, or null for no clipping, got {self.clip!r}")
        for name in ("epochs", "batch_size", "grad_accum", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"train.{name} must be >= 1, got {getattr(self, name)!r}")
        for name in ("warmup_steps", "eval_every", "length_group_batches", "num_workers"):
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

    def history(self) -> dict:
        """The part a checkpoint carries (not the evaluations: those of the steps before a resume
        are not repeated)."""
        return {
            key: getattr(self, key)
            for key in ("losses", "lrs", "steps", "tokens", "target_tokens", "seconds")
        }


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


def _enable_activation_checkpointing(model: torch.nn.Module) -> None:
    """Recompute activations in the backward pass; with frozen embeddings (LoRA) the inputs must
    require grad, or checkpointed blocks would see no gradient."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    base.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    base.enable_input_require_grads()


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

    def __init__(
        self, size: int, seed: int, *, lengths: Sequence[int] | None = None, group: int = 1
    ) -> None:
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


class _EncodedOnce(Dataset):
    """A data set whose samples are encoded on first access and kept (in each worker)."""

    def __init__(self, samples: Sequence[dict[str, torch.Tensor]]) -> None:
        self.samples, self.encoded = samples, {}

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if index not in self.encoded:
            self.encoded[index] = self.samples[index]
        return self.encoded[index]


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
    """Cross-entropy summed over the target tokens; logits are computed at the positions that
    predict one only (a boolean ``logits_to_keep``), not over the whole vocabulary everywhere.
    A model whose output carries an ``alignment_loss`` (a mean per token, see
    :mod:`heima_kedro.models.alignment`) has it added with the weight of these targets."""
    inputs = {key: value for key, value in batch.items() if key != "labels"}
    targets = batch["labels"][:, 1:]
    predicts_target = torch.nn.functional.pad(targets != IGNORE_INDEX, (0, 1))
    output = model(**inputs, use_cache=False, logits_to_keep=predicts_target)
    summed = torch.nn.functional.cross_entropy(
        output.logits.float(), targets[targets != IGNORE_INDEX], reduction="sum"
    )
    alignment = getattr(output, "alignment_loss", None)
    if alignment is None:
        return summed
    return summed + alignment * predicts_target.sum()


def _deepspeed_takes(config: TrainConfig, accelerator: Accelerator) -> None:
    """Hand the loop's batch size, accumulation and clipping to DeepSpeed, which applies them
    itself (Accelerate would otherwise take them from the config file)."""
    settings = accelerator.state.deepspeed_plugin.deepspeed_config
    settings["train_micro_batch_size_per_gpu"] = config.batch_size
    settings["gradient_accumulation_steps"] = config.grad_accum
    settings["train_batch_size"] = config.batch_size * config.grad_accum * accelerator.num_processes
    settings["gradient_clipping"] = config.clip or 0.0  # 0: DeepSpeed does not clip


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


class _PendingLog:
    """Per-step figures kept on the device until a log step, so no step waits for the device
    (``loss.item()`` would) just to record its loss."""

    def __init__(self) -> None:
        self.rows: list[torch.Tensor] = []  # per step: loss, tokens, target tokens

    def add(self, loss: torch.Tensor, tokens: torch.Tensor, targets: torch.Tensor) -> None:
        self.rows.append(torch.stack([loss.detach().float(), tokens.float(), targets.float()]))

    def flush_into(self, result: TrainResult) -> None:
        if not self.rows:
            return
        for loss, tokens, targets in torch.stack(self.rows).tolist():
            result.losses.append(loss)
            result.tokens += int(tokens)
            result.target_tokens += int(targets)
        self.rows.clear()


def train(
    *,
    model: torch.nn.Module,
    samples: Sequence[dict[str, torch.Tensor]],
    collate_fn: Callable[[list], dict],
    config: TrainConfig,
    evaluate: Callable[[torch.nn.Module], dict] | None = None,
    checkpoint: CheckpointConfig | None = None,
    live: LiveMetrics | None = None,
) -> TrainResult:
    """Train ``model`` in place on encoded samples, batched by ``collate_fn`` (a batch holds
    ``labels`` and ``attention_mask`` besides the model's inputs).

    ``evaluate`` (optional) is called with the unwrapped model every ``eval_every`` steps and
    after the last step; its dicts are kept, with the step and elapsed seconds, in the result.
    With ``checkpoint``, the run saves every ``checkpoint.every`` steps and first resumes from
    the newest checkpoint of the same fingerprint, ending with the same weights and history as
    an uninterrupted run. With ``live``, the main process logs each step's loss and learning rate
    to MLflow at every log step (a resumed run first logs the steps it resumes after). With
    ``config.length_group_batches``, ``samples.lengths()`` gives the samples' lengths where it
    exists (a lazy data set need not encode every sample for them).
    The loop's random streams are seeded with ``config.seed`` and leave the caller's untouched.
    """
    with seeded(config.seed):
        return _train(
            model=model,
            samples=samples,
            collate_fn=collate_fn,
            config=config,
            evaluate=evaluate,
            checkpoint=checkpoint,
            live=live,
        )


def _train(
    *,
    model: torch.nn.Module,
    samples: Sequence[dict[str, torch.Tensor]],
    collate_fn: Callable[[list], dict],
    config: TrainConfig,
    evaluate: Callable[[torch.nn.Module], dict] | None,
    checkpoint: CheckpointConfig | None,
    live: LiveMetrics | None,
) -> TrainResult:
    accelerator = Accelerator(mixed_precision="bf16" if torch.cuda.is_available() else "no")
    deepspeed = accelerator.distributed_type == DistributedType.DEEPSPEED
    if deepspeed:
        _deepspeed_takes(config, accelerator)
    if config.activation_checkpointing and torch.cuda.is_available():
        _enable_activation_checkpointing(model)
    lengths = None
    if config.length_group_batches:
        lengths = (
            samples.lengths()
            if hasattr(samples, "lengths")
            else [len(s["input_ids"]) for s in samples]
        )
    sampler = _EpochShuffle(
        len(samples),
        config.seed,
        lengths=lengths,
        group=config.length_group_batches * config.batch_size,
    )
    loader = DataLoader(
        _EncodedOnce(samples) if config.cache_samples else samples,
        batch_size=config.batch_size,
        sampler=sampler,
        collate_fn=collate_fn,
        num_workers=config.num_workers,
        persistent_workers=config.num_workers > 0,
        pin_memory=torch.cuda.is_available(),
    )
    optimizer = torch.optim.AdamW(
        _param_groups(model, config.weight_decay), lr=config.lr, betas=config.betas, fused=False
    )
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    total_steps = config.max_steps or config.epochs * math.ceil(len(loader) / config.grad_accum)
    result, start = TrainResult(), 0
    unwrapped = accelerator.unwrap_model(model)
    resumed = checkpoint and load_latest_checkpoint(
        config=checkpoint, trainable=trainable_names(unwrapped)
    )
    if resumed:
        start, weights, state = resumed
        if deepspeed:  # the weights come back with the optimiser's fp32 masters
            load_zero_state(model, checkpoint.directory / ZERO_FOLDER, tag=step_name(start))
        else:
            restore_trainable_state(unwrapped, weights)
            restore_optimizer_state(unwrapped, optimizer, state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        if torch.cuda.is_available() and "cuda_rng" in state:
            torch.cuda.set_rng_state(state["cuda_rng"])
        result = TrainResult(**state["result"])
        logger.info(
            "Resuming from the checkpoint of step %d/%d in %s",
            start,
            total_steps,
            checkpoint.directory,
        )
    batches = _batches(loader, sampler, accelerator, skip=start * config.grad_accum)
    pending = _PendingLog()
    logged = 0  # steps whose figures went to MLflow

    def flush() -> None:
        nonlocal logged
        pending.flush_into(result)
        if live and accelerator.is_main_process and len(result.losses) > logged:
            live.log(losses=result.losses[logged:], lrs=result.lrs[logged:], first_step=logged)
            logged = len(result.losses)

    model.train()
    progress = tqdm(
        range(start, total_steps),
        desc="train",
        initial=start,
        total=total_steps,
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

        # micro-steps: the loss is normalised by the step's target tokens on every process
        micro_batches = [next(batches) for _ in range(config.grad_accum)]
        n_targets = sum((b["labels"][:, 1:] != IGNORE_INDEX).sum() for b in micro_batches)
        per_process = n_targets.float()
        if accelerator.num_processes > 1:  # gradients are averaged over processes
            per_process = (
                accelerator.reduce(per_process, reduction="sum") / accelerator.num_processes
            )
        step_loss = torch.zeros((), device=accelerator.device)
        tokens = torch.zeros((), dtype=torch.long, device=accelerator.device)
        for index, batch in enumerate(micro_batches):
            # Gradients are all-reduced once per step, in the last micro-step. (Accelerate's
            # `accumulate` would also divide the loss by the micro-step count, and this loss is
            # already normalised by the step's target tokens.)
            last = index == len(micro_batches) - 1
            with (
                contextlib.nullcontext() if last or deepspeed else accelerator.no_sync(model),
                accelerator.autocast(),
            ):
                loss = _summed_loss(model, batch) / per_process.clamp(min=1)
                if deepspeed:  # the engine: reduce at the step's last micro-step, then step
                    model.set_gradient_accumulation_boundary(last)
                    model.backward(loss, scale_wrt_gas=False)
                    if last:
                        model.step()
                else:
                    accelerator.backward(loss)
            step_loss += loss.detach()
            tokens += batch["attention_mask"].sum()
        if accelerator.num_processes > 1:  # the step's figures over every process
            step_loss = accelerator.reduce(step_loss, reduction="mean")
            tokens = accelerator.reduce(tokens, reduction="sum")
            n_targets = accelerator.reduce(n_targets, reduction="sum")

        # clip, step, zero grads (DeepSpeed's engine did all three in the last micro-step)
        if not deepspeed:
            if config.clip is not None:
                accelerator.clip_grad_norm_(model.parameters(), config.clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        result.seconds += time.perf_counter() - tick

        # log (the step's figures reach the host only here)
        result.steps = step + 1
        result.lrs.append(lr)
        pending.add(step_loss, tokens, n_targets)
        if step % config.log_every == 0 or step == total_steps - 1:
            flush()
            progress.set_postfix(loss=f"{result.losses[-1]:.3f}", lr=f"{lr:.2e}")
            logger.info(
                "step %d/%d loss %.4f lr %.2e", step + 1, total_steps, result.losses[-1], lr
            )

        # checkpoint (every process gathers its shards; the main process writes)
        if checkpoint and ((step + 1) % checkpoint.every == 0 or step + 1 == total_steps):
            flush()
            weights = gathered_trainable_state(unwrapped)
            if deepspeed:  # each process writes its partitions; the checkpoint names them
                save_zero_state(model, checkpoint.directory / ZERO_FOLDER, tag=step_name(step + 1))
                optimizer_state = {}
            else:
                optimizer_state = gathered_optimizer_state(unwrapped, optimizer)
            if accelerator.is_main_process:
                save_checkpoint(
                    config=checkpoint,
                    step=step + 1,
                    weights=weights,
                    state={
                        "optimizer": optimizer_state,
                        "torch_rng": torch.get_rng_state(),
                        **(
                            {"cuda_rng": torch.cuda.get_rng_state()}
                            if torch.cuda.is_available()
                            else {}
                        ),
                        "result": result.history(),
                    },
                )
            accelerator.wait_for_everyone()

    flush()
    if evaluate is not None:
        result.evaluations.append(
            _evaluate(evaluate, accelerator.unwrap_model(model), total_steps, result)
        )
    # Hand back the caller's model without Accelerate's autocast wrapper.
    accelerator.unwrap_model(model, keep_fp32_wrapper=False).eval()
    return result
