"""The one toy task of the trainer tests: y = x · w (+ noise) learnt by a small MLP.

Small and exact enough for bit-for-bit checks of the trainer (determinism, resume after a signal,
data parallelism, loader workers, provenance of checkpoints). Each test module states its sizes;
the data come from a generator seeded with 0, so the same sizes give the same numbers.

Imported as ``toy_regression`` (``tests/`` is on ``sys.path``: pytest's rootdir-relative imports,
and ``PYTHONPATH`` for the torchrun workers of ``tests/cluster``).
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass

import torch

from replibench.families.task import Task


@dataclass
class ToyConfig:
    """The MLP: ``inputs`` → ``width`` (``activation``, dropout) → 1."""

    inputs: int = 3
    width: int = 8
    dropout: float = 0.0
    activation: str = "relu"  # "relu" | "tanh"


class ToyNet(torch.nn.Module):
    """A small MLP; with dropout, training randomness (the global RNG) matters for resume."""

    Config = ToyConfig

    def __init__(self, config: ToyConfig) -> None:
        super().__init__()
        activation = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh}[config.activation]
        layers = [torch.nn.Linear(config.inputs, config.width), activation()]
        if config.dropout:
            layers.append(torch.nn.Dropout(config.dropout))
        self.layers = torch.nn.Sequential(*layers, torch.nn.Linear(config.width, 1))

    def forward(self, x):  # (B, inputs) → (B,)
        return self.layers(x).squeeze(-1)


class ToyRegressionTask(Task):
    """``num_train + num_val`` examples x ~ N(0, 1) (generator seed 0), y = x · ``weights`` +
    ``noise`` × N(0, 1); the loss is a mean over examples (what data parallelism reproduces exactly).
    ``signal_at_step``: the task sends itself ``signal_number`` at that call of the training loss
    (a preemption). The model is built from ``settings["model"]`` (:class:`ToyConfig` fields)."""

    name = "toy"
    batches_are_pure = True  # make_batch only indexes

    def __init__(self, *, num_train: int = 200, num_val: int = 100, weights=(1.0, -2.0, 0.5), noise: float = 0.1,
                 signal_at_step: int | None = None, signal_number: int = signal.SIGTERM) -> None:
        self.num_train, self.num_val, self.weights, self.noise = num_train, num_val, weights, noise
        self.signal_at_step, self.signal_number = signal_at_step, signal_number
        self.calls = 0

    def load(self, data_dir, run, settings):
        generator = torch.Generator().manual_seed(0)
        total = self.num_train + self.num_val
        x = torch.randn(total, len(self.weights), generator=generator)
        y = x @ torch.tensor(self.weights)
        if self.noise:
            y = y + self.noise * torch.randn(total, generator=generator)
        return {"train": (x[:self.num_train], y[:self.num_train]), "val": (x[self.num_train:], y[self.num_train:])}

    def build_model(self, data, run, settings):
        return ToyNet(ToyConfig(**{"inputs": len(self.weights), **settings.get("model", {})}))

    def num_train_examples(self, data):
        return self.num_train

    def make_batch(self, data, split, indices):
        x, y = data[split]
        return x[indices], y[indices]

    def training_loss(self, model, batch):
        self.calls += 1
        if self.signal_at_step is not None and self.calls == self.signal_at_step:
            os.kill(os.getpid(), self.signal_number)
        x, y = batch
        return torch.nn.functional.mse_loss(model(x), y)

    def validation_loss(self, model, data, settings):
        model.eval()
        x, y = data["val"]
        with torch.no_grad():
            return float(torch.nn.functional.mse_loss(model(x), y))

    def predict(self, model, data, run, settings):
        raise NotImplementedError

    def score(self, predictions, data, settings):
        raise NotImplementedError
