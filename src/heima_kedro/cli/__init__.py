"""Driving the project from outside ``kedro run``: the demo on one image, the sweep over thinking
settings (both Kedro project commands, ``kedro demo`` and ``kedro sweep``, and ``heima-kedro``
subcommands), and a scratch copy of the project that benchmarks and tests run the study in."""

import click

from heima_kedro.cli.commands import demo_command, sweep_command


@click.group(name="heima_kedro")
def cli() -> None:
    """The project's commands."""


cli.add_command(demo_command)
cli.add_command(sweep_command)
