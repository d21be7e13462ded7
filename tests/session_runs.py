"""Running the project's pipelines through a KedroSession, as ``kedro run`` does."""

from __future__ import annotations

from pathlib import Path

import mlflow
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project


def run_session(project: Path, *, env: str, pipelines: list[str], params: dict | None = None) -> None:
    bootstrap_project(project)
    try:
        with KedroSession.create(project_path=project, env=env, runtime_params=params) as session:
            session.run(pipeline_names=pipelines)
    finally:
        # kedro-mlflow ends its run from another thread, which leaves this thread's fluent
        # stack holding it; a later session in the same process would log into that run.
        while mlflow.active_run():
            mlflow.end_run()
