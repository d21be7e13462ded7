"""Running a stage's ranks under ``accelerate launch``, from inside a node.

Kedro runs nodes in one process, so a stage that wants N processes (GPUs, or CPU processes with
gloo) has its inputs written to a run folder and starts ``accelerate launch -m
heima_kedro.training.rank``; every rank trains, only the main process writes the result, and
the node reads it back. The choice of processes, FSDP or DeepSpeed is made at this launch edge
(an Accelerate config file), never inside the model code.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

logger = logging.getLogger(__name__)

RANK_MODULE = "heima_kedro.training.rank"


@dataclass(frozen=True)
class LaunchConfig:
    """``config_file`` is an Accelerate config (DDP, FSDP, DeepSpeed) and says how many
    processes; ``num_processes`` given overrides it (without a config file, more than one
    launches DDP); ``run_dir`` is where inputs and results pass (a temporary folder by default)."""

    num_processes: int | None = None
    config_file: str | None = None
    run_dir: str | None = None

    def __post_init__(self) -> None:
        value = self.num_processes
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 1
        ):
            raise ValueError(f"launch.num_processes must be an integer >= 1 or null, got {value!r}")
        if self.config_file and not Path(self.config_file).is_file():
            raise ValueError(f"launch.config_file not found: '{self.config_file}'")

    @property
    def processes(self) -> int:
        """How many processes the stage trains on: ``num_processes``, else the config file's,
        else one."""
        if self.num_processes:
            return self.num_processes
        if self.config_file:
            settings = yaml.safe_load(Path(self.config_file).read_text()) or {}
            return int(settings.get("num_processes") or 1)
        return 1

    @property
    def launches(self) -> bool:
        """Whether the stage runs under ``accelerate launch`` rather than in this process."""
        return bool(self.config_file) or (self.num_processes or 1) > 1


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


def launch_command(*, run_dir: Path, config: LaunchConfig) -> list[str]:
    """``accelerate launch`` of the ranks; ``--num_processes`` only when given, since on the
    command line it overrides the config file's."""
    command = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--main_process_port",
        str(_free_port()),
    ]
    if config.num_processes is not None:
        command += ["--num_processes", str(config.num_processes)]
    if config.config_file:
        command += ["--config_file", config.config_file]
    elif (config.num_processes or 1) > 1:
        # Accelerate's multi-process launcher (torchrun underneath); without CUDA the ranks use
        # gloo on the CPU (`accelerate launch --cpu` would start a single process).
        command.append("--multi_gpu")
    return [*command, "-m", RANK_MODULE, "--run-dir", str(run_dir)]


def run_ranks(*, run_dir: Path, config: LaunchConfig) -> None:
    """Start the ranks on the inputs in ``run_dir`` and wait for them; a failed launch raises."""
    command = launch_command(run_dir=run_dir, config=config)
    logger.info("Launching the stage's ranks: %s", " ".join(command))
    completed = subprocess.run(command, env={**os.environ, "PYTHONUNBUFFERED": "1"}, check=False)
    if completed.returncode != 0:
        raise RuntimeError(
            f"accelerate launch failed with exit code {completed.returncode}; see the log above"
        )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
