"""run_start's config: whatever the emitter writes, the library's own reader reads back (issue 9,
defect 11), and keys that would collide in JSON are refused rather than lost."""

import json

import pytest

import foxml_events as fe
from conftest import memory_lines
from foxml_events import _core


def nested(levels):
    """A config dict that is `levels` deep (the config object itself is level 1)."""
    value = {"leaf": 1}
    for _ in range(levels - 1):
        value = {"k": value}
    return value


def nested_json(levels):
    return "{\"k\":" * (levels - 1) + "{\"leaf\":1}" + "}" * (levels - 1)


def written(e):
    return [fe.decode_line(line) for line in memory_lines(e)]


def test_the_deepest_accepted_config_reads_back(emitter):
    config = nested(_core.max_config_depth)
    emitter.emit_run_start(config)
    (event,) = written(emitter)
    assert event["config"] == config


def test_a_deeper_config_is_a_clear_value_error(emitter):
    with pytest.raises(ValueError, match=f"deeper than {_core.max_config_depth} levels"):
        emitter.emit_run_start(nested(_core.max_config_depth + 1))
    with pytest.raises(ValueError, match="deeper"):
        deep_list = [1]
        for _ in range(_core.max_config_depth):
            deep_list = [deep_list]
        emitter.emit_run_start({"a": deep_list})
    with pytest.raises(ValueError, match="deeper"):
        emitter.emit_run_start(nested(100000))  # not a RecursionError
    assert written(emitter) == []


@pytest.mark.parametrize("levels", [32, 33, 200])
def test_the_encoder_writes_a_readable_marker_for_a_too_deep_config(emitter, levels):
    # Past the Python check (a C++ caller, or the binding called directly): the line stays readable.
    text = nested_json(levels)
    emitter._emit_run_start(text, None, None, None, None)
    (event,) = written(emitter)
    assert event["event_type"] == "run_start"
    assert event["config"] == {"_too_deep_config": text}


def test_the_readers_agree_with_the_writer(tmp_path):
    path = tmp_path / "events.jsonl"
    with fe.TrainingEventEmitter("run-config-file", path=path) as e:
        e.emit_run_start(nested(_core.max_config_depth))
        e._emit_run_start(nested_json(_core.max_config_depth + 1), None, None, None, None)
    assert [ev["event_type"] for ev in fe.read_events(path)] == ["run_start", "run_start", "run_complete"]
    with fe.EventReader(path, follow=False) as reader:
        assert [ev["event_type"] for ev in reader] == ["run_start", "run_start", "run_complete"]
        assert reader.stats()["malformed"] == 0


@pytest.mark.parametrize("config, key", [
    ({1: "a", "1": "b"}, "'1'"),
    ({"1": "a", 1: "b"}, "'1'"),
    ({None: 1, "None": 2}, "'None'"),
    ({"outer": {2.5: 1, "2.5": 2}}, "'2.5'"),
])
def test_keys_that_collide_after_conversion_are_refused(emitter, config, key):
    with pytest.raises(ValueError, match=key):
        emitter.emit_run_start(config)
    assert written(emitter) == []


def test_non_str_keys_that_do_not_collide_are_kept(emitter):
    emitter.emit_run_start({1: "a", 2: "b", "name": {3: [1, 2]}})
    (event,) = written(emitter)
    assert event["config"] == {"1": "a", "2": "b", "name": {"3": [1, 2]}}
    json.dumps(event["config"])
