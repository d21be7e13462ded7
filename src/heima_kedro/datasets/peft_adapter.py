"""``PeftAdapterDataset``: a LoRA adapter in PEFT's own format, versioned."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.io.core import DatasetError
from peft import PeftConfig, PeftModel
from safetensors.torch import load_file, save_file

from heima_kedro.models.adapters import AdapterWeights

from ._local import FolderDataset

_CONFIG, _WEIGHTS, _EXTRA = (
    "adapter_config.json",
    "adapter_model.safetensors",
    "extra_weights.safetensors",
)


class PeftAdapterDataset(FolderDataset[Any, AdapterWeights]):
    """Saves a ``PeftModel`` (or an ``AdapterWeights``) with PEFT's ``save_pretrained`` layout
    (``adapter_config.json`` + ``adapter_model.safetensors``); loads an ``AdapterWeights``,
    which a node applies to its base model without touching the disk.

    Example (catalog)::

        "{namespace}.adapter":
          type: heima_kedro.datasets.PeftAdapterDataset
          filepath: data/06_models/adapters/{namespace}
          versioned: true
          mlflow_artifact_path: "adapters/{namespace}"   # optional: also log it to MLflow
    """

    def load(self) -> AdapterWeights:
        folder = self._load_folder()
        if not (folder / _CONFIG).is_file() or not (folder / _WEIGHTS).is_file():
            raise DatasetError(f"PeftAdapterDataset: '{folder}' lacks {_CONFIG} or {_WEIGHTS}")
        extra = load_file(folder / _EXTRA) if (folder / _EXTRA).is_file() else {}
        return AdapterWeights(
            config=PeftConfig.from_pretrained(folder),
            weights=load_file(folder / _WEIGHTS),
            extra=extra,
        )

    def save(self, data: PeftModel | AdapterWeights) -> None:
        if isinstance(data, PeftModel):
            self._save_folder(lambda folder: data.save_pretrained(folder))
            return
        if not isinstance(data, AdapterWeights):
            raise DatasetError(
                f"PeftAdapterDataset({self._filepath}): cannot save {type(data).__name__}"
            )

        def write(folder: Path) -> None:
            data.config.save_pretrained(folder)
            save_file({k: v.contiguous() for k, v in data.weights.items()}, folder / _WEIGHTS)
            if data.extra:
                save_file({k: v.contiguous() for k, v in data.extra.items()}, folder / _EXTRA)

        self._save_folder(write)
