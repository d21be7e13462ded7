"""``HFPretrainedDataset``: anything with ``save_pretrained``/``from_pretrained`` as a folder."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from kedro.io.core import DatasetError, Version
from transformers import PreTrainedModel

from ._local import FolderDataset


class HFPretrainedDataset(FolderDataset[Any, Any]):
    """A Hugging Face model, tokenizer or processor saved with ``save_pretrained``.

    ``hf_class`` is the dotted path of the class that loads it, e.g.
    ``transformers.MllamaForConditionalGeneration`` or ``transformers.AutoTokenizer``. Models
    load from safetensors only, and remote code is never trusted. ``read_only`` protects a
    published model's folder from any save. ``lazy`` loads a function that loads the model, for
    a node that needs it only under some settings (an 8B model is not read for nothing).

    Example (catalog)::

        cot_model:
          type: heima_kedro.datasets.HFPretrainedDataset
          filepath: data/06_models/cot_model
          hf_class: transformers.MllamaForConditionalGeneration
          load_args: {dtype: bfloat16}
    """

    def __init__(
        self,
        *,
        filepath: str,
        hf_class: str,
        load_args: dict[str, Any] | None = None,
        save_args: dict[str, Any] | None = None,
        version: Version | None = None,
        metadata: dict[str, Any] | None = None,
        mlflow_artifact_path: str | None = None,
        read_only: bool = False,
        lazy: bool = False,
    ) -> None:
        self._hf_class_path = hf_class
        self._read_only = read_only
        self._lazy = lazy
        self._load_args = dict(load_args or {})
        self._save_args = dict(save_args or {})
        if self._load_args.get("trust_remote_code"):
            raise DatasetError(f"HFPretrainedDataset({filepath}): trust_remote_code is not allowed")
        super().__init__(
            filepath=filepath,
            version=version,
            metadata=metadata,
            mlflow_artifact_path=mlflow_artifact_path,
        )

    def _describe(self) -> dict[str, Any]:
        return {
            **super()._describe(),
            "hf_class": self._hf_class_path,
            "load_args": self._load_args,
            "save_args": self._save_args,
            "read_only": self._read_only,
            "lazy": self._lazy,
        }

    @property
    def read_only(self) -> bool:
        """A published model's folder: no pipeline makes it; a missing one is put there by hand."""
        return self._read_only

    def _hf_class(self) -> type:
        module, _, name = self._hf_class_path.rpartition(".")
        try:
            return getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError, ValueError) as error:
            raise DatasetError(
                f"HFPretrainedDataset: cannot import hf_class '{self._hf_class_path}'"
            ) from error

    def load(self) -> Any:
        return self._load_now if self._lazy else self._load_now()

    def _load_now(self) -> Any:
        hf_class = self._hf_class()
        args = {**self._load_args, "trust_remote_code": False}
        if isinstance(hf_class, type) and issubclass(hf_class, PreTrainedModel):
            args["use_safetensors"] = True
        return hf_class.from_pretrained(self._load_folder(), **args)

    def save(self, data: Any) -> None:
        if self._read_only:
            raise DatasetError(
                f"HFPretrainedDataset({self._filepath}) is read-only: "
                "a published model is never overwritten"
            )
        if not hasattr(data, "save_pretrained"):
            raise DatasetError(
                f"HFPretrainedDataset({self._filepath}): "
                f"{type(data).__name__} has no save_pretrained"
            )

        def write(folder: Path) -> None:
            data.save_pretrained(folder, **self._save_args)

        self._save_folder(write)
