"""Training a stage under ``accelerate launch`` with several processes, from inside a node.

Kedro runs nodes in one process, so a node that wants N processes (GPUs, or CPU processes with
gloo) writes its inputs to a run folder and launches ``accelerate launch -m heima_kedro.launch``;
every rank trains, only the main process writes the result, and the node reads it back. The
choice of processes, FSDP or DeepSpeed is made at this launch edge (an Accelerate config file),
never inside the model code.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from peft import PeftModel
from PIL import Image
from safetensors.torch import load_file
from transformers import MllamaForConditionalGeneration, MllamaProcessor

from heima_kedro.encoder_data import ImageLoaders
from heima_kedro.models.training import TrainResult
from heima_kedro.stage_training import train_encoder_stage

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LaunchConfig:
    """``num_processes`` > 1 launches; ``config_file`` is an Accelerate config (e.g. FSDP)."""

    num_processes: int = 1
    config_file: str | None = None
    run_dir: str | None = None  # where inputs and results pass; a temporary folder by default

    def __post_init__(self) -> None:
        if not isinstance(self.num_processes, int) or self.num_processes < 1:
            raise ValueError(f"launch.num_processes must be an integer >= 1, got {self.num_processes!r}")
        if self.config_file and not Path(self.config_file).is_file():
            raise ValueError(f"launch.config_file not found: '{self.config_file}'")


def fit_encoder_stage(
    *,
    model: torch.nn.Module,
    processor: MllamaProcessor,
    pairs: pd.DataFrame,
    images: ImageLoaders,
    stage: dict[str, Any],
) -> TrainResult:
    """Train in this process, or under ``accelerate launch`` when ``stage['launch']`` asks for
    more than one process or names an Accelerate config file."""
    launch = LaunchConfig(**stage.get("launch") or {})
    if launch.num_processes == 1 and not launch.config_file:
        return train_encoder_stage(model=model, processor=processor, pairs=pairs, images=images, stage=stage)
    if launch.run_dir:
        return train_encoder_stage_launched(
            model=model, processor=processor, pairs=pairs, stage=stage, launch=launch, run_dir=Path(launch.run_dir)
        )
    with tempfile.TemporaryDirectory(prefix="heima_launch_") as run_dir:
        return train_encoder_stage_launched(
            model=model, processor=processor, pairs=pairs, stage=stage, launch=launch, run_dir=Path(run_dir)
        )


def train_encoder_stage_launched(
    *,
    model: torch.nn.Module,
    processor: MllamaProcessor,
    pairs: pd.DataFrame,
    stage: dict[str, Any],
    launch: LaunchConfig,
    run_dir: Path,
) -> TrainResult:
    """Like :func:`train_encoder_stage` (the model is updated in place), on N processes."""
    run_dir.mkdir(parents=True, exist_ok=True)
    is_peft = isinstance(model, PeftModel)
    inputs = {"base": str(_base_folder(model, run_dir))}
    if is_peft:
        model.save_pretrained(run_dir / "adapter")
    (run_dir / "inputs.json").write_text(json.dumps(inputs))
    processor.save_pretrained(run_dir / "processor")
    pairs.to_parquet(run_dir / "pairs.parquet")
    (run_dir / "stage.json").write_text(json.dumps(stage))
    command = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(launch.num_processes),
               "--main_process_port", str(_free_port())]
    if launch.config_file:
        command += ["--config_file", launch.config_file]
    elif launch.num_processes > 1:
        # Accelerate's multi-process launcher (torchrun underneath); without CUDA the ranks use
        # gloo on the CPU (`accelerate launch --cpu` would start a single process).
        command.append("--multi_gpu")
    command += ["-m", "heima_kedro.launch", "--run-dir", str(run_dir)]
    logger.info("Launching %d processes: %s", launch.num_processes, " ".join(command))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    completed = subprocess.run(command, env=env, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"accelerate launch failed with exit code {completed.returncode}; see the log above")
    trained = load_file(run_dir / "trained.safetensors")
    missing = {n for n, p in model.named_parameters() if p.requires_grad} - set(trained)
    if missing:
        raise RuntimeError(f"the launched run did not return {sorted(missing)[:3]}")
    model.load_state_dict(trained, strict=False)
    world = json.loads((run_dir / "world.json").read_text())
    logger.info("Launched training finished on %d processes", world["num_processes"])
    return TrainResult(**json.loads((run_dir / "result.json").read_text()))


def _base_folder(model: torch.nn.Module, run_dir: Path) -> Path:
    """The folder the ranks load the base model from: the one it was loaded from when there is
    one (no copy of an 11B model per stage), else a fresh ``save_pretrained`` of it."""
    base = model.get_base_model() if isinstance(model, PeftModel) else model
    source = Path(base.name_or_path) if base.name_or_path else None
    if source and (source / "config.json").is_file():
        return source
    if isinstance(model, PeftModel):
        # Saving a base that carries LoRA layers would rename its weights; pipelines always
        # load the base from a folder, so this only guards direct callers.
        raise ValueError("a launched LoRA stage needs a base model loaded with from_pretrained (name_or_path)")
    base.save_pretrained(run_dir / "base")
    return run_dir / "base"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _rank_main(run_dir: Path) -> None:
    """What every rank runs: load the inputs, train, and (main process) write the result."""
    from accelerate import PartialState
    from safetensors.torch import save_file

    from heima_kedro.models.checkpoints import trainable_state

    # Without CUDA the ranks must say so, or each would think it trains alone (gloo on the CPU).
    state = PartialState(cpu=not torch.cuda.is_available())
    stage = json.loads((run_dir / "stage.json").read_text())
    pairs = pd.read_parquet(run_dir / "pairs.parquet")
    images = {image: (lambda path=path: Image.open(path)) for image, path in zip(pairs["image"], pairs["image_path"], strict=True)}
    inputs = json.loads((run_dir / "inputs.json").read_text())
    model = MllamaForConditionalGeneration.from_pretrained(inputs["base"], use_safetensors=True)
    if (run_dir / "adapter").is_dir():
        model = PeftModel.from_pretrained(model, run_dir / "adapter", is_trainable=True)
    processor = MllamaProcessor.from_pretrained(run_dir / "processor")
    result = train_encoder_stage(model=model, processor=processor, pairs=pairs, images=images, stage=stage)
    if state.is_main_process:
        save_file(trainable_state(model), run_dir / "trained.safetensors")
        fields = asdict(result)
        fields.pop("evaluations")
        (run_dir / "result.json").write_text(json.dumps(fields))
        (run_dir / "world.json").write_text(json.dumps({"num_processes": state.num_processes}))
    state.wait_for_everyone()


def main() -> None:
    parser = argparse.ArgumentParser(description="One rank of a launched training stage (see heima_kedro.launch).")
    parser.add_argument("--run-dir", type=Path, required=True, help="folder written by train_encoder_stage_launched")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    _rank_main(args.run_dir)


if __name__ == "__main__":
    main()
