"""The digits MLP both training-loop benchmarks time: scikit-learn's 8x8 digits, a 64-128-10 MLP,
SGD, one torch thread (a 140-160 us step on the 2-core reference machine)."""

from __future__ import annotations

from typing import NamedTuple

import torch
from sklearn.datasets import load_digits


class DigitsLoop(NamedTuple):
    x: torch.Tensor
    y: torch.Tensor
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    loss_fn: torch.nn.Module

    def step(self, index: torch.Tensor) -> "tuple[torch.Tensor, torch.Tensor]":
        """One SGD step on the rows `index`; returns the loss and the accuracy, as tensors."""
        logits = self.model(self.x[index])
        loss = self.loss_fn(logits, self.y[index])
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return loss, (logits.argmax(1) == self.y[index]).float().mean()


def digits_loop() -> DigitsLoop:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    digits = load_digits()
    x = torch.tensor(digits.data, dtype=torch.float32) / 16.0
    y = torch.tensor(digits.target, dtype=torch.long)
    model = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    return DigitsLoop(x, y, model, optimizer, torch.nn.CrossEntropyLoss())
