"""The hidden-state hand-off from the Heima Encoder to a Heima Decoder (docs/method.md, stage 5).

The encoder reads image + question + ``compress_all`` answer (teacher forcing). The state that
*emits* a thinking token is the final post-norm hidden state at position ``i`` where token
``i + 1`` is the thinking token: exactly what exists at inference time when the token is
generated. In the decoder's input those states (projected when the widths differ) replace the
token embeddings at the positions of the same stage's thinking token(s), in order, so the
decoder's own embedding of the thinking token is never used.

The encoder is frozen, so its thinking states are a function of the pair alone; the pipeline
computes them once per pair (one encoder pass serves all three stages) and every decoder batch
carries the states of its own pairs, in order.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import torch
from peft import get_peft_model
from torch import nn
from torch.utils.data import DataLoader, Dataset
from transformers import PreTrainedTokenizerBase

from heima_kedro.models.adapters import AdapterWeights
from heima_kedro.models.batching import collate, decoder_prompt
from heima_kedro.models.compute import seeded
from heima_kedro.models.generation import DecodingConfig, final_norm, until_end
from heima_kedro.models.lora import LoraSettings, decoder_lora_config
from heima_kedro.models.tokenizer import pad_token_id

ThinkingStates = dict[str, list[torch.Tensor]]


def packed_states(states: Sequence[torch.Tensor]) -> dict[str, torch.Tensor]:
    """Ragged per-pair states ``(count, width)`` as two tensors, for a safetensors file: the
    states stacked in pair order and each pair's count."""
    return {
        "states": torch.cat([sample.detach().cpu() for sample in states]).contiguous(),
        "counts": torch.tensor([len(sample) for sample in states]),
    }


def unpacked_states(states: torch.Tensor, counts: torch.Tensor) -> list[torch.Tensor]:
    """The per-pair states :func:`packed_states` stacked."""
    return list(torch.split(states, counts.tolist()))


@dataclass(frozen=True)
class HandoffConfig:
    """Widths of the two models and the decoder's id of the stage's thinking token."""

    encoder_width: int
    decoder_width: int
    token_id: int

    def __post_init__(self) -> None:
        for name in ("encoder_width", "decoder_width"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"handoff.{name} must be an integer >= 1, got {value!r}")
        if (
            isinstance(self.token_id, bool)
            or not isinstance(self.token_id, int)
            or self.token_id < 0
        ):
            raise ValueError(f"handoff.token_id must be a token id >= 0, got {self.token_id!r}")

    def projection(self) -> nn.Module:
        """A learned ``Linear`` when the widths differ; the identity when they match."""
        if self.encoder_width == self.decoder_width:
            return nn.Identity()
        return nn.Linear(self.encoder_width, self.decoder_width)


def thinking_states(
    *, hidden_states: torch.Tensor, input_ids: torch.Tensor, token_id: int
) -> list[torch.Tensor]:
    """Per sample, the states at positions ``i`` whose next token ``i + 1`` is ``token_id``,
    in order (``(count, width)``; ragged across the batch)."""
    if hidden_states.shape[:2] != input_ids.shape:
        raise ValueError(
            f"hidden_states {tuple(hidden_states.shape)} do not match "
            f"input_ids {tuple(input_ids.shape)}"
        )
    emits = input_ids[:, 1:] == token_id
    return [states[:-1][mask] for states, mask in zip(hidden_states, emits, strict=True)]


def inject(
    *,
    inputs_embeds: torch.Tensor,
    input_ids: torch.Tensor,
    token_id: int,
    states: Sequence[torch.Tensor],
    projection: nn.Module,
) -> torch.Tensor:
    """``inputs_embeds`` with the rows of ``token_id`` replaced, in order, by the projected
    ``states`` of the same sample (a new tensor; gradients reach ``states`` and ``projection``)."""
    positions = input_ids == token_id
    if len(states) != len(input_ids):
        raise ValueError(
            f"{len(states)} samples of thinking states for a batch of {len(input_ids)}"
        )
    counts = positions.sum(dim=1).tolist()
    for row, (sample, count) in enumerate(zip(states, counts, strict=True)):
        if len(sample) != count:
            raise ValueError(
                f"sample {row} has {count} thinking-token positions "
                f"but {len(sample)} thinking states"
            )
    if not sum(counts):
        return inputs_embeds
    projected = projection(torch.cat(list(states)).to(inputs_embeds.device))
    # masked_scatter fills the positions in row-major order: sample by sample, left to right.
    return inputs_embeds.masked_scatter(positions[..., None], projected.to(inputs_embeds.dtype))


@torch.no_grad()
def encoder_thinking_states(
    *, encoder: nn.Module, batch: Mapping[str, torch.Tensor], token_ids: Mapping[str, int]
) -> ThinkingStates:
    """Run the frozen encoder once (eval mode, no graph) on a teacher-forced batch and return,
    per stage, each sample's thinking states on the CPU."""
    was_training = encoder.training
    encoder.eval()
    kept: list[torch.Tensor] = []
    # The final norm's output is the state that emits each next token; a hook keeps it, so no
    # layer's hidden states are held and the head computes one position's logits only.
    handle = final_norm(encoder).register_forward_hook(lambda _m, _i, out: kept.append(out))
    try:
        inputs = {key: value for key, value in batch.items() if key != "labels"}
        encoder(**inputs, use_cache=False, logits_to_keep=1)
    finally:
        handle.remove()
        encoder.train(was_training)
    (final,) = kept
    return {
        stage: [
            states.cpu()
            for states in thinking_states(
                hidden_states=final, input_ids=batch["input_ids"], token_id=token_id
            )
        ]
        for stage, token_id in token_ids.items()
    }


