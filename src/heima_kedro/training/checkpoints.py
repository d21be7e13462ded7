"""Training checkpoints: enough to continue a killed run exactly where it stopped.

A checkpoint holds the trainable weights (safetensors), the optimiser state, the step, the
history so far and the RNG state (a torch file read back with ``weights_only=True``). It is
written to a staging folder and renamed into place, so a kill during a save leaves the previous
checkpoint intact; only the newest is kept. Under DeepSpeed ZeRO-3 each process also writes its
partitions to ``zero/step_N`` (before the checkpoint is renamed into place, so a checkpoint
never names missing partitions). A ``fingerprint`` of everything that determines the
run (config, data, starting weights) guards against resuming a different run.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

_WEIGHTS, _STATE, _META = "trainable.safetensors", "state.pt", "meta.json"
#: The subfolder of DeepSpeed's per-process partitions, one ``step_N`` per checkpoint.
ZERO_FOLDER = "zero"


def step_name(step: int) -> str:
    return f"step_{step:08d}"


@dataclass(frozen=True)
class CheckpointConfig:
    """Save every ``every`` optimiser steps under ``directory``; resume from it when the
    fingerprints match."""

    directory: Path
    every: int
    fingerprint: str

    def __post_init__(self) -> None:
        if not isinstance(self.every, int) or self.every < 1:
            raise ValueError(f"checkpoint.every must be an integer >= 1, got {self.every!r}")
        if not self.fingerprint:
            raise ValueError("checkpoint.fingerprint must not be empty")


def fingerprint(*parts: Any, model: torch.nn.Module | None = None) -> str:
    """A digest of JSON-able ``parts`` and, cheaply, of a model: its PEFT configs, and its weights'
    names, shapes and up to 1,024 evenly spaced values per tensor (fast even for billions)."""
    if model is not None:
        parts = (
            *parts,
            [
                {name: _without_base_path(config) for name, config in m.peft_config.items()}
                for m in model.modules()
                if isinstance(getattr(m, "peft_config", None), dict)
            ],
        )
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True, default=_jsonable).encode())
    if model is not None:
        for name, tensor in model.state_dict().items():
            flat = tensor.detach().reshape(-1)
            sample = flat[:: max(1, flat.numel() // 1024)].to(torch.float64).cpu()
            digest.update(f"{name}{tuple(tensor.shape)}".encode())
            digest.update(sample.numpy().tobytes())
    return digest.hexdigest()[:32]


def _without_base_path(config: Any) -> Any:
    """A PEFT config without its base model's folder: a rerun loads the same weights from a new
    version's folder (the weights themselves are in the fingerprint)."""
    if not hasattr(config, "to_dict"):
        return config
    return {k: v for k, v in config.to_dict().items() if k != "base_model_name_or_path"}


def _jsonable(value: Any) -> Any:
    """Sets sorted (a set's order changes from process to process), configs as dicts."""
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    if hasattr(value, "to_dict"):
        return value.to_dict()
    return str(value)


def data_digest(*columns: Iterable[str | torch.Tensor]) -> str:
    """A digest of the data a stage trains on, column by column (pair ids, texts, tensors such as
    thinking states): the same pair ids with other data (pairs rebuilt with other thinking
    tokens, an edited source, another encoder's states) must not resume an old run."""
    digest = hashlib.sha256()
    for column in columns:
        for item in column:
            if isinstance(item, torch.Tensor):
                digest.update(item.detach().cpu().contiguous().numpy().tobytes())
            else:
                digest.update(str(item).encode())
            digest.update(b"\0")
        digest.update(b"\1")
    return digest.hexdigest()[:32]


def save_checkpoint(
    *, config: CheckpointConfig, step: int, weights: dict[str, torch.Tensor], state: dict
) -> Path:
    """Write the checkpoint of ``step`` (after that many optimiser steps): the trainable
    ``weights`` (whole, on the CPU) and the rest of the ``state``; drop older ones."""
    config.directory.mkdir(parents=True, exist_ok=True)
    target = config.directory / step_name(step)
    staging = Path(tempfile.mkdtemp(prefix=".staging_", dir=config.directory))
    try:
        save_file(weights, staging / _WEIGHTS)
        torch.save(state, staging / _STATE)
        (staging / _META).write_text(json.dumps({"step": step, "fingerprint": config.fingerprint}))
        # Only another run's checkpoint can be there already (a resumed run saves later steps).
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    for older in [
        *config.directory.glob("step_*"),
        *config.directory.glob(f"{ZERO_FOLDER}/step_*"),
    ]:
        if older.name != target.name:
            shutil.rmtree(older, ignore_errors=True)
    return target


def load_latest_checkpoint(
    *, config: CheckpointConfig, trainable: set[str]
) -> tuple[int, dict[str, torch.Tensor], dict] | None:
    """The newest matching checkpoint: (step, its weights, the rest of its state); the weights
    must be exactly the ``trainable`` parameters' names."""
    for folder in sorted(config.directory.glob("step_*"), reverse=True):
        meta = json.loads((folder / _META).read_text())
        if meta["fingerprint"] != config.fingerprint:
            return None  # another run's checkpoint: start over (it is replaced at the next save)
        weights = load_file(folder / _WEIGHTS)
        if set(weights) != trainable:
            raise ValueError(f"checkpoint {folder} does not match the model's trainable parameters")
        return meta["step"], weights, torch.load(folder / _STATE, weights_only=True)
    return None
