"""The project's own commands: ``demo`` and ``sweep``. Kedro adds them to ``kedro`` inside the
project (``kedro demo``, ``kedro sweep``); the ``heima-kedro`` script runs them from anywhere."""

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click


@click.command(
    name="demo",
    epilog="Example: heima-kedro demo --image data/01_raw/shapes_cot/images/shapes/000001.png "
    "--question 'Is there a blue square in the image?'",
)
@click.option(
    "--image",
    "image_path",
    required=True,
    type=click.Path(path_type=Path),
    help="The image to ask about (any format Pillow reads).",
)
@click.option("--question", required=True, help="The question about the image.")
@click.option(
    "--env",
    "-e",
    default=None,
    help="Kedro environment whose catalog holds the trained models "
    "(default: the project's, base + local).",
)
@click.option(
    "--max-new-tokens",
    type=click.IntRange(min=1),
    default=None,
    help="Most tokens each model may generate for its answer "
    "(default: token_count.decoding.max_new_tokens).",
)
@click.option(
    "--project-path",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path.cwd,
    show_default="the current directory",
    help="The Kedro project to load.",
)
@click.option(
    "--verbose", "-v", is_flag=True, help="Show Kedro's log messages and loading progress."
)
def demo_command(
    image_path: Path,
    question: str,
    env: str | None,
    max_new_tokens: int | None,
    project_path: Path,
    verbose: bool,
) -> None:
    """Answer QUESTION about IMAGE with the trained Heima Encoder and print its answer, the three
    thinking stages decoded back into text by the Heima Decoders, and the answer's token counts
    and latency against the CoT model's answer to the same question.

    The models are the latest saved versions in the project's catalog: train them first with
    `kedro run` (the whole study) or the pipelines the error message names.
    """
    with _quiet(not verbose):
        # Imported here, quietly: torch and Kedro load (and log) only when the demo runs.
        from heima_kedro.cli.demo import DemoError, demo_in_project, format_result

        try:
            result = demo_in_project(
                project_path=project_path.resolve(),
                image_path=image_path,
                question=question,
                env=env,
                max_new_tokens=max_new_tokens,
            )
        except DemoError as error:
            raise click.ClickException(str(error)) from error
    click.echo(format_result(result))


@contextmanager
def _quiet(enabled: bool) -> Iterator[None]:
    """Without Kedro's INFO line per catalog load and transformers' loading bars, the demo's
    report is the whole output; errors still show."""
    from transformers.utils import logging as hf_logging

    if not enabled:
        yield
        return
    logging.disable(logging.WARNING)
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)
        hf_logging.enable_progress_bar()


@click.command(
    name="sweep",
    context_settings={
        "ignore_unknown_options": True,
        "allow_extra_args": True,
        "help_option_names": [],
    },
    add_help_option=False,
)
@click.pass_context
def sweep_command(context: click.Context) -> None:
    """Run the study once per thinking setting, then compare the runs (--help for the options)."""
    from heima_kedro.cli.sweep import main

    sys.exit(main(context.args, prog=context.command_path))
