"""The wire schema of DESIGN.md ("Wire format"), written out independently of the library, and a
checker for decoded JSON lines. Used by the tests to check real output against the design."""

from __future__ import annotations

from typing import Any, Dict, List, Tuple

# kind, nullable, optional
STRING, NUMBER, INTEGER, BOOLEAN, METRICS, OBJECT, STRINGS, ARRAY = (
    "string", "number", "integer", "boolean", "metrics", "object", "strings", "array")

HEADER: Dict[str, str] = {
    "event_type": STRING, "run_id": STRING, "timestamp": STRING, "seq": INTEGER,
    "pid": INTEGER, "host": STRING, "rank": INTEGER, "world_size": INTEGER,
    "local_rank": INTEGER,
}

FIELDS: Dict[str, Dict[str, Tuple[str, bool, bool]]] = {
    "run_start": {"name": (STRING, True, True), "config": (OBJECT, True, True), "tags": (STRINGS, True, True),
                  "total_steps": (INTEGER, True, True), "total_epochs": (INTEGER, True, True),
                  "process_start_time": (NUMBER, True, True), "heartbeat_interval_s": (NUMBER, True, True),
                  "stale_after_heartbeats": (INTEGER, True, True)},
    "progress": {"stage": (STRING, False, False), "progress_pct": (NUMBER, False, False),
                 "current_target": (STRING, True, False), "targets_complete": (INTEGER, False, False),
                 "targets_total": (INTEGER, False, False), "step": (INTEGER, True, True),
                 "total_steps": (INTEGER, True, True), "epoch": (INTEGER, True, True),
                 "total_epochs": (INTEGER, True, True)},
    "stage_change": {"previous_stage": (STRING, True, False), "new_stage": (STRING, False, False)},
    "target_complete": {"target": (STRING, False, False), "status": (STRING, False, False),
                        "models_trained": (INTEGER, False, False), "best_auc": (NUMBER, True, False),
                        "metrics": (METRICS, True, True)},
    "metrics": {"step": (INTEGER, False, False), "epoch": (INTEGER, True, True), "metrics": (METRICS, False, False)},
    "log": {"level": (STRING, False, False), "message": (STRING, False, False)},
    "resources": {"cpu_pct": (NUMBER, False, False), "rss_bytes": (INTEGER, False, False),
                  "mem_used_bytes": (INTEGER, False, False), "mem_total_bytes": (INTEGER, False, False),
                  "gpus": (ARRAY, False, False)},
    "error": {"error_message": (STRING, False, False), "error_type": (STRING, False, False),
              "recoverable": (BOOLEAN, False, False)},
    "heartbeat": {},
    "dropped": {"count": (INTEGER, False, False), "first_seq": (INTEGER, False, False),
                "last_seq": (INTEGER, False, False)},
    "run_complete": {"status": (STRING, False, False), "duration_s": (NUMBER, True, False)},
    "command_received": {"command": (STRING, False, False), "command_id": (STRING, False, False),
                         "sender": (STRING, False, False), "arg": (OBJECT, True, True)},
    "command_done": {"command_id": (STRING, False, False), "command": (STRING, False, False),
                     "outcome": (STRING, False, False), "message": (STRING, True, True)},
}

ENUMS = {
    ("target_complete", "status"): {"success", "failed", "skipped"},
    ("run_complete", "status"): {"success", "failed", "cancelled", "killed"},
}

NON_FINITE = {"NaN", "Infinity", "-Infinity"}


def _is_number(v: Any) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool)) or v in NON_FINITE


def _has_kind(v: Any, kind: str) -> bool:
    if kind == STRING:
        return isinstance(v, str)
    if kind == NUMBER:
        return _is_number(v)
    if kind == INTEGER:
        return isinstance(v, int) and not isinstance(v, bool)
    if kind == BOOLEAN:
        return isinstance(v, bool)
    if kind == METRICS:
        return isinstance(v, dict) and all(isinstance(k, str) and _is_number(x) for k, x in v.items())
    if kind == OBJECT:
        return isinstance(v, dict)
    if kind == STRINGS:
        return isinstance(v, list) and all(isinstance(x, str) for x in v)
    if kind == ARRAY:
        return isinstance(v, list)
    raise AssertionError(kind)


def problems(event: Dict[str, Any]) -> List[str]:
    """Returns what is wrong with one decoded line (empty when it follows the schema)."""
    found: List[str] = []
    for key, kind in HEADER.items():
        if key not in event:
            found.append(f"missing header field {key}")
        elif not _has_kind(event[key], kind):
            found.append(f"header field {key}={event[key]!r} is not a {kind}")
    event_type = event.get("event_type")
    if event_type not in FIELDS:
        return found + [f"unknown event_type {event_type!r}"]
    for key, (kind, nullable, optional) in FIELDS[event_type].items():
        if key not in event:
            if not optional:
                found.append(f"{event_type}: missing {key}")
            continue
        value = event[key]
        if value is None:
            if not nullable:
                found.append(f"{event_type}: {key} is null")
        elif not _has_kind(value, kind):
            found.append(f"{event_type}: {key}={value!r} is not a {kind}")
        elif (event_type, key) in ENUMS and value not in ENUMS[(event_type, key)]:
            found.append(f"{event_type}: {key}={value!r} not in {sorted(ENUMS[(event_type, key)])}")
    return found


def check(events: List[Dict[str, Any]]) -> None:
    """Asserts every event follows the schema."""
    bad = [(e.get("seq"), p) for e in events for p in problems(e)]
    assert not bad, f"schema problems: {bad[:20]}"
