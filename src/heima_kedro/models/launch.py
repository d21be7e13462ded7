"""Running work on several processes under ``accelerate launch``, from inside a node.

Kedro runs nodes in one process, so a training stage or an evaluation that wants N processes
(GPUs, or CPU processes with gloo) writes its inputs (the model as :func:`write_model` leaves it)
to a run folder and starts ``accelerate launch -m <rank module> --run-dir D``; the ranks do the
work, write their results to the folder, and the node reads them back. The choice of processes,
FSDP or DeepSpeed is made at this launch edge (an Accelerate config file), never inside the
model code.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import shlex
import shutil
import socket
import string
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml
from accelerate import PartialState
from peft import PeftModel
from torch import nn

logger = logging.getLogger(__name__)

_BASE, _ADAPTER = "base.json", "adapter"


@dataclass(frozen=True)
class LaunchConfig:
    """Where a stage or evaluation runs. ``config_file`` is an Accelerate config (DDP, FSDP,
    DeepSpeed; one machine or several) and says how many processes; ``num_processes`` given
    overrides it (without a config file, more than one launches DDP); ``run_dir`` is where
    inputs and results pass (a temporary folder by default; on a cluster a folder every machine
    sees). ``template`` runs the launch through a cluster's own launcher: a shell command in
    which ``{launch}`` is ``accelerate launch`` with its options and ``{rank}`` the module the
    ranks run, e.g. ``srun --ntasks-per-node=1 bash -c '{launch} --machine_rank $SLURM_NODEID
    {rank}'``."""

    num_processes: int | None = None
    config_file: str | None = None
    run_dir: str | None = None
    template: str | None = None

    def __post_init__(self) -> None:
        value = self.num_processes
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 1
        ):
            raise ValueError(f"launch.num_processes must be an integer >= 1 or null, got {value!r}")
        if self.config_file and not Path(self.config_file).is_file():
            raise ValueError(f"launch.config_file not found: '{self.config_file}'")
        if self.deepspeed and importlib.util.find_spec("deepspeed") is None:
            raise ValueError(
                f"launch.config_file '{self.config_file}' asks for DeepSpeed, which is not "
                "installed: pip install 'heima_kedro[deepspeed]'"
            )
        if self.template is not None:
            fields = {name for _, name, _, _ in string.Formatter().parse(self.template) if name}
            if fields != {"launch", "rank"}:
                raise ValueError(
                    "launch.template must hold {launch} and {rank} and no other field, got "
                    f"{self.template!r}"
                )

    @property
    def processes(self) -> int:
        """How many processes the work runs on: ``num_processes``, else the config file's,
        else one."""
        return self.num_processes or int(self.file_settings().get("num_processes") or 1)

    def file_settings(self) -> dict:
        """The Accelerate config file's settings (none without one)."""
        if not self.config_file:
            return {}
        return yaml.safe_load(Path(self.config_file).read_text()) or {}

    @property
    def shards(self) -> bool:
        """Whether the config file shards the model over the processes (FSDP or DeepSpeed)."""
        return self.file_settings().get("distributed_type") in {"FSDP", "DEEPSPEED"}

    @property
    def deepspeed(self) -> bool:
        """Whether the config file asks for DeepSpeed (ZeRO)."""
        return self.file_settings().get("distributed_type") == "DEEPSPEED"

    @property
    def launches(self) -> bool:
        """Whether the work runs under ``accelerate launch`` rather than in this process."""
        return bool(self.config_file or self.template) or (self.num_processes or 1) > 1


@contextmanager
def run_folder(config: LaunchConfig) -> Iterator[Path]:
    """The launch's run folder: ``config.run_dir`` (kept), or a temporary one (removed after)."""
    if config.run_dir:
        folder = Path(config.run_dir)
        folder.mkdir(parents=True, exist_ok=True)
        yield folder
        return
    with tempfile.TemporaryDirectory(prefix="heima_launch_") as folder:
        yield Path(folder)


