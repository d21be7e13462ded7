"""The sweep: one `kedro run` per thinking setting (and alignment weight), then `compare` over the
runs it started; and the `heima-kedro sweep` / `kedro sweep` command that runs it."""

import pytest

from heima_kedro.__main__ import main
from heima_kedro.cli.sweep import sweep_commands, sweep_settings


def test_sweep_runs_each_setting_then_compares_only_its_own_runs():
    settings = sweep_settings(fixed=[1, 2, 4], ratios=[0.05])
    assert [setting.label for setting in settings] == [
        "k=1 fixed",
        "k=2 fixed",
        "k=4 fixed",
        "ratio=0.05",
    ]
    commands = sweep_commands(
        settings, started_ms=123, extra_params="cot_baseline.stage_0.train.max_steps=5", env="base"
    )
    assert len(commands) == 5
    assert commands[1][-4:] == [
        "--env",
        "base",
        "--params",
        "data_prep.thinking.mode=fixed,data_prep.thinking.fixed=2,data_prep.thinking.ratio=0.1,"
        "cot_baseline.stage_0.train.max_steps=5",
    ]
    assert commands[-1][-5:] == [
        "base",
        "--pipelines",
        "compare",
        "--params",
        "compare_runs_filter=attributes.start_time >= 123",
    ]


def test_alignment_weights_multiply_the_thinking_settings():
    settings = sweep_settings(fixed=[1], ratios=[], alignments=[0, 0.5])
    assert [setting.label for setting in settings] == [
        "k=1 fixed, alignment 0",
        "k=1 fixed, alignment 0.5",
    ]
    assert settings[1].cli_params.endswith(",encoder_training.alignment.weight=0.5")
    assert settings[1].runtime_params["encoder_training"] == {"alignment": {"weight": 0.5}}
    assert "encoder_training" not in sweep_settings(fixed=[1], ratios=[])[0].runtime_params


def test_the_command_prints_its_commands_on_a_dry_run(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["sweep", "--dry-run", "--fixed", "2", "--ratio"])
    assert exited.value.code == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2  # one study run, then compare
    assert "data_prep.thinking.fixed=2" in lines[0] and "--pipelines compare" in lines[1]
