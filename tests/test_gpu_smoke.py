"""benchmarks/gpu_smoke.py at depth 2 on the CPU: the 11B and 8B architectures at their real
widths, vocabulary and image settings go through stage 1, stage 5 and a batched generation with
capture on the project's own code, and the figures are written."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_smoke_runs_the_real_architectures_at_reduced_depth(tmp_path):
    command = [
        sys.executable,
        str(ROOT / "benchmarks/gpu_smoke.py"),
        *("--depth", "2", "--batch-size", "1", "--length", "64", "--steps", "2"),
        *("--new-tokens", "3", "--generation-batch-size", "2", "--results", str(tmp_path)),
    ]
    subprocess.run(command, check=True, cwd=ROOT)
    result = json.loads((tmp_path / "gpu_smoke_depth2.json").read_text())
    stage_1, stage_5 = result["stage_1"], result["stage_5"]
    # The 8B's layer at its real widths (attention 4096 → 4096 + 2 × 1024 + 4096, MLP 3 × 4096 ×
    # 14336) twice, and its 128k × 4096 head; the encoder adds its vision tower and projector.
    layer = 4096 * (4096 + 2 * 1024 + 4096) + 3 * 4096 * 14336
    assert stage_5["parameters_b"] == round((2 * layer + 128256 * 4096) / 1e9, 2)
    assert stage_1["parameters_b"] > stage_5["parameters_b"]
    for part in (stage_1, stage_5):
        assert len(part["losses"]) == 2 and all(math.isfinite(loss) for loss in part["losses"])
        assert part["tokens"] == 2 * 64 and part["peak_memory_gb"] > 0
        assert part["mfu"] is None  # no MFU on a CPU
    assert 0 < result["generation"]["tokens"] <= 2 * 3
    assert result["settings"]["depth"] == 2 and result["device"] == "cpu"
