"""``kedro run`` whose default pipeline follows the environment: Kedro's own command with every
option, except that without ``--pipelines`` an environment whose data or stage-0 model are not
generated here runs the study from where its own begin, so ``kedro run --env llava_cot`` is the
study on LLaVA-CoT with the published model as stage 0, as ``kedro run`` is on ShapesCoT."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import click
from kedro.framework.cli.project import run as kedro_run

from heima_kedro.pipeline_registry import default_pipeline_for

logger = logging.getLogger(__name__)


def environment_parameters(
    *, env: str | None, conf_source: str | None, params: dict[str, Any]
) -> dict[str, Any]:
    """The parameters a ``kedro run`` with these options reads (project settings, ``KEDRO_ENV``
    when no ``--env``, runtime parameters on top)."""
    from kedro.framework.project import settings
    from kedro.utils import find_kedro_project

    project = find_kedro_project(Path.cwd()) or Path.cwd()
    loader = settings.CONFIG_LOADER_CLASS(
        conf_source=conf_source or str(project / settings.CONF_SOURCE),
        env=env or os.getenv("KEDRO_ENV"),
        runtime_params=params,
        **settings.CONFIG_LOADER_ARGS,
    )
    return loader["parameters"]


@click.command(
    name="run",
    params=kedro_run.params,
    help=f"{kedro_run.help}\n\nWithout --pipelines: the study (`__default__`), or, in an "
    "environment that disables `synthetic_data` (and `model_factory`), the study from its own "
    "raw data (and published stage-0 model) on.",
)
@click.pass_context
def run_command(ctx: click.Context, **options: Any) -> Any:
    if not (options["pipelines"] or options["pipeline"]):
        name = default_pipeline_for(
            environment_parameters(
                env=options["env"], conf_source=options["conf_source"], params=options["params"]
            )
        )
        if name != "__default__":
            logger.info(
                "Environment '%s' brings its own data or stage-0 model: running the `%s` pipeline "
                "(the study without the steps that generate them)",
                options["env"] or os.getenv("KEDRO_ENV"),
                name,
            )
            options["pipelines"] = [name]
    return ctx.invoke(kedro_run, **options)
