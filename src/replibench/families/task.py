"""The contract between a task, the generic trainer and the evaluator.

A task turns a preprocessed dataset folder into tensors, builds the model the run asks for, and
knows the paper's protocol: the loss, how test predictions are made, and which metrics score them.
The trainer (``replibench.train``) owns everything else: seeding, device, mixed precision,
optimiser and schedule, clipping, early stopping, checkpoint/resume and signals.

Determinism: the trainer seeds torch's global RNG and saves/restores its state in checkpoints, so a
task may draw training randomness (masks, diffusion times, dropout) from the global RNG. Evaluation
randomness (test masks, sampling) must come from ``torch.Generator`` objects the task seeds from
``run.seed`` itself, so test numbers do not depend on how training went.

Batching: the trainer draws a permutation of ``range(num_train_examples(data))`` from a generator
seeded by ``(seed, epoch)`` and asks ``make_batch(data, "train", indices)`` for each slice. That is
what makes an interrupted run resume bit-for-bit: it regenerates the epoch's order and skips the
batches already done.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from replibench.runs import RunSpec


class Task(ABC):
    """Subclass once per task kind (forecast, impute, lra-classify, csp, gen, s2ef, is2re)."""

    #: registry name, e.g. ``"forecast"``
    name: str = ""

    @abstractmethod
    def load(self, data_dir: Path, run: RunSpec, settings: dict[str, Any]) -> Any:
        """Read the dataset folder (Parquet + card.json) and return task data (splits, scalers…)."""

    @abstractmethod
    def build_model(self, data: Any, run: RunSpec, settings: dict[str, Any]):  # -> torch.nn.Module
        """Instantiate the run's model from ``settings["model"]`` and shapes known from ``data``."""

    @abstractmethod
    def num_train_examples(self, data: Any) -> int:
        """Number of training examples the trainer permutes each epoch."""

    @abstractmethod
    def make_batch(self, data: Any, split: str, indices) -> Any:
        """Gather examples ``indices`` (a 1-D LongTensor) of ``split`` into a batch (tensors)."""

    @abstractmethod
    def training_loss(self, model, batch: Any):  # -> scalar torch.Tensor
        """The paper's training objective on one batch."""

    @abstractmethod
    def validation_loss(self, model, data: Any, settings: dict[str, Any]) -> float:
        """Scalar on the validation split, lower is better; drives early stopping."""

    @abstractmethod
    def predict(self, model, data: Any, run: RunSpec, settings: dict[str, Any]):  # -> pyarrow.Table
        """Test-split predictions as a table, one row per scored unit, in test order."""

    @abstractmethod
    def score(self, predictions, data: Any, settings: dict[str, Any]) -> dict[str, float]:
        """Metrics from stored predictions (pure: the same table always gives the same numbers)."""

    def metric_info(self) -> dict[str, Any]:
        """``METRICS`` of the metric module that :meth:`score` uses (name → MetricInfo)."""
        return {}

    def protocol(self, data: Any, settings: dict[str, Any]) -> dict[str, Any]:
        """Protocol facts recorded in ``metrics.json`` (window counts, batch sizes, conventions)."""
        return {}


def build_registered_model(name: str, hyperparameters: dict[str, Any], **shape: Any):
    """Instantiate registry model ``name``: ``cls(cls.Config(**hyperparameters, **shape))``.

    ``shape`` holds what the task knows from the data (sequence lengths, channels, vocabulary);
    ``hyperparameters`` come from the preset and the user's overrides. An unknown key is a
    :class:`ConfigError` naming the model and its allowed fields.
    """
    import dataclasses

    from replibench.errors import ConfigError
    from replibench.registry import resolve

    model_class = resolve("model", name)
    allowed = {f.name for f in dataclasses.fields(model_class.Config)}
    unknown = sorted(set(hyperparameters) - allowed)
    if unknown:
        raise ConfigError(f"model {name!r}: unknown hyper-parameter(s) {unknown}; allowed: {sorted(allowed)}")
    return model_class(model_class.Config(**{**hyperparameters, **shape}))
