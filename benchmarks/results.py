"""The benchmarks' printed tables as one machine-readable file (benchmarks/results.json).

Every benchmark prints Markdown tables; run_all.sh keeps each one's output in LOGDIR/NAME.txt, and
this reads them back: for each benchmark, each table (titled by the last line of text above it)
as rows keyed by their first cell, each cell a number where it reads as one ("1.03x", "12 ns",
"20000/20000" give 1.03, 12, 20000) and the text otherwise. compare.py reads two such files.

    python3 benchmarks/results.py LOGDIR [--note TEXT] > benchmarks/results.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import sys
from typing import Any, Dict, List, Optional

_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # Google Benchmark colours its console output
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def cell_value(text: str) -> Any:
    match = _NUMBER.match(text.strip())
    return float(match.group(0)) if match else text.strip()


def split_row(line: str) -> List[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def is_separator(line: str) -> bool:
    return bool(re.fullmatch(r"\|[\s\-:|]+\|?", line.strip()))


def parse_tables(text: str) -> List[Dict[str, Any]]:
    """The Markdown tables in a benchmark's output, in order."""
    tables: List[Dict[str, Any]] = []
    title = ""
    lines = _ANSI.sub("", text).splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("|") and i + 1 < len(lines) and is_separator(lines[i + 1]):
            header = split_row(line)
            rows: Dict[str, Dict[str, Any]] = {}
            i += 2
            while i < len(lines) and lines[i].startswith("|"):
                cells = split_row(lines[i])
                key = cells[0]
                while key in rows:  # a repeated row name keeps both, the second numbered
                    key += "'"
                rows[key] = {header[c] if c < len(header) else str(c): cell_value(cells[c]) for c in range(1, len(cells))}
                i += 1
            tables.append({"title": title, "rows": rows})
            continue
        if line.strip() and not line.startswith("|"):
            title = line.strip()
        i += 1
    return tables


def machine() -> str:
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {model}, {platform.release()}"


def collect(logdir: str, note: Optional[str]) -> Dict[str, Any]:
    benchmarks = {}
    for name in sorted(os.listdir(logdir)):
        if name.endswith(".txt"):
            with open(os.path.join(logdir, name), errors="replace") as f:
                benchmarks[name[:-4]] = parse_tables(f.read())
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        "load_average": os.getloadavg()[0],
        "note": note or "",
        "benchmarks": benchmarks,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("logdir")
    parser.add_argument("--note", help="what this run was (a commit, 'loaded machine'...)")
    args = parser.parse_args()
    json.dump(collect(args.logdir, args.note), sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
