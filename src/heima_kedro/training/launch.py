"""Running a stage's ranks under ``accelerate launch``, from inside a node.

Kedro runs nodes in one process, so a stage that wants N processes (GPUs, or CPU processes with
gloo) has its inputs written to a run folder and starts ``accelerate launch -m
heima_kedro.training.rank``; every rank trains, only the main process writes the result, and
the node reads it back. The choice of processes, FSDP or DeepSpeed is made at this launch edge
(an Accelerate config file), never inside the model code.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shlex
import socket
import string
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
    """``config_file`` is an Accelerate config (DDP, FSDP, DeepSpeed; one machine or several)
    and says how many processes; ``num_processes`` given overrides it (without a config file,
    more than one launches DDP); ``run_dir`` is where inputs and results pass (a temporary
    folder by default; on a cluster a folder every machine sees). ``template`` runs the launch
    through a cluster's own launcher: a shell command in which ``{launch}`` is ``accelerate
    launch`` with its options and ``{rank}`` the module the ranks run, e.g.
    ``srun --ntasks-per-node=1 bash -c '{launch} --machine_rank $SLURM_NODEID {rank}'``."""

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
        """How many processes the stage trains on: ``num_processes``, else the config file's,
        else one."""
        return self.num_processes or int(self.file_settings().get("num_processes") or 1)

    def file_settings(self) -> dict:
        """The Accelerate config file's settings (none without one)."""
        if not self.config_file:
            return {}
        return yaml.safe_load(Path(self.config_file).read_text()) or {}

    @property
    def deepspeed(self) -> bool:
        """Whether the config file asks for DeepSpeed (ZeRO)."""
        return self.file_settings().get("distributed_type") == "DEEPSPEED"

    @property
    def launches(self) -> bool:
        """Whether the stage runs under ``accelerate launch`` rather than in this process."""
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


def launch_command(*, run_dir: Path, config: LaunchConfig) -> list[str]:
    """``accelerate launch`` of the ranks (inside ``config.template``, through ``bash -c``);
    ``--num_processes`` only when given, since on the command line it overrides the config
    file's."""
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
    rank = ["-m", RANK_MODULE, "--run-dir", str(run_dir)]
    if config.template:
        return [
            "bash",
            "-c",
            config.template.format(launch=shlex.join(command), rank=shlex.join(rank)),
        ]
    return [*command, *rank]


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
