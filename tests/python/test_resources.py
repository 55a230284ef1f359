"""Resource sampling from Python: the emitter's resources_interval, init_training_events' default
(on at 10 s), plausible figures, no GPUs without NVML, and a sampler that stops with close()."""

import ctypes
import json
import os
import time
from pathlib import Path

import pytest

import foxml_events as fe
from conftest import memory_lines


def _nvml_here() -> bool:
    try:
        ctypes.CDLL("libnvidia-ml.so.1")
    except OSError:
        return False
    return True


def _sampler_threads() -> int:
    """Threads of this process named as the emitter's sampler names its thread."""
    count = 0
    for task in Path("/proc/self/task").iterdir():
        try:
            count += (task / "comm").read_text().strip() == "foxml-resources"
        except OSError:
            pass  # the thread ended meanwhile
    return count


def _wait_for(condition, limit=20.0) -> bool:
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def test_resource_events_carry_plausible_values():
    e = fe.TrainingEventEmitter("run-res", "memory://", resources_interval=0.02)
    try:

        def resources():
            return [ev for ev in map(json.loads, memory_lines(e)) if ev["event_type"] == "resources"]

        assert _wait_for(lambda: len(resources()) >= 2)
    finally:
        assert e.close(10.0).ok
    cores = os.cpu_count() or 1
    lines = list(e._memory_lines())
    events = [fe.decode_line(line) for line in lines]
    samples = [ev for ev in events if ev["event_type"] == "resources"]
    assert len(samples) >= 2
    for ev in samples:
        assert 0.0 <= ev["cpu_pct"] <= 100.0 * cores * 1.05
        assert ev["rss_bytes"] > 0
        assert 0 < ev["mem_used_bytes"] <= ev["mem_total_bytes"]
        assert isinstance(ev["gpus"], list)
        if not _nvml_here():
            assert ev["gpus"] == []
    # Heartbeats come with the sampler.
    assert any(ev["event_type"] == "heartbeat" for ev in events)
    # The samples are the library's own events, not emit calls.
    stats = e.stats()
    assert stats["emitted"] == 0
    assert stats["generated"] == len(lines)


def test_off_by_default_on_a_plain_emitter():
    before = _sampler_threads()
    e = fe.TrainingEventEmitter("run-plain", "memory://")
    e.emit_log("info", "the worker has run")  # a sampler, had one started, would most likely be named by now
    e.flush()
    assert _sampler_threads() == before
    e.close()


def test_init_training_events_samples_by_default_and_close_stops_the_sampler():
    before = _sampler_threads()
    fe.init_training_events("run-global", "memory://", signal_hook=False)
    # On at the default 10 s: its thread runs (named once it has started), waiting out its first interval.
    assert _wait_for(lambda: _sampler_threads() == before + 1)
    started = time.monotonic()
    fe.close_training_events(timeout=30.0)
    # Liveness only: a sampler that slept out its 10 s would hold close() that long.
    assert time.monotonic() - started < 9.0
    assert _sampler_threads() == before


def test_init_training_events_resources_interval_zero_turns_it_off():
    before = _sampler_threads()
    e = fe.init_training_events("run-global", "memory://", signal_hook=False, resources_interval=0)
    e.emit_log("info", "the worker has run")  # a sampler, had one started, would most likely be named by now
    e.flush()
    assert _sampler_threads() == before


def test_a_negative_interval_is_a_clear_error():
    with pytest.raises(ValueError, match="resources_interval"):
        fe.TrainingEventEmitter("r", "memory://", resources_interval=-1.0)


_STAND_IN_CHILD = r"""
import json, sys, time
import foxml_events as fe
e = fe.TrainingEventEmitter("run-nvml", "memory://", resources_interval=0.02)
deadline = time.monotonic() + 20
while True:
    e.flush()
    found = [l for l in e._memory_lines() if json.loads(l)["event_type"] == "resources"]
    if found or time.monotonic() > deadline:
        break
    time.sleep(0.005)
e.close()
print(json.dumps(fe.decode_line(found[0])["gpus"]) if found else "none")
"""


def test_gpus_through_a_stand_in_nvml(tmp_path):
    """The NVML path from Python, against tests/cpp/support/fake_nvml.c built here: a field one
    device lacks is absent from that device's dict only."""
    import shutil
    import subprocess
    import sys

    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler for the stand-in NVML")
    source = Path(__file__).resolve().parents[1] / "cpp" / "support" / "fake_nvml.c"
    subprocess.run([compiler, "-shared", "-fPIC", "-o", str(tmp_path / "libnvidia-ml.so.1"), str(source)], check=True)
    env = dict(os.environ, LD_LIBRARY_PATH=str(tmp_path), CUDA_VISIBLE_DEVICES="1,0")
    out = subprocess.run([sys.executable, "-c", _STAND_IN_CHILD], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    gpus = json.loads(out.stdout)
    assert [g["name"] for g in gpus] == ["Stand-in GPU 0", "Stand-in GPU 1", "Stand-in GPU 1 MIG 1g.8gb"]
    assert gpus[0]["temperature_c"] == 55.0 and gpus[0]["power_w"] == pytest.approx(123.456)
    assert gpus[0]["util_pct"] == 42.0
    assert "temperature_c" not in gpus[1] and gpus[1]["util_pct"] == 7.0 and gpus[1]["power_w"] == 80.0
    assert "util_pct" not in gpus[2] and "power_w" not in gpus[2]
    assert gpus[2]["index"] == 1 and gpus[2]["mem_total_bytes"] == 8 << 30
