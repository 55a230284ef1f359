"""Data-parallel training of a small MLP on scikit-learn's digits (real data, no download) with
torch.distributed (gloo, CPU), every rank reporting through one events-proxy: one run, many ranks.

    events-proxy &                                        # emitters -> :5556, subscribers <- :5558
    events-tail --zmq tcp://127.0.0.1:5558 --live &       # or several subscribers at once
    torchrun --nproc_per_node 4 examples/python/ddp_digits.py --epochs 2

Each rank takes rank, local_rank and world_size from torchrun's variables and the run id from
$TORCHELASTIC_RUN_ID (the same on every rank; --run-id overrides it). `--slow-rank R` makes rank R
a straggler on purpose (it sleeps `--slow-delay` seconds after each step before reporting it).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import List, Optional

import numpy as np
import torch
import torch.distributed as dist
from sklearn.datasets import load_digits
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

import foxml_events as fe


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", default="zmq+tcp://127.0.0.1:5556",
                        help="sink URI list of every rank (default: the events-proxy on this host)")
    parser.add_argument("--run-id", default=None, help="default: $TORCHELASTIC_RUN_ID, shared by all ranks")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--max-steps", type=int, default=0, help="stop each epoch after this many steps (0: all)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--slow-rank", type=int, default=-1, help="this rank reports each step late")
    parser.add_argument("--slow-delay", type=float, default=0.2, help="seconds the slow rank lags (default 0.2)")
    parser.add_argument("--stats-dir", default=None, help="each rank writes its emitter stats to rank<R>.json here")
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    # Metrics are averaged over ranks below, so rank 0's are the run's: the others keep theirs back.
    events = fe.init_training_events(args.run_id, args.events, rank_zero_only=["metrics"], resources_interval=0,
                                     close_timeout=5.0)
    with events:
        events.emit_run_start(config=vars(args), name="ddp-digits", tags=["example", "ddp", "gloo"],
                              total_epochs=args.epochs)
        with events.stage("dataset_loading"):
            digits = load_digits()
            x = torch.from_numpy((digits.data / 16.0).astype(np.float32))
            data = TensorDataset(x, torch.from_numpy(digits.target))
            sampler = DistributedSampler(data, num_replicas=world, rank=rank, shuffle=True, seed=0)
            loader = DataLoader(data, batch_size=args.batch_size, sampler=sampler)
        torch.manual_seed(0)
        model = DistributedDataParallel(nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10)))
        optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
        loss_fn = nn.CrossEntropyLoss()
        steps = min(len(loader), args.max_steps) if args.max_steps > 0 else len(loader)
        total = steps * args.epochs
        step = 0
        with events.stage("training"):
            for epoch in range(args.epochs):
                sampler.set_epoch(epoch)
                for i, (xb, yb) in enumerate(loader):
                    if i >= steps:
                        break
                    optimizer.zero_grad()
                    loss = loss_fn(model(xb), yb)
                    loss.backward()  # gradients all-reduced over the ranks
                    optimizer.step()
                    mean_loss = loss.detach().clone()
                    dist.all_reduce(mean_loss)
                    mean_loss /= world
                    if rank == args.slow_rank:
                        time.sleep(args.slow_delay)
                    step += 1
                    events.emit_progress("training", 100.0 * step / total, step=step, total_steps=total,
                                         epoch=epoch, total_epochs=args.epochs)
                    events.log_metrics({"loss": float(mean_loss)}, step=step, epoch=epoch)
        dist.barrier()
    if args.stats_dir:
        with open(os.path.join(args.stats_dir, f"rank{rank}.json"), "w") as out:
            json.dump({"run_id": events.run_id, **events.stats()}, out)
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
