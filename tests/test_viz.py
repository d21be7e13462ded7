"""kedro-viz lineage: every catalog dataset sits in a layer, the pipelines carry the study's phase
tags and namespaces, and the site `kedro viz build` writes renders the whole graph in a real
browser (Debian's headless Chromium)."""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from heima_kedro.cli.scratch_project import LAYERS
from heima_kedro.pipeline_registry import STUDY_PHASES, STUDY_PIPELINES
from tiny import DECODERS, ENCODER_STAGES

PROJECT_ROOT = Path(__file__).resolve().parents[1]
#: kedro-viz layer names, in the order of the data folders (``01_raw`` → ``raw``, ...).
VIZ_LAYERS = [layer.split("_", 1)[1] for layer in LAYERS]
CHROMIUM = shutil.which("chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1400,900",
    # let the page fetch api/main and lay out the graph before the DOM or screenshot is taken
    "--virtual-time-budget=15000",
]
NAMESPACES = {*ENCODER_STAGES, *DECODERS}


def _catalog_files() -> list[Path]:
    return sorted(
        path
        for path in (PROJECT_ROOT / "conf").glob("**/catalog*.yml")
        if path.relative_to(PROJECT_ROOT / "conf").parts[0] != "local"
    )


@pytest.mark.parametrize(
    "catalog_file", _catalog_files(), ids=lambda path: f"{path.parent.name}/{path.name}"
)
def test_every_catalog_entry_has_a_kedro_viz_layer(catalog_file: Path):
    entries = yaml.safe_load(catalog_file.read_text()) or {}
    for name, entry in entries.items():
        if name.startswith("_"):  # a YAML anchor, not a dataset
            continue
        layer = (entry.get("metadata") or {}).get("kedro-viz", {}).get("layer")
        assert layer in VIZ_LAYERS, f"{catalog_file.name}: '{name}' has kedro-viz layer {layer!r}"


@contextmanager
def _served(folder: Path) -> Iterator[str]:
    """``folder`` over HTTP on 127.0.0.1 (a free port) while the block runs; yields the URL."""

    class QuietHandler(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(folder))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def _chromium(*args: str, profile: Path) -> str:
    result = subprocess.run(
        [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    )
    return result.stdout


@pytest.mark.slow
@pytest.mark.skipif(
    CHROMIUM is None,
    reason="Debian's chromium is not installed (`make test` installs it: "
    "apt-get install -y chromium)",
)
def test_viz_build_renders_the_study_in_headless_chromium(project_copy: Path, tmp_path: Path):
    subprocess.run(
        [sys.executable, "-m", "kedro", "viz", "build"],
        cwd=project_copy,
        check=True,
        capture_output=True,
        timeout=300,
    )
    build = project_copy / "build"
    graph = json.loads((build / "api/main").read_text())

    # kedro-viz drops all layers when the catalog's layers form a cycle
    assert graph["layers"], "kedro-viz shows no layers: the catalog's layers are circular"
    assert graph["layers"] == [layer for layer in VIZ_LAYERS if layer in graph["layers"]]
    unlayered = [
        node["name"] for node in graph["nodes"] if node["type"] == "data" and not node.get("layer")
    ]
    assert not unlayered, f"datasets without a kedro-viz layer: {unlayered}"
    # every registered pipeline's nodes carry its phase of the study
    # (the study and its variants are sums of the others)
    pipelines = {pipeline["id"] for pipeline in graph["pipelines"]} - set(STUDY_PIPELINES)
    assert {
        "synthetic_data",
        "data_prep",
        "cot_baseline",
        "encoder_training",
        "decoder_training",
    } <= pipelines
    assert {STUDY_PHASES[name] for name in pipelines} <= {tag["id"] for tag in graph["tags"]}
    assert NAMESPACES <= set(graph["modular_pipelines"])

    with _served(build) as url:
        dom = _chromium(
            "--dump-dom", f"{url}?expandAllPipelines=true", profile=tmp_path / "profile-dom"
        )
        screenshot = tmp_path / "viz.png"
        _chromium(
            f"--screenshot={screenshot}",
            f"{url}?expandAllPipelines=true",
            profile=tmp_path / "profile-png",
        )

    # the graph's SVG labels: every node of every pipeline, namespaced ones included
    labels = set(re.findall(r'class="pipeline-node__text"[^>]*>([^<]+)<', dom))
    task_names = {node["name"] for node in graph["nodes"] if node["type"] == "task"}
    assert {
        "generate_shapes_cot_node",
        "parse_conversations_node",
        "train_encoder_stage_node",
        "train_decoder_node",
    } <= task_names
    assert task_names <= labels, f"not drawn: {sorted(task_names - labels)}"
    assert "data_prep" in dom  # the pipeline selector and tags

    png = screenshot.read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 50_000
