"""``heima-kedro demo``: one-line errors for a bad image or an untrained project, and a real run
on a tiny trained study."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from kedro.framework.startup import bootstrap_project
from kedro.io import DataCatalog, MemoryDataset
from PIL import Image

from heima_kedro.__main__ import demo_command, main
from heima_kedro.cli.demo import TRAINED_MODELS, DemoError, require_trained_models
from heima_kedro.data.cot import THINKING_STAGES


def _demo(*args: str | Path) -> Result:
    return CliRunner().invoke(demo_command, [str(a) for a in args])


def _one_line_error(result: Result) -> str:
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def _image(path: Path) -> Path:
    Image.new("RGB", (48, 48), "white").save(path)
    return path


def test_a_missing_image_is_named(tmp_path):
    error = _one_line_error(
        _demo("--image", tmp_path / "nope.png", "--question", "Where is the circle?")
    )
    assert error == f"Error: image not found: {tmp_path / 'nope.png'}"


def test_an_unreadable_image_is_named(tmp_path):
    not_an_image = tmp_path / "notes.png"
    not_an_image.write_text("not a picture")
    error = _one_line_error(_demo("--image", not_an_image, "--question", "Where is the circle?"))
    assert error.startswith(f"Error: cannot read image {not_an_image}: ")


def test_an_untrained_project_names_the_pipeline_to_run(project_copy, tmp_path):
    result = _demo(
        "--image",
        _image(tmp_path / "shapes.png"),
        "--question",
        "Where is the circle?",
        "--project-path",
        project_copy,
    )
    assert _one_line_error(result) == (
        "Error: no trained CoT model (cot_model): run `kedro run --pipelines cot_baseline` first"
    )


def _catalog(missing: str) -> DataCatalog:
    """A catalog in which every trained model has data except ``missing``."""
    return DataCatalog(
        {
            name: MemoryDataset() if name == missing else MemoryDataset(data=name)
            for name in TRAINED_MODELS
        }
    )


@pytest.mark.parametrize(
    ("missing", "env", "expected"),
    [
        (
            "stage_4.adapter",
            None,
            "no trained Heima Encoder (stage_4.adapter): "
            "run `kedro run --pipelines encoder_training` first",
        ),
        (
            "decoder_caption.adapter",
            "local",
            "no trained Heima Decoder for the caption (decoder_caption.adapter): "
            "run `kedro run --pipelines decoder_training --env local` first",
        ),
    ],
)
def test_each_missing_model_names_the_pipeline_that_trains_it(project_copy, missing, env, expected):
    bootstrap_project(project_copy)  # the project's pipelines say which one makes what
    with pytest.raises(DemoError) as raised:
        require_trained_models(_catalog(missing), env=env)
    assert str(raised.value) == expected


def test_a_missing_published_model_says_where_it_belongs(project_copy, tmp_path):
    result = _demo(
        "--image",
        _image(tmp_path / "shapes.png"),
        "--question",
        "Where is the circle?",
        "--project-path",
        project_copy,
        "--env",
        "llava_cot",
    )
    assert _one_line_error(result) == (
        "Error: no CoT model (cot_model): put the published model where its catalog entry points"
    )


def test_the_console_script_dispatches_demo_and_shows_its_help(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["demo", "--help"])
    assert exited.value.code == 0
    assert "--max-new-tokens" in capsys.readouterr().out


@pytest.mark.slow
def test_demo_on_a_trained_study_prints_answers_thoughts_and_counts(trained_study):
    study = trained_study
    result = _demo(
        "--image", study.image, "--question", study.question, "--project-path", study.project
    )

    assert result.exit_code == 0, result.output
    out = result.stdout
    heima = out.split("Heima answer", 1)[1].split("Thoughts decoded", 1)[0]
    for tag in ("SUMMARY", "CAPTION", "REASONING", "CONCLUSION"):
        assert f"<{tag}>" in heima and f"</{tag}>" in heima
    for stage in THINKING_STAGES:
        section = out.split(f"  [{stage}]\n", 1)[1].splitlines()[0]
        assert section.strip() and "(none:" not in section, out
    totals = re.search(r"^  total\s+(\d+)\s+(\d+)$", out, re.MULTILINE)
    assert totals and int(totals[1]) < int(totals[2]), out
