"""Hostile values fed to every emit call: each gives a clean TypeError/ValueError/OverflowError or a
written line that decodes, never a crash and never corrupted text (issue 9, defects 3 and 11)."""

import json
import math

import pytest

import foxml_events as fe

from conftest import json_lines, memory_lines

CLEAN_ERRORS = (TypeError, ValueError, OverflowError)


lines = memory_lines


def fresh_names(count):
    # Built at run time (not interned constants), so clearing the dict frees them.
    return ["".join(["metric_name_", str(i), "_", "x" * 40]) for i in range(count)]


class ClearsDict:
    """A value whose __float__ runs Python code that empties the dict being logged."""

    def __init__(self, target):
        self.target = target

    def __float__(self):
        self.target.clear()
        # Fresh strings of the same size reuse the freed keys' memory, so borrowed names show it.
        self.junk = ["".join(["Z" * 55, str(i)]) for i in range(200)]
        return 1.0


class GrowsDict:
    def __init__(self, target):
        self.target = target

    def __float__(self):
        for i in range(100):
            self.target["".join(["added_", str(i)])] = float(i)
        return 2.0


@pytest.mark.parametrize("at", ["first", "last"])
def test_log_metrics_value_that_clears_the_dict_keeps_every_name(emitter, at):
    names = fresh_names(20)
    metrics = {}
    if at == "first":
        metrics["aaa_evil"] = None
    for n in names:
        metrics[n] = 0.5
    metrics["aaa_evil"] = ClearsDict(metrics)
    expected = {n: 0.5 for n in fresh_names(20)}  # its own strings: the dict's keys must be its only ones
    expected["aaa_evil"] = 1.0
    del names, n
    try:
        emitter.log_metrics(metrics, step=1)
    except CLEAN_ERRORS:
        return
    (line,) = lines(emitter)
    assert fe.decode_line(line)["metrics"] == expected


def test_log_metrics_value_that_grows_the_dict(emitter):
    metrics = {n: 0.5 for n in fresh_names(5)}
    metrics["grow"] = GrowsDict(metrics)
    try:
        emitter.log_metrics(metrics, step=1)
    except CLEAN_ERRORS:
        return
    (line,) = lines(emitter)
    got = fe.decode_line(line)["metrics"]
    assert {k: v for k, v in got.items() if not k.startswith("added_")} == {
        **{n: 0.5 for n in fresh_names(5)}, "grow": 2.0}


def test_target_complete_metric_value_that_clears_the_dict(emitter):
    names = fresh_names(20)
    metrics = {n: 0.25 for n in names}
    metrics["zz_evil"] = ClearsDict(metrics)
    expected = {n: 0.25 for n in fresh_names(20)}
    expected["zz_evil"] = 1.0
    del names
    try:
        emitter.emit_target_complete("t", "success", metrics=metrics)
    except CLEAN_ERRORS:
        return
    (line,) = lines(emitter)
    assert fe.decode_line(line)["metrics"] == expected


class RaisesOnFloat:
    def __float__(self):
        raise RuntimeError("no float for you")


class Weird(float):
    def __float__(self):
        raise ZeroDivisionError


def _nested(depth):
    value = {}
    for _ in range(depth):
        value = {"k": value}
    return value


HOSTILE = [
    None, "text", b"bytes", bytearray(b"x"), "\ud800", "a\x00b", float("nan"), float("inf"), -float("inf"),
    10**400, -(10**400), RaisesOnFloat(), Weird(1.5), object(), [1.0], {"a": 1}, _nested(200), 1 + 2j,
    True, 2**63, -(2**63) - 1,
]

HOSTILE_KEYS = [1, 1.5, None, b"k", ("t",), "\ud800", "a\x00b", "\"\\\n", "x" * 100000]


def _call_all(e, v):
    """Every emit call, with `v` in every position it can take; yields the call's name."""
    calls = {
        "emit_progress.stage": lambda: e.emit_progress(v, 1.0),
        "emit_progress.pct": lambda: e.emit_progress("s", v),
        "emit_progress.target": lambda: e.emit_progress("s", 1.0, current_target=v),
        "emit_progress.step": lambda: e.emit_progress("s", 1.0, step=v),
        "emit_progress.targets": lambda: e.emit_progress("s", 1.0, targets_complete=v, targets_total=v),
        "log_metrics.dict": lambda: e.log_metrics(v),
        "log_metrics.value": lambda: e.log_metrics({"m": v}),
        "log_metrics.step": lambda: e.log_metrics({"m": 1.0}, step=v),
        "log_metrics.epoch": lambda: e.log_metrics({"m": 1.0}, epoch=v),
        "emit_stage_change": lambda: e.emit_stage_change(v, v),
        "emit_target_complete.target": lambda: e.emit_target_complete(v, "success"),
        "emit_target_complete.status": lambda: e.emit_target_complete("t", v),
        "emit_target_complete.models": lambda: e.emit_target_complete("t", "success", models_trained=v),
        "emit_target_complete.auc": lambda: e.emit_target_complete("t", "success", best_auc=v),
        "emit_target_complete.metrics": lambda: e.emit_target_complete("t", "success", metrics={"m": v}),
        "emit_error.message": lambda: e.emit_error(v),
        "emit_error.type": lambda: e.emit_error("m", v),
        "emit_log.message": lambda: e.emit_log("info", v),
        "emit_log.level": lambda: e.emit_log(v, "m"),
        "emit_run_start.config": lambda: e.emit_run_start(config={"c": v}),
        "emit_run_start.name": lambda: e.emit_run_start(name=v),
        "emit_run_start.tags": lambda: e.emit_run_start(tags=v),
        "emit_run_complete.status": lambda: e.emit_run_complete(v),
        "emit_run_complete.duration": lambda: e.emit_run_complete("success", duration_s=v),
    }
    for name, call in calls.items():
        try:
            call()
        except CLEAN_ERRORS:
            pass
        yield name


def _check_every_line_decodes(e):
    for line in lines(e):
        json.loads(line)
        fe.decode_line(line)


@pytest.mark.parametrize("value", HOSTILE, ids=lambda v: type(v).__name__)
def test_hostile_values_in_every_emit_call(emitter, value):
    for _ in _call_all(emitter, value):
        pass
    _check_every_line_decodes(emitter)


@pytest.mark.parametrize("key", HOSTILE_KEYS, ids=lambda k: type(k).__name__)
def test_hostile_dict_keys(emitter, key):
    for call in (
        lambda: emitter.log_metrics({key: 1.0}),
        lambda: emitter.emit_target_complete("t", "success", metrics={key: 1.0}),
        lambda: emitter.emit_run_start(config={key: 1.0}),
    ):
        try:
            call()
        except CLEAN_ERRORS:
            pass
    _check_every_line_decodes(emitter)


def test_huge_metrics_dict(emitter):
    metrics = {f"m{i}": float(i) for i in range(20000)}
    try:
        emitter.log_metrics(metrics, step=1)
    except CLEAN_ERRORS:
        return
    _check_every_line_decodes(emitter)


def test_nan_metrics_read_back_as_nan(emitter):
    emitter.log_metrics({"nan": float("nan"), "inf": float("inf")}, step=1)
    (line,) = lines(emitter)
    got = fe.decode_line(line)["metrics"]
    assert math.isnan(got["nan"]) and got["inf"] == math.inf


def test_hostile_values_through_the_file_sink(events_path):
    with fe.TrainingEventEmitter("run-hostile-file", path=events_path) as e:
        for value in HOSTILE:
            for _ in _call_all(e, value):
                pass
    for event in json_lines(events_path):
        assert event["run_id"] == "run-hostile-file"
