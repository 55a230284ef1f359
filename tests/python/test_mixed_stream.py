"""A C++ trainer (examples/cpp/train_loop.cpp, built here with CMake) and a Python trainer append to
one file at the same time: the result is one coherent stream."""

import os
import shutil
import subprocess
import sys
import textwrap
from collections import defaultdict

import pytest

from conftest import REPO, json_lines
import event_schema

pytestmark = pytest.mark.slow

BUILD_DIR = REPO / "build" / "pytest-cpp-example"

PYTHON_TRAINER = textwrap.dedent("""
    import sys, foxml_events as fe
    with fe.TrainingEventEmitter("py-trainer", sys.argv[1]) as e:
        e.emit_run_start(config={"lang": "python"}, total_steps=600, total_epochs=2)
        with e.stage("training"):
            for step in range(600):
                e.log_metrics({"loss": 1.0 / (step + 1), "lr": 0.01}, step=step, epoch=step // 300)
                e.emit_progress("training", 100 * (step + 1) / 600, step=step + 1, total_steps=600)
""")


@pytest.fixture(scope="module")
def cpp_trainer():
    if shutil.which("cmake") is None or (shutil.which("c++") is None and shutil.which("g++") is None):
        pytest.skip("needs cmake and a C++ compiler")
    generator = ["-G", "Ninja"] if shutil.which("ninja") else []
    configure = ["cmake", "-S", str(REPO), "-B", str(BUILD_DIR), *generator, "-DCMAKE_BUILD_TYPE=Release",
                 "-DFOXML_EVENTS_BUILD_TESTS=OFF", "-DFOXML_EVENTS_BUILD_EXAMPLES=ON", "-DFOXML_EVENTS_INSTALL=OFF",
                 "-DFOXML_EVENTS_BUILD_PYTHON=OFF"]
    for command in (configure, ["cmake", "--build", str(BUILD_DIR), "--target", "foxml_events_example_train_loop",
                                "-j", "2"]):
        result = subprocess.run(command, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    binary = BUILD_DIR / "examples" / "cpp" / "train_loop"
    assert binary.exists()
    return binary


def test_cpp_and_python_trainers_share_one_file(cpp_trainer, events_path):
    cpp = subprocess.Popen([str(cpp_trainer), str(events_path), "--epochs", "2", "--steps-per-epoch", "300"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    py = subprocess.Popen([sys.executable, "-c", PYTHON_TRAINER, str(events_path)], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
    cpp_out, cpp_err = cpp.communicate(timeout=120)
    py_out, py_err = py.communicate(timeout=120)
    assert cpp.returncode == 0, cpp_err
    assert py.returncode == 0, py_err

    events = json_lines(events_path)  # every line parses with the strict standard parser
    event_schema.check(events)
    streams = defaultdict(list)
    for ev in events:
        streams[ev["pid"]].append(ev)
    assert len(streams) == 2 and os.getpid() not in streams
    run_ids = set()
    for pid, stream in streams.items():
        assert [ev["seq"] for ev in stream] == list(range(len(stream))), f"pid {pid}: seq has gaps"
        assert len({ev["run_id"] for ev in stream}) == 1
        run_ids.add(stream[0]["run_id"])
        assert stream[0]["event_type"] == "run_start"
        assert stream[-1]["event_type"] == "run_complete" and stream[-1]["status"] == "success"
        assert sum(ev["event_type"] == "metrics" for ev in stream) == 600
        assert sum(ev["event_type"] == "progress" for ev in stream) == 600
    assert "py-trainer" in run_ids and any(r.startswith("cpp-linear-") for r in run_ids)
