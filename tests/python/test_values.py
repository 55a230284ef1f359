"""Numbers from numpy and torch are accepted; anything else is a TypeError naming the field."""

import subprocess
import sys

import numpy as np
import pytest

import foxml_events as fe
from conftest import memory_lines


def decoded(e):
    return [fe.decode_line(line) for line in memory_lines(e)]


def test_numpy_scalars(emitter):
    emitter.emit_progress("training", np.float32(25.5), step=np.int64(3), total_steps=np.int32(10))
    emitter.log_metrics({"loss": np.float64(0.5), "acc": np.float32(0.75), "n": np.int64(7), "zero_d": np.array(2.5)},
                        step=np.uint8(4), epoch=np.int16(1))
    emitter.emit_target_complete("t", "success", models_trained=np.int64(2), best_auc=np.float16(0.5))
    emitter.emit_run_complete("success", duration_s=np.float64(1.5))
    progress, metrics, target, complete = decoded(emitter)
    assert (progress["progress_pct"], progress["step"], progress["total_steps"]) == (25.5, 3, 10)
    assert metrics["metrics"] == {"loss": 0.5, "acc": 0.75, "n": 7.0, "zero_d": 2.5}
    assert (metrics["step"], metrics["epoch"]) == (4, 1)
    assert (target["models_trained"], target["best_auc"]) == (2, 0.5)
    assert complete["duration_s"] == 1.5


def test_torch_tensors(emitter):
    import torch

    loss = torch.tensor(0.25, requires_grad=True) * 2
    emitter.log_metrics({"loss": loss, "acc": torch.tensor([0.5]), "lr": torch.tensor(1e-3, dtype=torch.float64)},
                        step=torch.tensor(9))
    emitter.emit_progress("training", torch.tensor(50.0), step=torch.tensor(3, dtype=torch.int32))
    metrics, progress = decoded(emitter)
    assert metrics["metrics"] == {"loss": 0.5, "acc": 0.5, "lr": 1e-3}
    assert metrics["step"] == 9
    assert (progress["progress_pct"], progress["step"]) == (50.0, 3)


def test_tensor_that_is_not_a_scalar_is_refused(emitter):
    import torch

    with pytest.raises(TypeError, match=r"metrics\['loss'\].*2 elements is not a scalar"):
        emitter.log_metrics({"loss": torch.tensor([0.5, 0.25])})
    with pytest.raises(TypeError, match=r"progress_pct.*0 elements is not a scalar"):
        emitter.emit_progress("training", torch.tensor([]))


def test_python_numbers(emitter):
    emitter.emit_progress("training", 7, step=True)  # an int percentage; bool is an int
    emitter.log_metrics({"big": 10**30, "f": 1.5})
    progress, metrics = decoded(emitter)
    assert progress["progress_pct"] == 7.0 and progress["step"] == 1
    assert metrics["metrics"] == {"big": 1e30, "f": 1.5}


@pytest.mark.parametrize(
    "call, field",
    [
        (lambda e: e.emit_progress("training", "50"), "progress_pct"),
        (lambda e: e.emit_progress("training", None), "progress_pct"),
        (lambda e: e.emit_progress(3, 50.0), "stage"),
        (lambda e: e.emit_progress("training", 50.0, current_target=5), "current_target"),
        (lambda e: e.emit_progress("training", 50.0, step=1.5), "step"),
        (lambda e: e.emit_progress("training", 50.0, step="1"), "step"),
        (lambda e: e.emit_progress("training", 50.0, targets_total=[1]), "targets_total"),
        (lambda e: e.emit_progress("training", 50.0, epoch=np.float64(1.0)), "epoch"),
        (lambda e: e.log_metrics({"loss": "low"}), r"metrics\['loss'\]"),
        (lambda e: e.log_metrics({"loss": [0.1]}), r"metrics\['loss'\]"),
        (lambda e: e.log_metrics({"loss": None}), r"metrics\['loss'\]"),
        (lambda e: e.log_metrics({1: 0.5}), "metric name"),
        (lambda e: e.log_metrics([("loss", 0.5)]), "metrics"),
        (lambda e: e.log_metrics({"loss": 0.5}, step=0.5), "step"),
        (lambda e: e.emit_stage_change(None, 5), "new_stage"),
        (lambda e: e.emit_stage_change(b"a", "b"), "previous_stage"),
        (lambda e: e.emit_target_complete("t", "success", best_auc="high"), "best_auc"),
        (lambda e: e.emit_target_complete("t", "success", models_trained=1.0), "models_trained"),
        (lambda e: e.emit_target_complete("t", "success", metrics={"auc": object()}), r"metrics\['auc'\]"),
        (lambda e: e.emit_run_complete(duration_s="1s"), "duration_s"),
        (lambda e: e.emit_error(RuntimeError("x")), "error_message"),
        (lambda e: e.log("info", 42), "message"),
        (lambda e: e.emit_run_start(config=[1, 2]), "config"),
        (lambda e: e.emit_run_start(tags=[1]), "tag"),
        (lambda e: e.emit_run_start(total_steps="10"), "total_steps"),
    ],
)
def test_wrong_types_raise_type_error_naming_the_field(emitter, call, field):
    with pytest.raises(TypeError, match=field):
        call(emitter)
    assert emitter.stats()["emitted"] == 0  # nothing half-sent


def test_multi_element_tensor_is_a_type_error(emitter):
    import torch

    with pytest.raises(TypeError, match=r"metrics\['loss'\].*Tensor") as info:
        emitter.log_metrics({"loss": torch.tensor([0.1, 0.2])})
    assert info.value.__cause__ is not None  # torch's own message is kept as the cause


def test_argument_errors_match_python_calls(emitter):
    with pytest.raises(TypeError, match="missing required argument 'progress_pct'"):
        emitter.emit_progress("training")
    with pytest.raises(TypeError, match="multiple values for argument 'stage'"):
        emitter.emit_progress("training", 1.0, stage="x")
    with pytest.raises(TypeError, match="at most 9 positional"):
        emitter.emit_progress("t", 1.0, None, 0, 0, 1, 2, 3, 4, 5)


def test_surrogates_are_replaced_not_fatal(emitter):
    emitter.log("info", "bad \udcff text")
    (ev,) = decoded(emitter)
    assert ev["message"].startswith("bad ") and ev["message"].endswith(" text")


def test_torch_is_not_imported_by_the_library():
    code = "import sys, foxml_events as fe; e = fe.TrainingEventEmitter('r', 'memory://'); " \
           "e.log_metrics({'a': 1.0}); e.close(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "False"
