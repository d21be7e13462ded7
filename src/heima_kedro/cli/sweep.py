"""Run the study once per thinking setting, then compare the runs.

Each setting is one `kedro run --params ...` (so one MLflow run, named after what ran and its
setting, e.g. "study [local] k=2 fixed"); then `kedro run --pipelines compare` reads back the
runs this sweep made and writes data/08_reporting/run_comparison.{csv,md,png}.

Run it from the project root:
  heima-kedro sweep                       # k = 1, 2, 4 fixed and ratio 0.05
  heima-kedro sweep --fixed 1 2 --ratio   # two fixed settings, no ratio setting
  heima-kedro sweep --dry-run             # print the commands only
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from heima_kedro.data.thinking import thinking_label


@dataclass(frozen=True)
class SweepSetting:
    """One thinking setting: ``fixed`` tokens per stage, or ``ratio`` × the stage's words."""

    mode: str
    fixed: int = 1
    ratio: float = 0.1

    @property
    def label(self) -> str:
        return thinking_label(mode=self.mode, fixed=self.fixed, ratio=self.ratio)

    @property
    def runtime_params(self) -> dict[str, Any]:
        """As ``KedroSession.create(runtime_params=...)`` takes them."""
        return {
            "data_prep": {"thinking": {"mode": self.mode, "fixed": self.fixed, "ratio": self.ratio}}
        }

    @property
    def cli_params(self) -> str:
        """As ``kedro run --params`` takes them."""
        thinking = self.runtime_params["data_prep"]["thinking"]
        return ",".join(f"data_prep.thinking.{key}={value}" for key, value in thinking.items())


def sweep_settings(*, fixed: Iterable[int], ratios: Iterable[float]) -> list[SweepSetting]:
    return [SweepSetting(mode="fixed", fixed=k) for k in fixed] + [
        SweepSetting(mode="ratio", ratio=r) for r in ratios
    ]


def kedro_run_command(
    *, params: str, pipelines: str | None = None, env: str | None = None
) -> list[str]:
    command = [sys.executable, "-m", "kedro", "run"]
    if env:
        command += ["--env", env]
    if pipelines:
        command += ["--pipelines", pipelines]
    return [*command, "--params", params]


def sweep_commands(
    settings: Sequence[SweepSetting],
    *,
    started_ms: int,
    extra_params: str = "",
    pipelines: str | None = None,
    env: str | None = None,
) -> list[list[str]]:
    """One ``kedro run`` per setting, then ``compare`` of the runs started since ``started_ms``."""
    runs = [
        kedro_run_command(
            params=",".join(filter(None, [setting.cli_params, extra_params])),
            pipelines=pipelines,
            env=env,
        )
        for setting in settings
    ]
    compare = kedro_run_command(
        params=f"compare_runs_filter=attributes.start_time >= {started_ms}",
        pipelines="compare",
        env=env,
    )
    return [*runs, compare]


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--fixed",
        type=int,
        nargs="*",
        default=[1, 2, 4],
        metavar="K",
        help="fixed thinking tokens per stage, one run each (default: 1 2 4)",
    )
    parser.add_argument(
        "--ratio",
        type=float,
        nargs="*",
        default=[0.05],
        metavar="R",
        help="ratio settings, max(1, round(R × words in the stage)) tokens, one run each "
        "(default: 0.05, about 1/2/4 tokens on ShapesCoT's summary/caption/reasoning)",
    )
    parser.add_argument("--env", help="Kedro environment of every run, e.g. llava_cot")
    parser.add_argument("--pipelines", help="pipelines of each run (default: the whole study)")
    parser.add_argument(
        "--params",
        default="",
        metavar="KEY=VALUE,...",
        help="more `kedro run --params` for every run, "
        "e.g. cot_baseline.stage_0.train.max_steps=100",
    )
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    return parser


def main(
    argv: Sequence[str] | None = None, *, prog: str = "python -m heima_kedro.cli.sweep"
) -> int:
    args = _parser(prog).parse_args(argv)
    settings = sweep_settings(fixed=args.fixed, ratios=args.ratio)
    commands = sweep_commands(
        settings,
        started_ms=int(time.time() * 1000),
        extra_params=args.params,
        pipelines=args.pipelines,
        env=args.env,
    )
    for command in commands:
        sys.stdout.write(shlex.join(command) + "\n")
        sys.stdout.flush()
        if not args.dry_run and subprocess.run(command).returncode != 0:
            sys.stderr.write(f"sweep: stopped, this command failed: {shlex.join(command)}\n")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
