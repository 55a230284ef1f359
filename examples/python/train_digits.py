"""Trains a small PyTorch MLP on the digits data set that scikit-learn ships (real data, no
download) and reports the run through foxml_events: run_start with the config, the stages
dataset_loading -> training -> validation -> save_model, per-step metrics (loss, accuracy, lr) and
progress (step/total, epochs), the validation result, and run_complete.

It obeys control commands (`events-ctl cancel|pause|resume|checkpoint RUN_ID`, or any client of the
run's control endpoint, docs/protocol.md "Control"), checked once per step: `cancel` saves a
checkpoint and ends the run `cancelled`; `pause` holds the loop until `resume`; `checkpoint` saves
the weights and goes on. Each gets its `command_done`.

    python examples/python/train_digits.py --epochs 3 --step-delay 0.05 --output /tmp/digits.jsonl

Without --output, events go to the library's default sink (printed at start). Follow them with
`python -c "import foxml_events as fe; [print(e) for e in fe.follow_events('/tmp/digits.jsonl')]"`.
"""

from __future__ import annotations

import argparse
import math
import os
import time
from typing import List, Optional

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import foxml_events as fe


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=3, help="passes over the training set (default 3)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.1, help="peak learning rate (cosine schedule)")
    parser.add_argument("--hidden", type=int, default=64, help="hidden units")
    parser.add_argument("--step-delay", type=float, default=0.0,
                        help="seconds to sleep after each step, so a live view can watch (default 0)")
    parser.add_argument("--output", default=None,
                        help="where events go: a file path or file:///path (default: the library's default sink)")
    parser.add_argument("--model-path", default="digits_mlp.pt", help="where the trained weights are saved")
    parser.add_argument("--run-id", default=None, help="default: digits-<time>-<pid>")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.batch_size < 1 or args.step_delay < 0:
        parser.error("--epochs and --batch-size must be >= 1, --step-delay >= 0")
    return args


def obey_commands(events: fe.TrainingEventEmitter, model: nn.Module, args: argparse.Namespace) -> Optional[fe.Command]:
    """Takes the commands waiting for the loop; returns a `cancel` (the loop then stops)."""
    while True:
        command = events.poll_command()
        if command is None:
            return None
        if command.name == "cancel":
            return command
        if command.name in ("pause", "resume"):
            if command.name == "pause":
                print(f"paused by {command.sender or 'someone'}", flush=True)
            # Holds the loop while paused (until resume or cancel) and acknowledges both commands.
            events.wait_while_paused()
        elif command.name == "checkpoint":
            torch.save(model.state_dict(), args.model_path)
            events.command_done(command, "ok", f"checkpoint saved to {args.model_path}")
        else:
            events.command_done(command, "ignored", f"the digits demo knows no command {command.name!r}")


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    run_id = args.run_id or f"digits-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    config = {key: value for key, value in vars(args).items() if key not in ("output", "run_id")}
    config.update(model="mlp", optimizer="sgd", momentum=0.9, schedule="cosine", dataset="sklearn.digits")

    events = fe.init_training_events(run_id, args.output)
    print(f"run {run_id}: events -> {events.sink}", flush=True)
    with events:  # run_complete on exit: success, or failed with the exception's type and message
        events.emit_run_start(config=config, name="digits-mlp", tags=["example", "pytorch", "digits"],
                              total_epochs=args.epochs)

        with events.stage("dataset_loading"):
            digits = load_digits()
            x = (digits.data / 16.0).astype(np.float32)
            x_train, x_val, y_train, y_val = train_test_split(
                x, digits.target, test_size=0.2, random_state=args.seed, stratify=digits.target)
            train = TensorDataset(torch.from_numpy(x_train), torch.from_numpy(y_train))
            loader = DataLoader(train, batch_size=args.batch_size, shuffle=True)
            events.log("info", f"digits: {len(x_train)} training and {len(x_val)} validation samples, "
                               f"{x.shape[1]} features, 10 classes")

        model = nn.Sequential(nn.Linear(x.shape[1], args.hidden), nn.ReLU(), nn.Linear(args.hidden, 10))
        loss_fn = nn.CrossEntropyLoss()
        optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
        steps_per_epoch = len(loader)
        total_steps = steps_per_epoch * args.epochs
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)

        cancel: Optional[fe.Command] = None
        with events.stage("training"):
            step = 0
            for epoch in range(args.epochs):
                model.train()
                for features, labels in loader:
                    cancel = obey_commands(events, model, args)
                    if cancel is not None:
                        break
                    optimizer.zero_grad()
                    logits = model(features)
                    loss = loss_fn(logits, labels)
                    loss.backward()
                    optimizer.step()
                    lr = optimizer.param_groups[0]["lr"]
                    schedule.step()
                    accuracy = (logits.argmax(dim=1) == labels).float().mean()
                    # 0-d tensors go in as they are: the library reads them with .item().
                    events.log_metrics({"loss": loss.detach(), "accuracy": accuracy, "lr": lr}, step=step, epoch=epoch)
                    step += 1
                    events.emit_progress("training", 100.0 * step / total_steps, step=step, total_steps=total_steps,
                                         epoch=epoch + 1, total_epochs=args.epochs)
                    if args.step_delay:
                        time.sleep(args.step_delay)
                if cancel is not None:
                    break
                events.log("info", f"epoch {epoch + 1}/{args.epochs}: last loss {loss.item():.4f}")

        if cancel is not None:
            # Progress is kept up to this step: the weights so far, then the run ends `cancelled`.
            with events.stage("save_model"):
                torch.save(model.state_dict(), args.model_path)
            events.command_done(cancel, "ok", f"cancelled at step {step}; checkpoint saved to {args.model_path}")
            events.emit_run_complete("cancelled")
            events.close()
            print(f"cancelled at step {step} by {cancel.sender or 'someone'}; checkpoint saved to "
                  f"{args.model_path}", flush=True)
            return 0

        with events.stage("validation"):
            model.eval()
            with torch.no_grad():
                logits = model(torch.from_numpy(x_val))
                labels = torch.from_numpy(y_val)
                val_loss = loss_fn(logits, labels).item()
                val_accuracy = (logits.argmax(dim=1) == labels).float().mean().item()
                probabilities = torch.softmax(logits, dim=1).numpy()
            auc = float(roc_auc_score(y_val, probabilities, multi_class="ovr"))
            events.log_metrics({"val_loss": val_loss, "val_accuracy": val_accuracy, "val_auc": auc},
                               step=step, epoch=args.epochs - 1)
            events.emit_target_complete("digits", "success" if math.isfinite(val_loss) else "failed",
                                        models_trained=1, best_auc=auc,
                                        metrics={"val_accuracy": val_accuracy, "val_loss": val_loss})

        with events.stage("save_model"):
            torch.save(model.state_dict(), args.model_path)
            events.log("info", f"model saved to {args.model_path}")

    stats = events.stats()
    print(f"validation accuracy {val_accuracy:.3f}, AUC {auc:.4f}; "
          f"{stats['written']} events written, {stats['dropped']} dropped -> {events.sink}", flush=True)
    return 0 if stats["dropped"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
