"""Does the answer read the thinking tokens? The Heima Encoder's conclusion generated again after
its own thinking, under three conditions:

- ``real``: nothing changed (the answer as generated, continued from the same prefix);
- ``masked``: no later position may attend to the thinking tokens' positions (their keys and
  values are masked out; every other token keeps its position id, as if the thinking tokens were
  removed from the sequence and their positions left empty);
- ``other_pair``: at every layer, the hidden states at the thinking tokens' positions are those of
  another test pair (a seeded derangement among pairs with the same thinking tokens in the same
  order), so every later position reads another pair's thinking through the keys and values it
  attends to.

Each answer is first generated freely; its token ids up to the conclusion tag are the prefix
(prompt + tags + thinking tokens), and the conclusion is generated from that prefix under each
condition, within the answer's own token budget. Greedy, ``real`` gives the answer again; with
sampling, each condition draws its own tokens. An answer without a thinking token or a
conclusion tag cannot be continued: it is counted, not scored.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

import torch
from PIL import Image
from torch import nn
from transformers import MllamaProcessor

from heima_kedro.evaluation.answers import count_tokens
from heima_kedro.models.batching import encoder_prompt_batch
from heima_kedro.models.compute import seeded
from heima_kedro.models.generation import DecodingConfig, Generation, text_model, until_end
from heima_kedro.models.tokenizer import pad_token_id

CONTROLS = ("real", "masked", "other_pair")


def derangement(n: int, seed: int) -> list[int]:
    """``donors[i]``: the index whose item sample ``i`` receives, never ``i`` itself when
    ``n >= 2`` (a seeded cycle through a random order)."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    donors = list(range(n))
    for i, j in zip(order, order[1:] + order[:1], strict=True):
        donors[i] = j
    return donors


@dataclass(frozen=True)
class ControlledAnswer:
    """One pair's answer under one condition: the whole text (prefix + continuation), the number
    of tokens generated in all, and the donor pair's index (``other_pair`` only)."""

    text: str
    generated_tokens: int
    donor: int | None = None


def thinking_prefix(
    *, generation: Generation, thinking_ids: Collection[int], processor: MllamaProcessor
) -> tuple[int, ...] | None:
    """The generated ids before the conclusion tag, when they hold a thinking token and a
    conclusion follows; else ``None``."""
    ids = generation.token_ids
    stages = count_tokens(token_ids=ids, tokenizer=processor.tokenizer).stages
    prefix = ids[:stages]
    if stages == len(ids) or not any(token in thinking_ids for token in prefix):
        return None
    return tuple(prefix)


def donors_by_thinking(thinking: Sequence[tuple[int, ...]], seed: int) -> list[int | None]:
    """A donor for each pair among the pairs with the same thinking tokens in the same order
    (``None`` when no other pair has them), so each state lands on a token of its own kind."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for index, tokens in enumerate(thinking):
        groups.setdefault(tokens, []).append(index)
    donors: list[int | None] = [None] * len(thinking)
    for members in groups.values():
        if len(members) < 2:
            continue
        for member, donor in zip(members, derangement(len(members), seed), strict=True):
            donors[member] = members[donor]
    return donors


@dataclass(frozen=True)
class _Batch:
    """A left-padded batch of prompt + prefix, with each row's thinking positions."""

    inputs: dict[str, torch.Tensor]
    thinking_positions: list[list[int]]


def _batch(
    *,
    processor: MllamaProcessor,
    images: Sequence[Image.Image],
    questions: Sequence[str],
    prefixes: Sequence[tuple[int, ...]],
    thinking_ids: Collection[int],
    device: torch.device,
) -> _Batch:
    """The prompts as :func:`generate_with_states` builds them, each followed by its prefix."""
    tokenizer = processor.tokenizer
    prompts = encoder_prompt_batch(processor=processor, images=images, questions=questions)
    rows = []
    for row, prefix in enumerate(prefixes):
        kept = prompts["attention_mask"][row].bool()
        cross = prompts["cross_attention_mask"][row][kept]
        rows.append(
            (
                torch.cat([prompts["input_ids"][row][kept], torch.tensor(prefix)]),
                torch.cat([cross, cross[-1:].expand(len(prefix), -1, -1)]),
            )
        )
    length = max(len(ids) for ids, _ in rows)
    batch = len(rows)
    input_ids = torch.full((batch, length), pad_token_id(tokenizer))
    attention_mask = torch.zeros((batch, length), dtype=torch.long)
    position_ids = torch.zeros((batch, length), dtype=torch.long)
    cross_attention_mask = torch.zeros(
        (batch, length, *prompts["cross_attention_mask"].shape[2:]), dtype=torch.long
    )
    positions = []
    for row, ((ids, cross), prefix) in enumerate(zip(rows, prefixes, strict=True)):
        pad = length - len(ids)
        input_ids[row, pad:] = ids
        attention_mask[row, pad:] = 1
        position_ids[row, pad:] = torch.arange(len(ids))
        cross_attention_mask[row, pad:] = cross
        start = length - len(prefix)
        positions.append([start + i for i, token in enumerate(prefix) if token in thinking_ids])
    inputs = {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "position_ids": position_ids,
        "cross_attention_mask": cross_attention_mask,
        "pixel_values": prompts["pixel_values"],
        "aspect_ratio_ids": prompts["aspect_ratio_ids"],
        "aspect_ratio_mask": prompts["aspect_ratio_mask"],
    }
    return _Batch(
        inputs={key: value.to(device) for key, value in inputs.items()},
        thinking_positions=positions,
    )


