"""Issue 14, Accelerate: FoxmlTracker in a real Accelerator loop (CPU): run_start with the config
init_trackers got, metrics equal to what the loop handed accelerator.log (tensors included),
stages, progress to 100 %, run_complete; events-ctl cancel ends the loop within one step (it asks
tracker.should_stop()); an exception in flight at end_training ends the run failed; the
registered ``log_with="foxml"`` name."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import pytest

from adapter_checks import (
    cancel, check_cancelled, check_lifecycle, events_of, final_progress, of_type, run_dir, sink_options, stages)

accelerate = pytest.importorskip("accelerate")
torch = pytest.importorskip("torch")

from foxml_events.accelerate import FoxmlTracker  # noqa: E402

_ = run_dir  # the fixture, used by name

STEPS_PER_EPOCH = 4


def train(accelerator: Any, tracker: Optional[FoxmlTracker], epochs: int = 2, cancel_at: int = -1,
          run_dir: Any = None, fail_at: int = -1) -> Tuple[int, List[Tuple[int, Dict[str, float]]]]:
    """A small regression loop; returns the steps done and what it logged (as numbers)."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(8 * STEPS_PER_EPOCH, 4, generator=g)
    data = torch.utils.data.TensorDataset(x, x.sum(1, keepdim=True))
    model = torch.nn.Linear(4, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    model, optimizer, loader = accelerator.prepare(model, optimizer, torch.utils.data.DataLoader(data, batch_size=8))
    logged: List[Tuple[int, Dict[str, float]]] = []
    step = 0
    for epoch in range(epochs):
        for features, target in loader:
            if step == fail_at:
                raise RuntimeError("diverged")
            loss = torch.nn.functional.mse_loss(model(features), target)
            accelerator.backward(loss)
            optimizer.step()
            optimizer.zero_grad()
            step += 1
            values = {"loss": loss.detach(), "lr": optimizer.param_groups[0]["lr"]}
            accelerator.log(values, step=step)
            logged.append((step, {"loss": loss.item(), "lr": 0.05}))
            if step == cancel_at:
                cancel(tracker.run_id, run_dir)
            if tracker is not None and tracker.should_stop():
                return step, logged
        if tracker is not None:
            with tracker.stage("evaluation"):
                with torch.no_grad():
                    val = torch.nn.functional.mse_loss(model(x), x.sum(1, keepdim=True))
                accelerator.log({"val_loss": val}, step=step)
                logged.append((step, {"val_loss": val.item()}))
    return step, logged


def test_loop_reports_what_it_logged(run_dir):
    tracker = FoxmlTracker("acc-loop", total_steps=2 * STEPS_PER_EPOCH, total_epochs=2, **sink_options(run_dir))
    accelerator = accelerate.Accelerator(cpu=True, log_with=tracker)
    accelerator.init_trackers("project", config={"lr": 0.05, "batch_size": 8})
    steps, logged = train(accelerator, tracker)
    accelerator.end_training()
    assert steps == 8

    events = events_of(run_dir, "acc-loop")
    assert check_lifecycle(events, "success") == {"lr": 0.05, "batch_size": 8}
    assert events[0]["total_steps"] == 8 and events[0]["total_epochs"] == 2
    assert stages(events) == ["training", "evaluation", "training", "evaluation", "training", "idle"]
    assert final_progress(events) == 100.0
    assert [(e["step"], e["metrics"]) for e in of_type(events, "metrics")] == logged
    assert tracker.tracker.closed


def test_events_ctl_cancel_ends_the_loop_within_one_step(run_dir):
    tracker = FoxmlTracker("acc-cancel", total_steps=2 * STEPS_PER_EPOCH, **sink_options(run_dir))
    accelerator = accelerate.Accelerator(cpu=True, log_with=tracker)
    accelerator.init_trackers("project")
    steps, _ = train(accelerator, tracker, cancel_at=3, run_dir=run_dir)
    accelerator.end_training()
    assert steps == 3
    events = events_of(run_dir, "acc-cancel")
    check_lifecycle(events, "cancelled")
    check_cancelled(events, "acc-cancel")


def test_end_training_in_a_finally_after_an_exception_ends_failed(run_dir):
    tracker = FoxmlTracker("acc-fail", **sink_options(run_dir))
    accelerator = accelerate.Accelerator(cpu=True, log_with=tracker)
    accelerator.init_trackers("project")
    with pytest.raises(RuntimeError, match="diverged"):
        try:
            train(accelerator, tracker, fail_at=2)
        finally:
            accelerator.end_training()
    events = events_of(run_dir, "acc-fail")
    check_lifecycle(events, "failed")
    assert [(e["error_type"], e["error_message"]) for e in of_type(events, "error")] == [("RuntimeError", "diverged")]


def test_registered_name_takes_the_project_name_as_run_id(run_dir):
    from accelerate.tracking import register_tracker_class

    register_tracker_class(FoxmlTracker)
    accelerator = accelerate.Accelerator(cpu=True, log_with="foxml")
    accelerator.init_trackers("acc-named", config={"seed": 1}, init_kwargs={"foxml": sink_options(run_dir)})
    accelerator.log({"loss": 0.5}, step=1)
    accelerator.end_training()
    events = events_of(run_dir, "acc-named")
    assert check_lifecycle(events, "success") == {"seed": 1}
    assert [e["metrics"] for e in of_type(events, "metrics")] == [{"loss": 0.5}]
