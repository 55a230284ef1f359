"""Issue 14, Hugging Face: FoxmlCallback on a real Trainer with a tiny randomly initialised BERT (a
config built here, nothing from the hub), CPU: its metrics equal state.log_history, run_start has
the TrainingArguments and the model config, stages and progress to 100 %, run_complete;
events-ctl cancel stops training within one step; ``with callback:`` ends a crash failed."""

from __future__ import annotations

from typing import Any, List

import pytest

from adapter_checks import (  # sets HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE before transformers loads
    cancel, check_cancelled, check_lifecycle, events_of, final_progress, of_type, run_dir, sink_options, stages)

transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

from foxml_events.transformers import FoxmlCallback  # noqa: E402

_ = run_dir  # the fixture, used by name


def tiny_trainer(run_dir: Any, callbacks: List[Any], epochs: int = 2) -> Any:
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=32, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=32, max_position_embeddings=16, num_labels=2)
    model = transformers.BertForSequenceClassification(config)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 32, (48, 8), generator=g)
    data = [{"input_ids": ids[i], "attention_mask": torch.ones(8, dtype=torch.long), "labels": int(ids[i, 0] % 2)}
            for i in range(48)]
    args = transformers.TrainingArguments(
        output_dir=str(run_dir / "out"), per_device_train_batch_size=8, per_device_eval_batch_size=16,
        num_train_epochs=epochs, logging_steps=1, eval_strategy="epoch", save_strategy="no", report_to="none",
        use_cpu=True, disable_tqdm=True, learning_rate=1e-3, dataloader_num_workers=0)
    return transformers.Trainer(model=model, args=args, train_dataset=data, eval_dataset=data[:16],
                                callbacks=callbacks)


def test_train_reports_what_log_history_holds(run_dir):
    callback = FoxmlCallback("hf-train", tags=["test"], **sink_options(run_dir))
    trainer = tiny_trainer(run_dir, [callback])
    with callback:
        trainer.train()

    events = events_of(run_dir, "hf-train")
    config = check_lifecycle(events, "success")
    assert config["training_args"]["learning_rate"] == 1e-3
    assert config["training_args"]["num_train_epochs"] == 2
    assert config["model_config"]["hidden_size"] == 16 and config["model_config"]["num_hidden_layers"] == 1
    assert events[0]["total_steps"] == 12 and events[0]["total_epochs"] == 2
    assert stages(events) == ["training", "evaluation", "training", "evaluation", "training", "idle"]
    assert final_progress(events) == 100.0
    assert [p["step"] for p in of_type(events, "progress")] == list(range(1, 13))

    ours = [(e["step"], e["metrics"]) for e in of_type(events, "metrics")]
    theirs = [(entry["step"], {k: v for k, v in entry.items() if k != "step"}) for entry in trainer.state.log_history]
    assert len(theirs) == 12 + 2 + 1  # a log per step, one per evaluation, the summary
    assert ours == theirs
    # Train and eval values are separate events: no event mixes the two.
    for _, metrics in ours:
        assert not ({"loss", "learning_rate"} & set(metrics) and any(k.startswith("eval_") for k in metrics))


def test_events_ctl_cancel_stops_training_within_one_step(run_dir):
    class CancelAt(transformers.TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.global_step == 3:
                cancel("hf-cancel", run_dir)

    callback = FoxmlCallback("hf-cancel", **sink_options(run_dir))
    trainer = tiny_trainer(run_dir, [CancelAt(), callback])
    trainer.train()
    assert trainer.state.global_step == 3
    events = events_of(run_dir, "hf-cancel")
    check_lifecycle(events, "cancelled")
    check_cancelled(events, "hf-cancel")


def test_with_the_callback_a_crash_ends_the_run_failed(run_dir):
    class Crash(transformers.TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.global_step == 2:
                raise ValueError("out of data")

    callback = FoxmlCallback("hf-crash", **sink_options(run_dir))
    trainer = tiny_trainer(run_dir, [Crash(), callback])
    with pytest.raises(ValueError, match="out of data"), callback:
        trainer.train()
    events = events_of(run_dir, "hf-crash")
    check_lifecycle(events, "failed")
    (error,) = of_type(events, "error")
    assert error["error_message"] == "out of data" and error["error_type"] == "ValueError"
    assert callback.emitter.closed


def test_a_checkpoint_command_saves_after_the_step(run_dir):
    import foxml_events as fe

    class AskAt(transformers.TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.global_step == 2:
                fe.send_command("hf-ckpt", "checkpoint", control_dir=str(run_dir / "control"))

    callback = FoxmlCallback("hf-ckpt", **sink_options(run_dir))
    trainer = tiny_trainer(run_dir, [AskAt(), callback], epochs=1)
    trainer.train()
    saved = run_dir / "out" / "checkpoint-2"
    assert saved.is_dir()
    events = events_of(run_dir, "hf-ckpt")
    check_lifecycle(events, "success")
    done = [(e["command"], e["outcome"], e["message"]) for e in of_type(events, "command_done")]
    assert done == [("checkpoint", "ok", f"checkpoint saved to {saved}")]
