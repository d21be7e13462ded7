"""Reading one stage back out of the thinking states, as the evaluation, the demo and the
benchmarks do: a trained Heima Decoder (LoRA merged, projection loaded) asked the stage's
question with the states at its thinking tokens, its answer stripped of the template's wording."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from heima_kedro.data.decoder_samples import decoder_question, strip_answer_template
from heima_kedro.models.adapters import AdapterWeights
from heima_kedro.models.compute import default_device
from heima_kedro.models.generation import DecodingConfig
from heima_kedro.models.handoff import HandoffConfig, HandoffDecoder, reconstruct, trained_decoder
from heima_kedro.models.tokenizer import thinking_token_ids


@dataclass(frozen=True)
class StageReconstructor:
    """One stage's trained decoder, on the compute device, with the question wording it asks."""

    stage: str
    decoder: HandoffDecoder
    tokenizer: PreTrainedTokenizerBase
    thinking_token: str
    question_template: int

    @classmethod
    def load(
        cls,
        *,
        stage: str,
        decoder_base: PreTrainedModel,
        adapter: AdapterWeights,
        tokenizer: PreTrainedTokenizerBase,
        thinking_tokens: dict[str, str],
        encoder_width: int,
        question_template: int,
    ) -> StageReconstructor:
        """The decoder of ``stage`` from its base and adapter (merging changes the base in place:
        give each stage its own freshly loaded base)."""
        config = HandoffConfig(
            encoder_width=encoder_width,
            decoder_width=decoder_base.config.hidden_size,
            token_id=thinking_token_ids(tokenizer, thinking_tokens)[stage],
        )
        decoder = trained_decoder(decoder_base=decoder_base, adapter=adapter, config=config)
        return cls(
            stage=stage,
            decoder=decoder.to(default_device()),
            tokenizer=tokenizer,
            thinking_token=thinking_tokens[stage],
            question_template=question_template,
        )

    def reconstruct(
        self, *, questions: Sequence[str], states: Sequence[torch.Tensor], decoding: DecodingConfig
    ) -> list[str]:
        """The stage text for each question, read from its states (one per thinking token)."""
        users = [
            decoder_question(
                stage=self.stage,
                question=question,
                thinking=self.thinking_token * len(sample),
                question_template=self.question_template,
            )
            for question, sample in zip(questions, states, strict=True)
        ]
        texts = reconstruct(
            decoder=self.decoder,
            tokenizer=self.tokenizer,
            users=users,
            states=states,
            decoding=decoding,
        )
        return [strip_answer_template(stage=self.stage, text=text) for text in texts]
