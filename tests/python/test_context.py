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
    # One error for one exception: the stage reported it, the emitter's `with` does not repeat it.
    assert kinds(events) == ["stage_change", "error", "stage_change", "run_complete"]
    error = events[1]
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


def test_exception_through_nested_stages_is_reported_once(events_path):
    with pytest.raises(CustomFailure):
        with fe.TrainingEventEmitter("run-ctx-nested", str(events_path)) as e:
            with e.stage("training"):
                with e.stage("epoch"):
                    raise CustomFailure("boom")
    events = json_lines(events_path)
    assert kinds(events).count("error") == 1
    assert events[-1]["status"] == "failed"


def test_a_caught_stage_exception_does_not_hide_a_later_one(events_path):
    with pytest.raises(CustomFailure):
        with fe.TrainingEventEmitter("run-ctx-later", str(events_path)) as e:
            try:
                with e.stage("training"):
                    raise CustomFailure("first")
            except CustomFailure:
                pass
            raise CustomFailure("second")
    errors = [ev["error_message"] for ev in json_lines(events_path) if ev["event_type"] == "error"]
    assert errors == ["first", "second"]


@pytest.mark.parametrize("code", [0, None, False])
def test_sys_exit_zero_is_success(events_path, code):
    import sys

    with pytest.raises(SystemExit):
        with fe.init_training_events("run-exit-0", str(events_path)) as e:
            with e.stage("training"):
                sys.exit(code)
    events = json_lines(events_path)
    assert "error" not in kinds(events)
    assert events[-1]["event_type"] == "run_complete" and events[-1]["status"] == "success"


@pytest.mark.parametrize("code", [1, 3, "bad config"])
def test_sys_exit_nonzero_is_failed(events_path, code):
    import sys

    with pytest.raises(SystemExit):
        with fe.init_training_events("run-exit-1", str(events_path)):
            sys.exit(code)
    events = json_lines(events_path)
    assert kinds(events) == ["error", "run_complete"]
    assert events[0]["error_type"] == "SystemExit" and events[-1]["status"] == "failed"
