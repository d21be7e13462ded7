"""Trained LoRA adapters as values: what a stage returns and the catalog saves, applied to a base
model for training on, or merged into it for inference."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from peft import (
    PeftConfig,
    PeftModel,
    get_peft_model,
    get_peft_model_state_dict,
    set_peft_model_state_dict,
)


@dataclass
class AdapterWeights:
    """A loaded adapter: its PEFT config, its weights, and weights trained beside it (e.g. a
    projection), kept apart so the folder stays loadable with ``PeftModel.from_pretrained``."""

    config: PeftConfig
    weights: dict[str, torch.Tensor]
    extra: dict[str, torch.Tensor] = field(default_factory=dict)

    @classmethod
    def from_model(
        cls, model: PeftModel, *, extra: dict[str, torch.Tensor] | None = None
    ) -> AdapterWeights:
        """The trained adapter of ``model`` (copied to the CPU), ready for the catalog."""
        weights = {k: v.detach().cpu().clone() for k, v in get_peft_model_state_dict(model).items()}
        extra = {k: v.detach().cpu().clone() for k, v in (extra or {}).items()}
        return cls(config=model.peft_config["default"], weights=weights, extra=extra)

    def apply_to(self, base_model: torch.nn.Module) -> PeftModel:
        """Wrap ``base_model`` with this adapter and load its weights (strictly). The base is
        changed in place: give each adapter its own freshly loaded base."""
        model = get_peft_model(base_model, self.config)
        result = set_peft_model_state_dict(model, self.weights)
        if result.unexpected_keys:
            raise ValueError(f"adapter weights do not fit the model: {result.unexpected_keys[:5]}")
        return model

    def merged_into(self, base_model: torch.nn.Module) -> torch.nn.Module:
        """``base_model`` with this adapter merged into its weights: the model as deployed, with
        no LoRA matmuls left (the base is changed in place, as by :meth:`apply_to`)."""
        return self.apply_to(base_model).merge_and_unload()
