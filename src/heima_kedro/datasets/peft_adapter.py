"""``PeftAdapterDataset``: a LoRA adapter in PEFT's own format, versioned."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from kedro.io.core import DatasetError
from peft import (
    PeftConfig,
    PeftModel,
    get_peft_model,
    get_peft_model_state_dict,
    set_peft_model_state_dict,
)
from safetensors.torch import load_file, save_file

from ._folder import FolderDataset

_CONFIG, _WEIGHTS, _EXTRA = "adapter_config.json", "adapter_model.safetensors", "extra_weights.safetensors"


@dataclass
class AdapterWeights:
    """A loaded adapter: its PEFT config, its weights, and weights trained beside it (e.g. a
    projection), kept apart so the folder stays loadable with ``PeftModel.from_pretrained``."""

    config: PeftConfig
    weights: dict[str, torch.Tensor]
    extra: dict[str, torch.Tensor] = field(default_factory=dict)

    @classmethod
    def from_model(cls, model: PeftModel, *, extra: dict[str, torch.Tensor] | None = None) -> AdapterWeights:
        """The trained adapter of ``model`` (copied to the CPU), ready for the catalog."""
        weights = {k: v.detach().cpu().clone() for k, v in get_peft_model_state_dict(model).items()}
        extra = {k: v.detach().cpu().clone() for k, v in (extra or {}).items()}
        return cls(config=model.peft_config["default"], weights=weights, extra=extra)

    def apply_to(self, base_model: torch.nn.Module) -> PeftModel:
        """Wrap ``base_model`` with this adapter and load its weights (strictly)."""
        model = get_peft_model(base_model, self.config)
        result = set_peft_model_state_dict(model, self.weights)
        if result.unexpected_keys:
            raise ValueError(f"adapter weights do not fit the model: {result.unexpected_keys[:5]}")
        return model


class PeftAdapterDataset(FolderDataset[Any, AdapterWeights]):
    """Saves a ``PeftModel`` (or an ``AdapterWeights``) with PEFT's ``save_pretrained`` layout
    (``adapter_config.json`` + ``adapter_model.safetensors``); loads an ``AdapterWeights``,
    which a node applies to its base model without touching the disk.

    Example (catalog)::

        "{namespace}.encoder_adapter":
          type: heima_kedro.datasets.PeftAdapterDataset
          filepath: data/06_models/{namespace}/encoder_adapter
          versioned: true
          mlflow_artifact_path: "{namespace}/adapter"   # optional: also log it to MLflow
    """

    def load(self) -> AdapterWeights:
        folder = self._load_folder()
        if not (folder / _CONFIG).is_file() or not (folder / _WEIGHTS).is_file():
            raise DatasetError(f"PeftAdapterDataset: '{folder}' lacks {_CONFIG} or {_WEIGHTS}")
        extra = load_file(folder / _EXTRA) if (folder / _EXTRA).is_file() else {}
        return AdapterWeights(
            config=PeftConfig.from_pretrained(folder), weights=load_file(folder / _WEIGHTS), extra=extra
        )

    def save(self, data: PeftModel | AdapterWeights) -> None:
        if isinstance(data, PeftModel):
            self._save_folder(lambda folder: data.save_pretrained(folder))
            return
        if not isinstance(data, AdapterWeights):
            raise DatasetError(f"PeftAdapterDataset({self._filepath}): cannot save {type(data).__name__}")

        def write(folder: Path) -> None:
            data.config.save_pretrained(folder)
            save_file({k: v.contiguous() for k, v in data.weights.items()}, folder / _WEIGHTS)
            if data.extra:
                save_file({k: v.contiguous() for k, v in data.extra.items()}, folder / _EXTRA)

        self._save_folder(write)
