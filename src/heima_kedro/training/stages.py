"""One stage trainer for every training stage of the study: stage 0, the encoder stages 1–4 and
the three decoders, in this process or under ``accelerate launch``.

A stage is a validated :class:`StageConfig` (what it trains on, how, where it checkpoints, how
it launches) and a :class:`Trainable` (the model trained in place, how its samples are built from
the pairs, and how it crosses to launched processes and back). :func:`train_stage` is the entry.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

import pandas as pd
from safetensors.torch import load_file
from torch import nn
from torch.utils.data import Dataset

from heima_kedro.models.launch import LaunchConfig, run_folder, run_ranks
from heima_kedro.training.checkpoints import CheckpointConfig, fingerprint
from heima_kedro.training.live_metrics import LiveMetrics
from heima_kedro.training.loop import TrainConfig, TrainResult, train

logger = logging.getLogger(__name__)

#: What every rank of a launched stage runs.
RANK_MODULE = "heima_kedro.training.rank"
#: What a launched stage's run folder holds, besides the trainable's own folder.
STAGE_FILE, PAIRS_FILE, TRAINED_FILE, RESULT_FILE = (
    "stage.json",
    "pairs.parquet",
    "trained.safetensors",
    "result.json",
)


@dataclass(frozen=True)
class CheckpointSettings:
    """Save a resumable checkpoint every ``every`` optimiser steps (the folder is the stage's
    ``<namespace>.checkpoints`` catalog entry)."""

    every: int

    def __post_init__(self) -> None:
        if isinstance(self.every, bool) or not isinstance(self.every, int) or self.every < 1:
            raise ValueError(f"checkpoint.every must be an integer >= 1, got {self.every!r}")


@dataclass(frozen=True)
class StageConfig:
    """One training stage: the pairs' ``target`` (an encoder target column such as
    ``compress_all``, or the thinking stage a decoder writes), the longest sample, the loop's
    settings, checkpoints (null: none) and the launch."""

    target: str
    max_length: int
    train: TrainConfig
    checkpoint: CheckpointSettings | None = None
    launch: LaunchConfig = field(default_factory=LaunchConfig)

    def __post_init__(self) -> None:
        if not isinstance(self.target, str) or not self.target:
            raise ValueError(f"target must name what the stage trains on, got {self.target!r}")
        if (
            isinstance(self.max_length, bool)
            or not isinstance(self.max_length, int)
            or self.max_length < 1
        ):
            raise ValueError(f"max_length must be an integer >= 1, got {self.max_length!r}")

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> StageConfig:
        """From a stage's parameter group (``target``, ``max_length``, ``train``, ``checkpoint``,
        ``launch``); an unknown or missing key is named."""
        known = {"target", "max_length", "train", "checkpoint", "launch"}
        unknown = sorted(set(params) - known)
        if unknown:
            raise ValueError(f"unknown stage parameters {unknown}; a stage takes {sorted(known)}")
        missing = sorted({"target", "max_length", "train"} - set(params))
        if missing:
            raise ValueError(f"stage parameters {missing} are missing")
        checkpoint = params.get("checkpoint")
        return cls(
            target=params["target"],
            max_length=params["max_length"],
            train=TrainConfig(**params["train"]),
            checkpoint=CheckpointSettings(**checkpoint) if checkpoint else None,
            launch=LaunchConfig(**(params.get("launch") or {})),
        )

    def optimizer_steps(self, pairs: int) -> int:
        """The stage's optimiser steps on ``pairs`` training pairs: ``train.max_steps``, else its
        epochs over each process's share of the batches."""
        train = self.train
        if train.max_steps is not None:
            return train.max_steps
        batches = math.ceil(pairs / (train.batch_size * self.launch.processes))
        return train.epochs * math.ceil(batches / train.grad_accum)

    def to_params(self) -> dict[str, Any]:
        """The parameter group again (JSON-able), as :meth:`from_params` reads it."""
        return asdict(self)


class Trainable(Protocol):
    """What a stage trains: ``model``, trained in place, and its samples; written to a folder and
    read back (``read(folder, pairs=...)``, a class method) when the stage is launched."""

    kind: ClassVar[str]
    model: nn.Module

    def samples(self, pairs: pd.DataFrame, *, target: str, max_length: int) -> Dataset: ...

    def collate(self) -> Callable[[list], dict]: ...

    def data_digest(self, pairs: pd.DataFrame, *, target: str) -> str: ...

    def settings(self) -> dict[str, Any]:
        """What the trainable adds to the stage's settings (e.g. its alignment weight): a
        checkpoint of other settings is not resumed."""
        ...

    def write(self, folder: Path) -> None: ...


