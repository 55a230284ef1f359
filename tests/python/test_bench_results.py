"""benchmarks/results.py reads the benchmarks' Markdown tables back; benchmarks/compare.py prints
NEW/OLD for every figure two results files share; bench_readers.py runs (tiny, no timing checked)."""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

import results  # noqa: E402  (benchmarks/results.py)

OUTPUT = """\x1b[0;32mbm_decode_line \x1b[m 563 ns
Decode, lines/s

| decoder          |   lines/s | vs decode_line |
|------------------------------------------------|
| decode_line      |   3000000 |          1.00x |
| simdjson_x       |   3300000 |          1.10x |

Latency
| path | p50 | received |
|---|---|---|
| Unix socket | 322 us | 10000/10000 |
| Unix socket | 400 | n/a |
"""


def test_tables_are_read_with_titles_numbers_and_text():
    tables = results.parse_tables(OUTPUT)
    assert [t["title"] for t in tables] == ["Decode, lines/s", "Latency"]
    assert tables[0]["rows"]["simdjson_x"] == {"lines/s": 3300000.0, "vs decode_line": 1.1}
    assert tables[1]["rows"]["Unix socket"] == {"p50": 322.0, "received": 10000.0}
    assert tables[1]["rows"]["Unix socket'"] == {"p50": 400.0, "received": "n/a"}  # a repeated row kept


def write_results(path, rate):
    logdir = path + ".logs"
    os.makedirs(logdir)
    with open(os.path.join(logdir, "reader_decode.txt"), "w") as f:
        f.write(OUTPUT.replace("3300000", str(rate)))
    out = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "results.py"), logdir, "--note", "t"],
                         check=True, capture_output=True, text=True).stdout
    with open(path, "w") as f:
        f.write(out)
    return json.loads(out)


def test_compare_prints_the_ratio_of_each_shared_figure(tmp_path):
    old = write_results(str(tmp_path / "old.json"), 3300000)
    assert old["note"] == "t" and "reader_decode" in old["benchmarks"]
    write_results(str(tmp_path / "new.json"), 6600000)
    out = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "compare.py"), str(tmp_path / "old.json"),
                          str(tmp_path / "new.json"), "--min-change", "0.01"],
                         check=True, capture_output=True, text=True).stdout
    rows = [line for line in out.splitlines() if line.startswith("| simdjson_x")]
    assert len(rows) == 1 and "lines/s" in rows[0] and rows[0].rstrip(" |").endswith("2.00x"), out
    assert "| decode_line" not in out  # unchanged figures are hidden by --min-change


def test_bench_readers_runs():
    out = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "python", "bench_readers.py"),
                          "--events", "300", "--rounds", "1"], check=True, capture_output=True, text=True,
                         timeout=120).stdout
    assert "| fe.read_events" in out and "| fe.follow" in out and "| json.loads loop" in out
