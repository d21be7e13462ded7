"""The walkthrough notebook executes against a project with a trained study, so it cannot rot."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks/heima_walkthrough.ipynb"


def _text(output: nbformat.NotebookNode) -> str:
    return output.get("text", "") or output.get("data", {}).get("text/plain", "")


def test_the_notebook_is_saved_without_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and not any(cell.outputs or cell.execution_count for cell in code)


@pytest.mark.slow
def test_the_walkthrough_runs_on_a_trained_study(trained_study):
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    # `%load_ext kedro.ipython` finds the project from the kernel's working directory.
    NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(trained_study.project)}},
    ).execute()

    outputs = [
        output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs
    ]
    text = "\n".join(_text(output) for output in outputs)
    heima = text.split("Heima answer:", 1)[1]
    assert "<CONCLUSION>" in heima
    assert all(f"[{stage}]\n  decoded:" in text for stage in ("summary", "caption", "reasoning"))
    assert "Heima/CoT tokens:" in text
    summary = [o["data"]["text/markdown"] for o in outputs if "text/markdown" in o.get("data", {})]
    assert len(summary) == 1 and "No-CoT" in summary[0]
    pictures = [output for output in outputs if "image/png" in output.get("data", {})]
    assert len(pictures) == 3  # the samples, the token-count chart and the study summary
