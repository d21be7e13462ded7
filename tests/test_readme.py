"""The README tells the truth: its results table is the one the benchmarks' result files give, the
files it points at exist, and it stays short enough to read."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _results_table():
    spec = importlib.util.spec_from_file_location(
        "results_table", ROOT / "benchmarks/results_table.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_results_table_is_generated_from_the_result_files():
    results_table = _results_table()
    assert README == results_table.with_table(README, results_table.table()), (
        "stale: run python benchmarks/results_table.py --write"
    )


def test_every_result_file_says_what_ran_where_and_when():
    files = sorted((ROOT / "benchmarks/results").glob("*.json"))
    assert files, "no benchmark results: the README's table would be empty"
    for path in files:
        result = json.loads(path.read_text())
        assert {"benchmark", "command", "measured", "machine", "headline"} <= set(result), path.name
        script = ROOT / result["command"].split()[1]
        assert result["command"].startswith("python benchmarks/bench_") and script.is_file()
        # A variant or environment of a benchmark is named after it: study_variant, study_quick.
        assert (result["benchmark"] + "_").startswith(script.stem.removeprefix("bench_") + "_")
        assert result["headline"] and all(isinstance(v, str) for v in result["headline"].values())


def test_the_readme_is_short_and_its_paths_exist():
    assert len(README) <= 12_000, f"README.md is {len(README)} characters"
    paths = set(
        re.findall(r"\(((?:docs|conf|notebooks|benchmarks|research|tests|src)/[^)#\s]*)\)", README)
    )
    paths |= set(re.findall(r"`((?:docs|conf|notebooks|research)/[\w./-]+)`", README))
    missing = sorted(p for p in paths if not (ROOT / p.rstrip("/")).exists() and "<" not in p)
    assert paths and not missing, f"README.md points at missing files: {missing}"
