"""The project's commands: ``kedro run`` with its default pipeline chosen by the environment
(``run``), the demo on one image, the sweep over thinking settings (Kedro project commands,
``kedro run``/``kedro demo``/``kedro sweep``, and ``heima-kedro`` subcommands), and a scratch
copy of the project that benchmarks and tests run the study in."""

import click

from heima_kedro.cli.commands import demo_command, sweep_command
from heima_kedro.cli.run import run_command as run


@click.group(name="heima_kedro")
def cli() -> None:
    """The project's commands."""


cli.add_command(demo_command)
cli.add_command(sweep_command)
cli.add_command(run)
