"""The README's results table, generated from ``benchmarks/results/*.json`` so it cannot drift from
what was measured: one row per benchmark with its headline figures, the date and the machine.

    python benchmarks/results_table.py            # print the table
    python benchmarks/results_table.py --write    # put it into README.md between the markers
    python benchmarks/results_table.py --check    # exit 1 when README.md's table is not this one
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks/results"
README = ROOT / "README.md"
BEGIN, END = "<!-- results:begin (benchmarks/results_table.py) -->", "<!-- results:end -->"


def table(results: Path = RESULTS) -> str:
    """The Markdown table of every result file, benchmark by name."""
    rows = ["| benchmark | figures | measured | machine |", "|---|---|---|---|"]
    for path in sorted(results.glob("*.json")):
        result = json.loads(path.read_text())
        figures = "; ".join(f"{name} {value}" for name, value in result["headline"].items())
        rows.append(
            f"| `{result['command']}` | {figures} | {result['measured']} | {result['machine']} |"
        )
    return "\n".join(rows)


def with_table(readme: str, rendered: str) -> str:
    """``readme`` with the text between the markers replaced by ``rendered``."""
    if readme.count(BEGIN) != 1 or readme.count(END) != 1:
        raise SystemExit(f"README.md must hold the markers {BEGIN!r} and {END!r} once each")
    head, rest = readme.split(BEGIN)
    _, tail = rest.split(END)
    return f"{head}{BEGIN}\n{rendered}\n{END}{tail}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="write the table into README.md")
    mode.add_argument("--check", action="store_true", help="exit 1 when README.md's table is stale")
    args = parser.parse_args()
    rendered = table()
    if not (args.write or args.check):
        print(rendered)
        return 0
    readme = README.read_text()
    expected = with_table(readme, rendered)
    if args.write:
        README.write_text(expected)
        return 0
    if readme != expected:
        print(
            "README.md's results table is stale: run python benchmarks/results_table.py --write",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
