"""Running the project's pipelines as ``kedro run`` does: through its command line, or a
KedroSession."""

from __future__ import annotations

from pathlib import Path

import mlflow
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from heima_kedro.cli import run as run_command


def run_command_line(args: list[str]) -> None:
    """``kedro run ARGS`` in the working directory's project, through the project's own ``run``
    command as ``kedro`` finds it."""
    bootstrap_project(Path.cwd())  # as the kedro command does before any project command
    try:
        run_command.main(args, prog_name="run", standalone_mode=False)
    finally:
        _end_mlflow_runs()


def run_session(
    project: Path, *, env: str, pipelines: list[str] | None = None, params: dict | None = None
) -> None:
    """``kedro run`` of ``pipelines`` (None: the whole study) in ``project``."""
    bootstrap_project(project)
    try:
        with KedroSession.create(project_path=project, env=env, runtime_params=params) as session:
            session.run(pipeline_names=pipelines)
    finally:
        _end_mlflow_runs()


def _end_mlflow_runs() -> None:
    # kedro-mlflow ends its run from another thread, which leaves this thread's fluent stack
    # holding it; a later session in the same process would log into that run.
    while mlflow.active_run():
        mlflow.end_run()


def latest(folder: Path) -> Path:
    """The newest version folder of a versioned dataset."""
    return sorted(p for p in folder.iterdir() if p.is_dir())[-1]


def latest_file(folder: Path) -> Path:
    """The newest version's file of a versioned file dataset (``<folder>/<version>/<name>``)."""
    return latest(folder) / folder.name