def train_stage(
    *,
    trainable: Trainable,
    pairs: pd.DataFrame,
    stage: StageConfig,
    checkpoints: Path | None = None,
    live: LiveMetrics | None = None,
) -> TrainResult:
    """Train ``trainable.model`` in place on the ``pairs``, in this process or, when
    ``stage.launch`` asks for it, on its launched processes (the trained weights come back
    here). ``checkpoints`` is the stage's checkpoint folder: a rerun after a kill resumes.
    ``live`` is the MLflow run the main process logs the loss and learning rate to as it goes."""
    if not stage.launch.launches:
        return train_here(
            trainable=trainable, pairs=pairs, stage=stage, checkpoints=checkpoints, live=live
        )
    with run_folder(stage.launch) as run_dir:
        trainable.write(run_dir / trainable.kind)
        pairs.to_parquet(run_dir / PAIRS_FILE)
        checkpoint = _checkpoint(
            trainable=trainable, pairs=pairs, stage=stage, checkpoints=checkpoints
        )
        spec = {
            "kind": trainable.kind,
            "stage": stage.to_params(),
            "checkpoints": str(checkpoints) if checkpoints else None,
            # Here, where the model is whole: a rank may hold empty (meta) or sharded weights.
            "fingerprint": checkpoint.fingerprint if checkpoint else None,
            "live": asdict(live) if live else None,
        }
        (run_dir / STAGE_FILE).write_text(json.dumps(spec))
        run_ranks(module=RANK_MODULE, run_dir=run_dir, config=stage.launch)
        trained = load_file(run_dir / TRAINED_FILE)
        missing = {n for n, p in trainable.model.named_parameters() if p.requires_grad} - set(
            trained
        )
        if missing:
            raise RuntimeError(f"the launched run did not return {sorted(missing)[:3]}")
        trainable.model.load_state_dict(trained, strict=False)
        result = json.loads((run_dir / RESULT_FILE).read_text())
    logger.info(
        "Launched %s stage finished on %d processes", trainable.kind, result.pop("num_processes")
    )
    return TrainResult(**result)


def train_here(
    *,
    trainable: Trainable,
    pairs: pd.DataFrame,
    stage: StageConfig,
    checkpoints: Path | None,
    fingerprint: str | None = None,
    live: LiveMetrics | None = None,
) -> TrainResult:
    """The stage in this process (a launched rank calls this too, with the ``fingerprint`` the
    launching process computed)."""
    result = train(
        model=trainable.model,
        samples=trainable.samples(pairs, target=stage.target, max_length=stage.max_length),
        collate_fn=trainable.collate(),
        config=stage.train,
        checkpoint=_checkpoint(
            trainable=trainable,
            pairs=pairs,
            stage=stage,
            checkpoints=checkpoints,
            given=fingerprint,
        ),
        live=live,
    )
    logger.info(
        "%s stage on %s: %d steps, %.0f s of training, %.0f tokens/s, loss %.3f → %.3f",
        trainable.kind,
        stage.target,
        result.steps,
        result.seconds,
        result.tokens_per_second,
        result.losses[0],
        result.losses[-1],
    )
    return result


def _checkpoint(
    *,
    trainable: Trainable,
    pairs: pd.DataFrame,
    stage: StageConfig,
    checkpoints: Path | None,
    given: str | None = None,
) -> CheckpointConfig | None:
    """Resume only a run of the same stage settings, data and starting weights (the ``given``
    fingerprint of them, else computed here)."""
    if stage.checkpoint is None or checkpoints is None:
        return None
    if given:
        return CheckpointConfig(
            directory=Path(checkpoints), every=stage.checkpoint.every, fingerprint=given
        )
    encoding = TrainConfig.encoding_settings
    train = {k: v for k, v in asdict(stage.train).items() if k not in encoding}
    settings = {"target": stage.target, "max_length": stage.max_length, "train": train}
    settings |= trainable.settings()
    if stage.launch.deepspeed:  # ZeRO's partitions resume only on as many processes
        settings["processes"] = stage.launch.processes
    return CheckpointConfig(
        directory=Path(checkpoints),
        every=stage.checkpoint.every,
        fingerprint=fingerprint(
            settings, trainable.data_digest(pairs, target=stage.target), model=trainable.model
        ),
    )
