"""Trainable weights and optimiser state of a model whose parameters may be sharded: FSDP2 keeps
each parameter as a DTensor, a slice per process, which ``safetensors`` cannot save and a full
tensor cannot be loaded into; DeepSpeed ZeRO-3 keeps each process's partition beside an empty
parameter. These gather the trainable weights (LoRA's, a small part of the model) in full for a
checkpoint or a stage's result and put them back into the shards on resume; FSDP's optimiser
state is gathered too, ZeRO's stays in DeepSpeed's own per-process files (its fp32 master
weights live in the optimiser). Under sharding every process must call them together (they
communicate); an unsharded model takes the plain path."""

from __future__ import annotations

import contextlib
from pathlib import Path

import torch
from torch import nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_optimizer_state_dict,
    set_optimizer_state_dict,
)
from torch.distributed.tensor import DTensor, distribute_tensor

_FULL = StateDictOptions(full_state_dict=True)


def is_sharded(model: nn.Module) -> bool:
    return any(isinstance(parameter, DTensor) for parameter in model.parameters())


def trainable_names(model: nn.Module) -> set[str]:
    return {name for name, parameter in model.named_parameters() if parameter.requires_grad}


def _zero_gathered(parameters: list[nn.Parameter]) -> contextlib.AbstractContextManager:
    """ZeRO-3's partitioned ``parameters`` whole for the block (nothing to do otherwise)."""
    if not any(hasattr(parameter, "ds_id") for parameter in parameters):
        return contextlib.nullcontext()
    import deepspeed  # only a DeepSpeed run gets here

    return deepspeed.zero.GatheredParameters(parameters)


def gathered_trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The trainable weights, whole, on the CPU (on every process)."""
    trainable = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    with _zero_gathered([p for _, p in trainable]):
        return {
            name: (p.full_tensor() if isinstance(p, DTensor) else p).detach().cpu().clone()
            for name, p in trainable
        }


def restore_trainable_state(model: nn.Module, weights: dict[str, torch.Tensor]) -> None:
    """Load whole trainable ``weights`` (every process holds them) into the model's parameters,
    each process keeping its own slice where they are sharded."""
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name not in weights:
                continue
            value = weights[name].to(dtype=parameter.dtype)
            if isinstance(parameter, DTensor):
                value = distribute_tensor(
                    value.to(parameter.device), parameter.device_mesh, parameter.placements
                )
                parameter.to_local().copy_(value.to_local())
            else:
                parameter.copy_(value)


def _plain(optimizer: torch.optim.Optimizer) -> torch.optim.Optimizer:
    """The torch optimiser inside Accelerate's wrapper."""
    return getattr(optimizer, "optimizer", optimizer)


def gathered_optimizer_state(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict:
    """The optimiser's state, whole (keyed by parameter name when sharded)."""
    if not is_sharded(model):
        return optimizer.state_dict()
    return get_optimizer_state_dict(model, _plain(optimizer), options=_FULL)


def restore_optimizer_state(
    model: nn.Module, optimizer: torch.optim.Optimizer, state: dict
) -> None:
    """Load a state :func:`gathered_optimizer_state` gave, resharding it where needed."""
    if not is_sharded(model):
        optimizer.load_state_dict(state)
        return
    set_optimizer_state_dict(model, _plain(optimizer), state, options=_FULL)


def save_zero_state(engine: nn.Module, folder: Path, *, tag: str) -> None:
    """DeepSpeed's checkpoint of this process's partitions (trainable weights, fp32 masters and
    optimiser moments) under ``folder/tag``; every process calls it."""
    engine.save_checkpoint(str(folder), tag=tag, save_latest=False, exclude_frozen_parameters=True)


def load_zero_state(engine: nn.Module, folder: Path, *, tag: str) -> None:
    """Restore the partitions :func:`save_zero_state` wrote (the same number of processes)."""
    loaded, _ = engine.load_checkpoint(
        str(folder), tag=tag, load_module_strict=False, load_lr_scheduler_states=False
    )
    if loaded is None:
        raise RuntimeError(f"DeepSpeed could not load its checkpoint '{tag}' from {folder}")
