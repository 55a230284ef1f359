"""emitter.stage(...) and the emitter as a context manager, on success and on exception."""

import pytest

import foxml_events as fe
from conftest import json_lines
import event_schema


def kinds(events):
    return [ev["event_type"] for ev in events]


def test_stage_success(events_path):
    e = fe.TrainingEventEmitter("run-stage", str(events_path))
    with e.stage("training") as scope:
        assert scope.name == "training" and e.current_stage == "training"
        with e.stage("validation"):
            assert e.current_stage == "validation"
        assert e.current_stage == "training"
    e.close()
    events = json_lines(events_path)
    event_schema.check(events)
    assert [(ev["previous_stage"], ev["new_stage"]) for ev in events] == [
        (None, "training"), ("training", "validation"), ("validation", "training"), ("training", "idle")]


def test_stage_exception_sends_error_and_reraises(events_path):
    e = fe.TrainingEventEmitter("run-stage-fail", str(events_path))
    with pytest.raises(ZeroDivisionError):
        with e.stage("validation"):
            1 / 0
    e.close()
    enter, error, leave = json_lines(events_path)
    assert (enter["event_type"], enter["new_stage"]) == ("stage_change", "validation")
    assert error["event_type"] == "error"
    assert (error["error_type"], error["error_message"], error["recoverable"]) == (
        "ZeroDivisionError", "division by zero", False)
    assert (leave["previous_stage"], leave["new_stage"]) == ("validation", "idle")


def test_emitter_context_success(events_path):
    with fe.TrainingEventEmitter("run-ctx", str(events_path)) as e:
        e.emit_progress("training", 100.0)
    assert e.closed
    events = json_lines(events_path)
    assert kinds(events) == ["progress", "run_complete"]
    assert events[-1]["status"] == "success" and events[-1]["duration_s"] >= 0


class CustomFailure(Exception):
    pass


def test_emitter_context_failure(events_path):
    with pytest.raises(CustomFailure):
        with fe.init_training_events("run-ctx-fail", str(events_path)) as e:
            with e.stage("training"):
                raise CustomFailure("loss is NaN")
    assert e.closed
    events = json_lines(events_path)
    event_schema.check(events)
    assert kinds(events) == ["stage_change", "error", "stage_change", "error", "run_complete"]
    error = events[3]
    assert error["error_type"].endswith("CustomFailure") and error["error_message"] == "loss is NaN"
    assert error["recoverable"] is False
    assert events[-1]["status"] == "failed"


def test_keyboard_interrupt_is_cancelled(events_path):
    with pytest.raises(KeyboardInterrupt):
        with fe.TrainingEventEmitter("run-ctx-int", str(events_path)):
            raise KeyboardInterrupt
    events = json_lines(events_path)
    assert kinds(events) == ["error", "run_complete"]
    assert events[0]["error_type"] == "KeyboardInterrupt" and events[1]["status"] == "cancelled"


def test_stage_name_must_be_str():
    e = fe.TrainingEventEmitter("r", "memory://")
    with pytest.raises(TypeError, match="stage name"):
        e.stage(3)
    e.close()
