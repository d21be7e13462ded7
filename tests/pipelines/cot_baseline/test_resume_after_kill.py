"""`kill -9` during stage-0 training, run the same command again: it resumes from the newest
checkpoint and ends with exactly the weights of an uninterrupted run."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from safetensors.torch import load_file

from heima_kedro.cli.scratch_project import make_scratch_project
from session_runs import latest
from tiny import factory_params

pytestmark = pytest.mark.slow

KEDRO = str(Path(sys.executable).parent / "kedro")
TINY = {
    "synthetic_data": {"n_records": 30},
    "model_factory": factory_params(),
    "cot_baseline": {
        "stage_0": {
            "train": {"max_steps": 120, "batch_size": 4, "warmup_steps": 2},
            "checkpoint": {"every": 10},
        },
        "evaluation": {"limit": 2, "decoding": {"max_new_tokens": 4}},
    },
}


def _project(root: Path, source: Path) -> Path:
    make_scratch_project(source=source, target=root)
    (root / "conf/local/parameters_tiny.yml").write_text(yaml.safe_dump(TINY))
    return root


def _kedro(project: Path, pipelines: str, **kwargs) -> subprocess.Popen:
    """`kedro run` in the background, its output appended to `<project>/kedro.log` (a file, not
    a pipe, which a long run could fill and block on)."""
    env = {**os.environ, "COLUMNS": "400"}  # one log record per line
    with (project / "kedro.log").open("a") as log:
        return subprocess.Popen(
            [KEDRO, "run", "--pipelines", pipelines],
            cwd=project,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            **kwargs,
        )


def _cot_weights(project: Path) -> dict:
    return load_file(
        latest(project / "data/06_models/cot_model") / "cot_model" / "model.safetensors"
    )


def test_killed_stage_0_resumes_to_the_uninterrupted_result(tmp_path):
    source = Path(__file__).resolve().parents[3]
    reference, killed = (
        _project(tmp_path / "reference", source),
        _project(tmp_path / "killed", source),
    )
    for project in (reference, killed):
        assert _kedro(project, "synthetic_data,data_prep").wait(timeout=300) == 0

    assert _kedro(reference, "cot_baseline").wait(timeout=600) == 0

    process = _kedro(killed, "cot_baseline", start_new_session=True)
    checkpoints = killed / "data/06_models/checkpoints/stage_0"
    deadline = time.monotonic() + 300
    while (
        not list(checkpoints.glob("step_*"))
        and time.monotonic() < deadline
        and process.poll() is None
    ):
        time.sleep(0.05)
    assert process.poll() is None, "training ended before it could be killed"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    (step,) = [int(p.name.removeprefix("step_")) for p in checkpoints.glob("step_*")]
    assert 0 < step < 120

    assert _kedro(killed, "cot_baseline").wait(timeout=600) == 0
    log = (killed / "kedro.log").read_text()
    assert f"Resuming from the checkpoint of step {step}/120" in log
    expected, resumed = _cot_weights(reference), _cot_weights(killed)
    assert expected.keys() == resumed.keys()
    assert all((expected[name] == resumed[name]).all() for name in expected)
