import json
import os
import sys
from pathlib import Path
from typing import Any, Dict, List

import pytest

sys.path.insert(0, os.path.dirname(__file__))

REPO = Path(__file__).resolve().parents[2]


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid JSON constant {name} in an event line")


def json_lines(path: "os.PathLike[str] | str") -> List[Dict[str, Any]]:
    """Parses every line of an event file with the strict standard-library parser."""
    text = Path(path).read_text(encoding="utf-8")
    assert text == "" or text.endswith("\n"), "the file ends inside a line"
    return [json.loads(line, parse_constant=_reject_constant) for line in text.splitlines()]


@pytest.fixture
def events_path(tmp_path: Path) -> Path:
    return tmp_path / "events.jsonl"


@pytest.fixture(autouse=True)
def _no_global_emitter():
    """Every test starts and ends without a process-wide emitter."""
    import foxml_events

    foxml_events.close_training_events(timeout=2.0)
    yield
    foxml_events.close_training_events(timeout=2.0)


@pytest.fixture
def emitter():
    """An emitter writing to memory, closed after the test."""
    import foxml_events as fe

    e = fe.TrainingEventEmitter("run-memory", "memory://")
    yield e
    e.close()


def memory_lines(e) -> List[str]:
    """Flushes an emitter with a memory sink and returns its lines."""
    e.flush()
    return list(e._memory_lines())


def installed_program(name: str) -> "str | None":
    """The path of a program `pip install .` put next to this interpreter (or on PATH), if any.
    $FOXML_EVENTS_PROGRAMS_DIR, when set, is the only place looked in: the ASan stage of
    scripts/test.sh points it at the sanitized build's programs, and a program missing there must
    not be replaced by an uninstrumented one unnoticed."""
    import shutil
    import sysconfig

    only = os.environ.get("FOXML_EVENTS_PROGRAMS_DIR")
    if only:
        candidate = os.path.join(only, name)
        return candidate if os.access(candidate, os.X_OK) else None
    for folder in (sysconfig.get_path("scripts"), os.path.dirname(sys.executable)):
        candidate = os.path.join(folder, name)
        if os.access(candidate, os.X_OK):
            return candidate
    return shutil.which(name)