def launch_command(*, module: str, run_dir: Path, config: LaunchConfig) -> list[str]:
    """``accelerate launch`` of the ranks running ``module`` (inside ``config.template``, through
    ``bash -c``); ``--num_processes`` only when given, since on the command line it overrides
    the config file's."""
    command = [sys.executable, "-m", "accelerate.commands.launch"]
    if "main_process_port" not in config.file_settings():  # several machines agree on one
        command += ["--main_process_port", str(_free_port())]
    if config.num_processes is not None:
        command += ["--num_processes", str(config.num_processes)]
    if config.config_file:
        command += ["--config_file", config.config_file]
    elif (config.num_processes or 1) > 1:
        # Accelerate's multi-process launcher (torchrun underneath); without CUDA the ranks use
        # gloo on the CPU (`accelerate launch --cpu` would start a single process).
        command.append("--multi_gpu")
    rank = ["-m", module, "--run-dir", str(run_dir)]
    if config.template:
        return [
            "bash",
            "-c",
            config.template.format(launch=shlex.join(command), rank=shlex.join(rank)),
        ]
    return [*command, *rank]


def run_ranks(*, module: str, run_dir: Path, config: LaunchConfig) -> None:
    """Start the ranks of ``module`` on the inputs in ``run_dir`` and wait for them; a failed
    launch raises."""
    command = launch_command(module=module, run_dir=run_dir, config=config)
    logger.info("Launching the ranks: %s", " ".join(command))
    completed = subprocess.run(command, env={**os.environ, "PYTHONUNBUFFERED": "1"}, check=False)
    if completed.returncode != 0:
        raise RuntimeError(
            f"accelerate launch failed with exit code {completed.returncode}; see the log above"
        )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def process_group() -> PartialState:
    """In a rank: this process among the others. Without CUDA the ranks must say so, or each
    would think it runs alone: gloo on the CPU (under DeepSpeed named as its backend, since
    ``cpu=True`` would turn DeepSpeed off)."""
    if torch.cuda.is_available():
        return PartialState()
    if os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true":
        return PartialState(backend="gloo")
    return PartialState(cpu=True)


def write_model(model: nn.Module, folder: Path) -> None:
    """``model`` for the ranks to read back with :func:`read_model`: the base model's folder (as
    it was loaded: no copy of an 11B model per launch) and, for a PEFT model, the adapter. So
    the ranks get the folder's weights: give an adapter as a PEFT model, never merged."""
    if folder.exists():  # a kept run folder: no adapter of an earlier launch may stay behind
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    is_peft = isinstance(model, PeftModel)
    base = model.get_base_model() if is_peft else model
    source = Path(base.name_or_path) if base.name_or_path else None
    if not (source and (source / "config.json").is_file()):
        if is_peft:
            # Saving a base that carries LoRA layers would rename its weights; the pipelines
            # always load the base from a folder, so this only guards direct callers.
            raise ValueError(
                "a launched LoRA model needs a base model loaded with from_pretrained "
                "(name_or_path)"
            )
        base.save_pretrained(folder / "base")
        source = folder / "base"
    # The dtype it was loaded in (e.g. the catalog's bfloat16 at 11B), for the ranks to match.
    dtype = str(base.dtype).removeprefix("torch.")
    (folder / _BASE).write_text(json.dumps({"base": str(source), "dtype": dtype}))
    if is_peft:
        model.save_pretrained(folder / _ADAPTER)


def read_model(folder: Path, model_class: type) -> nn.Module:
    """The model :func:`write_model` wrote (a trainable PEFT model when it had an adapter)."""
    saved = json.loads((folder / _BASE).read_text())
    base = model_class.from_pretrained(
        saved["base"], dtype=getattr(torch, saved["dtype"]), use_safetensors=True
    )
    if (folder / _ADAPTER).is_dir():
        return PeftModel.from_pretrained(base, folder / _ADAPTER, is_trainable=True)
    return base


def rank_main(run_rank: Callable[[Path], None], *, description: str, writer: str) -> None:
    """The command line of a rank module (``--run-dir D``): log, then ``run_rank(D)``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--run-dir", type=Path, required=True, help=f"the run folder {writer} wrote"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    run_rank(args.run_dir)
