"""Run the study once per thinking setting (and alignment weight), then compare the runs.

Each setting is one `kedro run --params ...` (so one MLflow run, named after what ran and its
setting, e.g. "study [local] k=2 fixed"); then `kedro run --pipelines compare` reads back the
runs this sweep made and writes data/08_reporting/run_comparison.{csv,md,png}.

Run it from the project root:
  heima-kedro sweep                       # k = 1, 2, 4 fixed and ratio 0.05
  heima-kedro sweep --fixed 1 2 --ratio   # two fixed settings, no ratio setting
  heima-kedro sweep --fixed 1 --ratio --alignment 0 0.5 1   # k = 1 unaligned and aligned
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
    """One thinking setting: ``fixed`` tokens per stage, or ``ratio`` × the stage's words; and
    the alignment weight of stages 1–4 (``None``: the configuration's)."""

    mode: str
    fixed: int = 1
    ratio: float = 0.1
    alignment: float | None = None

    @property
    def label(self) -> str:
        label = thinking_label(mode=self.mode, fixed=self.fixed, ratio=self.ratio)
        return label if self.alignment is None else f"{label}, alignment {self.alignment:g}"

    @property
    def runtime_params(self) -> dict[str, Any]:
        """As ``KedroSession.create(runtime_params=...)`` takes them."""
        thinking = {"mode": self.mode, "fixed": self.fixed, "ratio": self.ratio}
        params: dict[str, Any] = {"data_prep": {"thinking": thinking}}
        if self.alignment is not None:
            params["encoder_training"] = {"alignment": {"weight": self.alignment}}
        return params

    @property
    def cli_params(self) -> str:
        """As ``kedro run --params`` takes them."""
        thinking = self.runtime_params["data_prep"]["thinking"]
        params = [f"data_prep.thinking.{key}={value}" for key, value in thinking.items()]
        if self.alignment is not None:
            params.append(f"encoder_training.alignment.weight={self.alignment}")
        return ",".join(params)


def sweep_settings(
    *, fixed: Iterable[int], ratios: Iterable[float], alignments: Iterable[float] = ()
) -> list[SweepSetting]:
    """Every thinking setting, once per alignment weight (once, as configured, without any)."""
    weights = list(alignments) or [None]
    return [SweepSetting(mode="fixed", fixed=k, alignment=w) for k in fixed for w in weights] + [
        SweepSetting(mode="ratio", ratio=r, alignment=w) for r in ratios for w in weights
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
    parser.add_argument(
        "--alignment",
        type=float,
        nargs="*",
        default=[],
        metavar="W",
        help="alignment weights of stages 1–4 (encoder_training.alignment.weight), one run of "
        "each thinking setting per weight (default: the configured weight, 0)",
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
    settings = sweep_settings(fixed=args.fixed, ratios=args.ratio, alignments=args.alignment)
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