def collect_thinking_states(
    *,
    encoder: nn.Module,
    samples: Dataset,
    pad_token_id: int,
    token_ids: Mapping[str, int],
    batch_size: int,
    device: torch.device,
) -> ThinkingStates:
    """Thinking states of every sample, in the samples' order, for every stage in ``token_ids``."""
    loader = DataLoader(
        samples,
        batch_size=batch_size,
        shuffle=False,
        collate_fn=lambda batch: collate(batch, pad_token_id=pad_token_id),
    )
    collected: ThinkingStates = {stage: [] for stage in token_ids}
    for batch in _on_device(loader, device):
        for stage, states in encoder_thinking_states(
            encoder=encoder, batch=batch, token_ids=token_ids
        ).items():
            collected[stage] += states
    return collected


def _on_device(loader: DataLoader, device: torch.device) -> Iterator[dict[str, torch.Tensor]]:
    for batch in loader:
        yield {key: value.to(device) for key, value in batch.items()}


class HandoffDecoder(nn.Module):
    """A decoder (with its LoRA) and the projection, reading the encoder's thinking states in
    place of its thinking-token embeddings; ``forward`` returns the decoder's output
    (``.logits``)."""

    def __init__(self, *, decoder: nn.Module, projection: nn.Module, token_id: int) -> None:
        super().__init__()
        self.decoder = decoder
        self.projection = projection
        self.token_id = token_id

    def get_base_model(self) -> nn.Module:
        """The transformer that activation checkpointing applies to."""
        return (
            self.decoder.get_base_model()
            if hasattr(self.decoder, "get_base_model")
            else self.decoder
        )

    def forward(
        self,
        *,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        thinking_states: Sequence[torch.Tensor],
        use_cache: bool = False,
        logits_to_keep: int | torch.Tensor = 0,
    ):
        embeds = self.decoder.get_input_embeddings()(input_ids)
        embeds = inject(
            inputs_embeds=embeds,
            input_ids=input_ids,
            token_id=self.token_id,
            states=thinking_states,
            projection=self.projection,
        )
        return self.decoder(
            inputs_embeds=embeds,
            attention_mask=attention_mask,
            use_cache=use_cache,
            logits_to_keep=logits_to_keep,
        )


def new_decoder(
    *, decoder_base: nn.Module, settings: LoraSettings, encoder_width: int, token_id: int
) -> HandoffDecoder:
    """A Heima Decoder to train: ``decoder_base`` (changed in place) with a fresh LoRA and a
    projection, seeded by ``settings.seed`` (the LoRA's A matrices, then the projection when
    the widths differ)."""
    handoff = HandoffConfig(
        encoder_width=encoder_width,
        decoder_width=decoder_base.config.hidden_size,
        token_id=token_id,
    )
    with seeded(settings.seed):
        decoder = get_peft_model(decoder_base, decoder_lora_config(settings=settings))
        projection = handoff.projection()
    return HandoffDecoder(decoder=decoder, projection=projection, token_id=token_id)


def trained_decoder(
    *, decoder_base: nn.Module, adapter: AdapterWeights, config: HandoffConfig
) -> HandoffDecoder:
    """A trained decoder for inference: its LoRA merged into the base, its projection loaded
    from the weights saved beside the adapter (``projection.*``)."""
    projection = config.projection()
    saved = {
        k.removeprefix("projection."): v
        for k, v in adapter.extra.items()
        if k.startswith("projection.")
    }
    projection.load_state_dict(saved)  # strict: a width mismatch or a missing weight fails here
    model = adapter.merged_into(decoder_base)
    return HandoffDecoder(decoder=model, projection=projection, token_id=config.token_id).eval()


@torch.no_grad()
def reconstruct(
    *,
    decoder: HandoffDecoder,
    tokenizer: PreTrainedTokenizerBase,
    users: Sequence[str],
    states: Sequence[torch.Tensor],
    decoding: DecodingConfig,
) -> list[str]:
    """The decoder's answers to ``users`` (chat user turns holding the thinking token(s)), each
    reading its ``states`` at those tokens; batched with left padding, KV-cached."""
    if len(users) != len(states):
        raise ValueError(f"{len(users)} prompts but {len(states)} thinking states")
    model = decoder.decoder
    pad = pad_token_id(tokenizer)
    device = model.device
    ends = {tokenizer.eos_token_id, pad}
    texts: list[str] = []
    for batch_index, start in enumerate(range(0, len(users), decoding.batch_size)):
        prompts = [
            tokenizer(
                decoder_prompt(tokenizer=tokenizer, user=user), add_special_tokens=False
            ).input_ids
            for user in users[start : start + decoding.batch_size]
        ]
        width = max(len(ids) for ids in prompts)
        input_ids = torch.tensor(
            [[pad] * (width - len(ids)) + ids for ids in prompts], device=device
        )
        attention_mask = torch.tensor(
            [[0] * (width - len(ids)) + [1] * len(ids) for ids in prompts], device=device
        )
        embeds = inject(
            inputs_embeds=model.get_input_embeddings()(input_ids),
            input_ids=input_ids,
            token_id=decoder.token_id,
            states=states[start : start + decoding.batch_size],
            projection=decoder.projection,
        )
        # With embeddings and no ids, generate returns the new tokens only.
        with seeded(decoding.seed + batch_index):
            output = model.generate(
                inputs_embeds=embeds,
                attention_mask=attention_mask,
                **decoding.generate_kwargs(),
                eos_token_id=tokenizer.eos_token_id,
                pad_token_id=pad,
            )
        texts += [tokenizer.decode(until_end(ids, ends)).strip() for ids in output.tolist()]
    return texts
