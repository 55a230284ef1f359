"""A change's effect in one command: every figure two runs share, with NEW / OLD.

OLD and NEW are results.json files (benchmarks/results.py; run_all.sh writes one). For each
benchmark, table, row and column holding a number in both, prints both and their ratio, so 1.10x
is 10 % more of whatever the column counts (events/s: better; ns or us: worse). Figures that only
one file has are listed by name. Informative only: it never fails on a ratio (the machines are
noisy; look at the spread the tables print before believing a few per cent).

    python3 benchmarks/compare.py OLD.json NEW.json [--filter TEXT] [--min-change 0.05]
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Dict, Iterator, Tuple

Key = Tuple[str, str, str, str]


def figures(results: Dict[str, Any]) -> Iterator[Tuple[Key, Any]]:
    for bench, tables in results.get("benchmarks", {}).items():
        seen: Dict[str, int] = {}
        for table in tables:
            title = table.get("title", "")
            # Two tables with the same title in one benchmark: the second is "title #2".
            seen[title] = seen.get(title, 0) + 1
            name = title if seen[title] == 1 else f"{title} #{seen[title]}"
            for row, cells in table.get("rows", {}).items():
                for column, value in cells.items():
                    yield (bench, name, row, column), value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old")
    parser.add_argument("new")
    parser.add_argument("--filter", default="", help="only figures whose benchmark, table, row or column holds this")
    parser.add_argument("--min-change", type=float, default=0.0, help="hide ratios within this of 1.0")
    args = parser.parse_args()
    with open(args.old) as f:
        old = json.load(f)
    with open(args.new) as f:
        new = json.load(f)
    print(f"OLD: {old.get('date', '?')} ({old.get('machine', '?')}, load {old.get('load_average', '?')}) {old.get('note', '')}")
    print(f"NEW: {new.get('date', '?')} ({new.get('machine', '?')}, load {new.get('load_average', '?')}) {new.get('note', '')}")
    old_figures = dict(figures(old))
    new_figures = dict(figures(new))
    bench_now = table_now = None
    for key, value in new_figures.items():
        if args.filter and not any(args.filter in part for part in key):
            continue
        before = old_figures.get(key)
        if not isinstance(value, float) or not isinstance(before, float):
            continue
        ratio = value / before if before != 0 else float("inf") if value != 0 else 1.0
        if abs(ratio - 1.0) < args.min_change:
            continue
        bench, table, row, column = key
        if bench != bench_now:
            print(f"\n## {bench}")
            bench_now, table_now = bench, None
        if table != table_now:
            print(f"\n{table}\n")
            print(f"| {'row':<40} | {'column':<18} | {'old':>12} | {'new':>12} | {'new/old':>8} |")
            print(f"|{'-' * 104}|")
            table_now = table
        print(f"| {row[:40]:<40} | {column[:18]:<18} | {before:>12.6g} | {value:>12.6g} | {ratio:>7.2f}x |")
    only_old = sorted({k[:3] for k in old_figures} - {k[:3] for k in new_figures})
    only_new = sorted({k[:3] for k in new_figures} - {k[:3] for k in old_figures})
    for label, rows in (("only in OLD", only_old), ("only in NEW", only_new)):
        if rows:
            print(f"\n{label}: " + "; ".join(" / ".join(r) for r in rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