@contextmanager
def _on_prefill(model: nn.Module, edit) -> Iterator[None]:
    """``edit(layer, output)`` on every language-model layer's output of the prompt pass (the
    one pass over more than one position); it returns the output to use, or None to keep it."""

    def hook_for(layer: int):
        def hook(_module: nn.Module, _inputs: tuple, output: torch.Tensor):
            if output.shape[1] > 1:
                return edit(layer, output)
            return None

        return hook

    with ExitStack() as stack:
        for index, layer in enumerate(text_model(model).layers):
            handle = layer.register_forward_hook(hook_for(index))
            stack.callback(handle.remove)
        yield


def _layer_edit(
    *,
    control: str,
    pairs: Sequence[int],
    positions: Sequence[list[int]],
    states: dict[int, dict[int, torch.Tensor]],
    donors: dict[int, int | None],
):
    """What the prompt pass does to each layer's output: ``real`` records the states at the
    thinking positions (into ``states``, on the CPU), ``other_pair`` puts the donor's there;
    ``masked`` needs no edit (its change is in the attention mask)."""

    def record(layer: int, output: torch.Tensor) -> None:
        for row, pair in enumerate(pairs):
            states[pair][layer] = output[row, positions[row]].cpu()

    def patch(layer: int, output: torch.Tensor) -> torch.Tensor:
        output = output.clone()
        for row, pair in enumerate(pairs):
            output[row, positions[row]] = states[donors[pair]][layer].to(output.device)
        return output

    if control == "masked":
        return None
    return {"real": record, "other_pair": patch}[control]


@torch.no_grad()
def answer_under_controls(
    *,
    model: nn.Module,
    processor: MllamaProcessor,
    images: Sequence[Image.Image],
    questions: Sequence[str],
    generations: Sequence[Generation],
    thinking_ids: Collection[int],
    decoding: DecodingConfig,
    seed: int,
) -> dict[str, list[ControlledAnswer | None]]:
    """Per condition of :data:`CONTROLS`, each pair's answer (``None``: it could not be continued
    — no thinking token or no conclusion — or, for ``other_pair``, no pair to take from).

    ``generations`` are the model's own answers to ``images`` and ``questions``; ``model`` is on
    its device in eval mode."""
    if not len(images) == len(questions) == len(generations):
        raise ValueError(
            f"{len(images)} images, {len(questions)} questions, {len(generations)} answers"
        )
    tokenizer = processor.tokenizer
    ends = {tokenizer.eos_token_id, tokenizer.pad_token_id}
    thinking = set(thinking_ids)
    prefixes = [
        thinking_prefix(generation=g, thinking_ids=thinking, processor=processor)
        for g in generations
    ]
    usable = [i for i, prefix in enumerate(prefixes) if prefix is not None]
    kinds = [tuple(token for token in prefixes[i] if token in thinking) for i in usable]
    donors = {
        usable[k]: (usable[d] if d is not None else None)
        for k, d in enumerate(donors_by_thinking(kinds, seed))
    }
    #: Per pair, per layer, the real hidden states at its thinking positions.
    states: dict[int, dict[int, torch.Tensor]] = {i: {} for i in usable}
    answers: dict[str, list[ControlledAnswer | None]] = {
        c: [None] * len(generations) for c in CONTROLS
    }
    for control in CONTROLS:  # real first: it records the states other_pair takes
        rows = usable if control != "other_pair" else [i for i in usable if donors[i] is not None]
        for index, start in enumerate(range(0, len(rows), decoding.batch_size)):
            members = rows[start : start + decoding.batch_size]
            batch = _batch(
                processor=processor,
                images=[images[i] for i in members],
                questions=[questions[i] for i in members],
                prefixes=[prefixes[i] for i in members],
                thinking_ids=thinking,
                device=model.device,
            )
            inputs = dict(batch.inputs)

            if control == "masked":
                mask = inputs["attention_mask"].clone()
                for row, positions in enumerate(batch.thinking_positions):
                    mask[row, positions] = 0
                inputs["attention_mask"] = mask
            edit = _layer_edit(
                control=control,
                pairs=members,
                positions=batch.thinking_positions,
                states=states,
                donors=donors,
            )
            # What is left of each answer's budget (the longest that any row of the batch has).
            budgets = [max(decoding.max_new_tokens - len(prefixes[i]), 1) for i in members]
            with ExitStack() as stack:
                if edit is not None:
                    stack.enter_context(_on_prefill(model, edit))
                stack.enter_context(seeded(decoding.seed + index))
                output = model.generate(
                    **inputs,
                    **{**decoding.generate_kwargs(), "max_new_tokens": max(budgets)},
                    eos_token_id=tokenizer.eos_token_id,
                    pad_token_id=pad_token_id(tokenizer),
                )
            new_tokens = output[:, inputs["input_ids"].shape[1] :].tolist()
            for row, pair in enumerate(members):
                continuation = until_end(new_tokens[row][: budgets[row]], ends)
                answers[control][pair] = ControlledAnswer(
                    text=tokenizer.decode([*prefixes[pair], *continuation]),
                    generated_tokens=len(prefixes[pair]) + len(continuation),
                    donor=donors[pair] if control == "other_pair" else None,
                )
    return answers
