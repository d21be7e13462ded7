"""Encoder answers with the hidden states that emitted them.

Generation is Hugging Face's (KV cache, left padding, greedy or top-k sampling). A forward hook
on the language model's final norm keeps, for every step, the post-norm state at the last
position: the state whose logits chose that step's token. Only the steps that emitted one of
``capture_ids`` are kept, so a 2048-token CoT answer of an 11B model does not hold 2048 states.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from PIL import Image
from torch import nn
from tqdm.auto import tqdm
from transformers import MllamaProcessor

from heima_kedro.data.cot import StageError, find_stage
from heima_kedro.models.batching import encoder_prompt_batch
from heima_kedro.models.compute import seeded
from heima_kedro.models.tokenizer import pad_token_id


@dataclass(frozen=True)
class DecodingConfig:
    """Greedy by default (deterministic runs); ``do_sample`` draws with ``temperature`` and
    ``top_k`` (the original: 0.6 and 50), seeded per batch."""

    max_new_tokens: int = 256
    batch_size: int = 16
    do_sample: bool = False
    temperature: float = 0.6
    top_k: int = 50
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("max_new_tokens", "batch_size", "top_k"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"decoding.{name} must be an integer >= 1, got {value!r}")
        if not self.temperature > 0:
            raise ValueError(f"decoding.temperature must be > 0, got {self.temperature!r}")

    def generate_kwargs(self) -> dict:
        if not self.do_sample:
            return {"do_sample": False, "max_new_tokens": self.max_new_tokens}
        return {
            "do_sample": True,
            "temperature": self.temperature,
            "top_k": self.top_k,
            "max_new_tokens": self.max_new_tokens,
        }


@dataclass(frozen=True)
class Generation:
    """One answer: its new token ids up to the end of turn, their text, the final post-norm
    states of the steps that emitted a captured token (``captured_positions`` index
    ``token_ids``), and the wall-clock seconds of the batch it was generated in."""

    token_ids: tuple[int, ...]
    text: str
    captured_positions: tuple[int, ...]
    captured_states: torch.Tensor
    seconds: float

    def states_of(self, token_id: int) -> torch.Tensor:
        """The states that emitted ``token_id``, in order (``(count, width)``)."""
        rows = [i for i, p in enumerate(self.captured_positions) if self.token_ids[p] == token_id]
        return self.captured_states[rows]


def text_model(model: nn.Module) -> nn.Module:
    """The language model (its layers and final norm) of an Mllama or Llama model, PEFT-wrapped
    or not."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    inner = base.model
    return getattr(inner, "language_model", inner)


def final_norm(model: nn.Module) -> nn.Module:
    """The language model's last norm of an Mllama or Llama model, PEFT-wrapped or not."""
    return text_model(model).norm


@contextmanager
def _last_position_states(model: nn.Module) -> Iterator[list[torch.Tensor]]:
    """Collects, per forward pass, the final norm's output at the last position."""
    steps: list[torch.Tensor] = []

    def keep(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
        steps.append(output[:, -1, :].detach())  # stays on the device: no host sync per token

    handle = final_norm(model).register_forward_hook(keep)
    try:
        yield steps
    finally:
        handle.remove()


@torch.no_grad()
def generate_with_states(
    *,
    model: nn.Module,
    processor: MllamaProcessor,
    images: Sequence[Image.Image],
    questions: Sequence[str],
    decoding: DecodingConfig,
    capture_ids: Collection[int] = (),
    progress: str | None = None,
    first_batch: int = 0,
) -> list[Generation]:
    """Answer each (image, question) in batches; see the module docstring for the states kept.
    ``first_batch`` is the first batch's index among all (a launched rank's share starts
    further on), so that sampling draws what it draws in one process.

    Only end-of-turn and padding ids are dropped from the text: thinking tokens may be special
    tokens (Llama 3's reserved ones at real scale) and must survive decoding."""
    if len(images) != len(questions):
        raise ValueError(f"{len(images)} images but {len(questions)} questions")
    tokenizer = processor.tokenizer
    ends = {tokenizer.eos_token_id, tokenizer.pad_token_id}
    capture = set(capture_ids)
    generations: list[Generation] = []
    starts = range(0, len(questions), decoding.batch_size)
    batches = tqdm(starts, desc=progress, disable=progress is None)
    for batch_index, start in enumerate(batches, start=first_batch):
        stop = start + decoding.batch_size
        inputs = encoder_prompt_batch(
            processor=processor, images=images[start:stop], questions=questions[start:stop]
        ).to(model.device)
        began = time.perf_counter()
        with _last_position_states(model) as steps, seeded(decoding.seed + batch_index):
            output = model.generate(
                **inputs,
                **decoding.generate_kwargs(),
                eos_token_id=tokenizer.eos_token_id,
                pad_token_id=pad_token_id(tokenizer),
            )
        seconds = time.perf_counter() - began
        new_tokens = output[:, inputs["input_ids"].shape[1] :]
        if len(steps) != new_tokens.shape[1]:
            raise RuntimeError(f"{len(steps)} forward passes for {new_tokens.shape[1]} new tokens")
        states = torch.stack(steps, dim=1).float().cpu()  # (batch, steps, width)
        for row, ids in enumerate(new_tokens.tolist()):
            ids = until_end(ids, ends)
            positions = tuple(i for i, token in enumerate(ids) if token in capture)
            generations.append(
                Generation(
                    token_ids=tuple(ids),
                    text=tokenizer.decode(ids),
                    captured_positions=positions,
                    captured_states=states[row, list(positions)],
                    seconds=seconds,
                )
            )
    return generations


def until_end(ids: list[int], ends: set[int]) -> list[int]:
    """``ids`` up to (not including) the first end-of-turn or padding id."""
    for i, token in enumerate(ids):
        if token in ends:
            return ids[:i]
    return ids


def stage_thinking_states(
    *, generation: Generation, stage: str, token: str, token_id: int
) -> torch.Tensor:
    """The states that emitted ``stage``'s thinking span of a generated answer.

    Raises ``StageError`` when the answer has no usable span: the stage is missing, repeated or
    empty (``missing_stage``...), holds anything but its thinking token(s) (``not_thinking``), or
    the token also occurs outside the stage (``stray_thinking_token``)."""
    text = "".join(find_stage(generation.text, stage).text.split())
    count = text.count(token)
    if not count or text != token * count:
        raise StageError("not_thinking", f"{stage} is '{text[:40]}', not {token} tokens")
    states = generation.states_of(token_id)
    if len(states) != count:
        raise StageError(
            "stray_thinking_token", f"{len(states)} {token} in the answer, {count} in its {stage}"
        )
    return states
