"""read_events, follow_events, pull-mode EventReader and decode_line share the C++ reader engine:
bounded memory whatever the file holds, linear, rotation followed, and malformed lines (invalid
UTF-8 included) reported as ValueError naming the file and line (issue 9, defect 10)."""

import os
import subprocess
import sys
import threading
import textwrap

import pytest

import foxml_events as fe

TEMPLATE = ('{"event_type":"log","run_id":"r","timestamp":"2026-01-21T10:00:00.123456+00:00","seq":%d,'
            '"pid":1,"host":"h","rank":0,"world_size":1,"level":"info","message":"%s"}\n')


def line(seq, message="m"):
    return TEMPLATE % (seq, message)


def test_invalid_utf8_line_is_a_value_error_naming_file_and_line(tmp_path):
    path = tmp_path / "bad-utf8.jsonl"
    path.write_bytes(line(0).encode() + line(1, "bad \xff\xfe here").encode("latin-1") + line(2).encode())
    seen = []
    with pytest.raises(ValueError) as raised:
        for event in fe.read_events(path):
            seen.append(event["seq"])
    assert not isinstance(raised.value, UnicodeError)
    message = str(raised.value)
    assert str(path) in message and "line 2" in message and "\\xff" in message
    assert seen == [0]  # the events before the bad line came out first
    reader = fe.read_events(path, errors="skip")
    assert [ev["seq"] for ev in reader] == [0, 2] and reader.skipped == 1

    with fe.EventReader(path, follow=False) as reader:
        assert [ev["seq"] for ev in reader] == [0, 2]
        (bad,) = reader.malformed()
        assert bad["line"] == 2 and "\\xff" in bad["error"]

    with pytest.raises(ValueError) as raised:
        fe.decode_line(line(1, "bad \xff").encode("latin-1"))
    assert not isinstance(raised.value, UnicodeError) and "\\xff" in str(raised.value)
    with pytest.raises(ValueError) as raised:
        fe.decode_line(line(1, "\ud800"))
    assert not isinstance(raised.value, UnicodeError)


# ASan's shadow memory and quarantine make RSS say nothing about what the reader holds.
measures_memory = pytest.mark.skipif("libasan" in os.environ.get("LD_PRELOAD", ""),
                                     reason="RSS bounds do not hold under AddressSanitizer")


def _peak_rss_growth_mib(code, *args):
    """Runs `code` in a fresh interpreter; returns how much its peak RSS grew past the import.

    VmHWM, not ru_maxrss: a child's ru_maxrss starts at the forking parent's peak (pytest's, which
    wrote the test files), VmHWM belongs to the child's own address space."""
    script = textwrap.dedent("""
        import sys
        def peak_kib():
            with open("/proc/self/status") as status:
                return next(int(l.split()[1]) for l in status if l.startswith("VmHWM:"))
        import foxml_events as fe
        before = peak_kib()
    """) + textwrap.dedent(code) + textwrap.dedent("""
        print((peak_kib() - before) / 1024.0)
    """)
    out = subprocess.run([sys.executable, "-c", script, *map(str, args)], check=True, capture_output=True,
                         text=True, timeout=300)
    return float(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def huge_line_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("huge") / "huge-line.jsonl"
    with open(path, "w") as f:
        f.write(line(0))
        f.write(line(1, "x" * (100 << 20)))  # a 100 MB line
        f.write(line(2))
    return path


@measures_memory
def test_read_events_a_100mb_line_costs_bounded_memory(huge_line_file):
    grown = _peak_rss_growth_mib("""
        reader = fe.read_events(sys.argv[1], errors="skip")
        seqs = [ev["seq"] for ev in reader]
        assert seqs == [0, 2] and reader.skipped == 1, (seqs, reader.skipped)
    """, huge_line_file)
    assert grown < 40, f"peak RSS grew {grown:.0f} MiB reading a file with a 100 MB line"
    with pytest.raises(ValueError, match="line 2: .*over the .*cap"):
        list(fe.read_events(huge_line_file))


@pytest.fixture(scope="module")
def big_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("big") / "big.jsonl"
    with open(path, "w") as f:
        for start in range(0, 300_000, 10_000):
            f.write("".join(line(seq, "payload-" + "y" * 100) for seq in range(start, start + 10_000)))
    return path  # ~70 MB


@measures_memory
@pytest.mark.parametrize("how", ["event_reader", "read_events"])
def test_pull_mode_reading_a_big_file_costs_bounded_memory(big_file, how):
    loop = {
        "event_reader": "reader = fe.EventReader(sys.argv[1], follow=False, buffer_size=10)",
        "read_events": "reader = fe.read_events(sys.argv[1])",
    }[how]
    grown = _peak_rss_growth_mib(loop + textwrap.dedent("""
        count = 0
        for event in reader:
            count += 1
        assert count == 300_000, count
    """), big_file)
    assert grown < 60, f"peak RSS grew {grown:.0f} MiB iterating a {os.path.getsize(big_file) >> 20} MiB file"


def test_follow_events_follows_rotation(tmp_path):
    path = tmp_path / "rotating.jsonl"
    path.write_text(line(0) + line(1))
    reader = fe.follow_events(path, idle_timeout=30)
    seen = []
    got_first = threading.Event()

    def consume():
        for event in reader:
            seen.append(event["seq"])
            if event["seq"] == 1:
                got_first.set()
            if event["seq"] == 4:
                break

    thread = threading.Thread(target=consume)
    thread.start()
    assert got_first.wait(30)
    os.rename(path, tmp_path / "rotating.jsonl.1")  # logrotate's rename, then a new file
    path.write_text(line(2) + line(3) + line(4))
    thread.join(60)
    reader.stop()
    assert not thread.is_alive()
    assert seen == [0, 1, 2, 3, 4]


def test_read_events_keeps_duplicates_and_blank_lines_are_passed_over(tmp_path):
    path = tmp_path / "dups.jsonl"
    path.write_text(line(0) + "\n  \n" + line(0) + line(1))
    reader = fe.read_events(path)
    assert [ev["seq"] for ev in reader] == [0, 0, 1] and reader.skipped == 0
