"""What every benchmark writes: its figures, its headline figures as short strings, the command,
the machine and the date, in ``benchmarks/results/<name>.json``. The README's results table is
generated from these files (``results_table.py``), so it shows what was measured, where."""

from __future__ import annotations

import datetime
import json
import os
import platform
import shlex
import sys
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> str:
    """CPU model, cores, AVX-512 or not, the GPU when there is one, Python and torch."""
    cpu, avx512 = platform.processor() or platform.machine(), False
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        text = cpuinfo.read_text()
        names = [
            line.split(":", 1)[1].strip()
            for line in text.splitlines()
            if line.startswith("model name")
        ]
        cpu, avx512 = (names[0] if names else cpu), "avx512f" in text
    parts = [f"{cpu}, {os.cpu_count()} cores" + (" (AVX-512)" if avx512 else " (no AVX-512)")]
    import torch

    if torch.cuda.is_available():
        parts.append(torch.cuda.get_device_name(0))
    parts.append(f"Python {platform.python_version()}, torch {torch.__version__}")
    return "; ".join(parts)


def write_result(
    name: str, *, headline: dict[str, str], figures: dict[str, Any], folder: Path = RESULTS
) -> Path:
    """Write ``<folder>/<name>.json`` (``results/`` by default); ``headline`` is what the
    README's table shows."""
    payload = {
        "benchmark": name,
        "measured": datetime.date.today().isoformat(),
        "machine": machine(),
        "load_average": [round(load, 2) for load in os.getloadavg()],
        "command": shlex.join(["python", f"benchmarks/{Path(sys.argv[0]).name}", *sys.argv[1:]]),
        "headline": headline,
        **figures,
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path
