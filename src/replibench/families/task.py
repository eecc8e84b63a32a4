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
    #: whether :meth:`make_batch` draws no randomness (a function of the indices alone): then the
    #: trainer may build batches in loader worker processes (``train.loader_workers``)
    batches_are_pure: bool = False

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

    def start_epoch(self, model, epoch: int) -> None:
        """Called by the trainer before the steps of 0-based ``epoch`` (also when a resumed epoch
        continues), for objectives that change with the epoch (CDVAE's teacher forcing). Default: nothing."""

    @abstractmethod
    def predict(self, model, data: Any, run: RunSpec, settings: dict[str, Any]):  # -> pyarrow.Table
        """Test-split predictions as a table, one row per scored unit, in test order."""

    # --- sharded prediction (a long evaluation split over several jobs; README "Evaluation that fits")
    def prediction_units(self, data: Any, settings: dict[str, Any]) -> int | None:
        """How many independent units the test prediction is made of (sample batches, blocks of
        frames), which shards split into consecutive ranges; None (this default) when the task's
        prediction cannot be split: its evaluation is one job. A family lists the tasks that can in
        :attr:`~replibench.families.base.Family.shardable_tasks`."""
        return None

    def predict_units(self, model, data: Any, run: RunSpec, settings: dict[str, Any], units: range):
        """The predictions of ``units`` only (a pyarrow table). Whatever the split, the tables of
        consecutive ranges covering ``range(prediction_units(...))``, merged by
        :meth:`merge_predictions`, equal :meth:`predict`'s table: a unit draws its randomness from
        its own seeded generator, never from the units before it."""
        raise NotImplementedError(f"task {self.name!r} cannot predict part of its test set")

    def merge_predictions(self, tables: list, data: Any, settings: dict[str, Any]):
        """The shards' tables (in unit order) as :meth:`predict`'s table; runs in the CPU job that
        gathers the shards and scores them."""
        import pyarrow as pa

        return pa.concat_tables(tables)

    @abstractmethod
    def score(self, predictions, data: Any, settings: dict[str, Any]) -> dict[str, float]:
        """Metrics from stored predictions (pure: the same table always gives the same numbers)."""

    def metric_info(self) -> dict[str, Any]:
        """``METRICS`` of the metric module that :meth:`score` uses (name → MetricInfo)."""
        return {}

    def protocol(self, data: Any, settings: dict[str, Any]) -> dict[str, Any]:
        """Protocol facts recorded in ``metrics.json`` (window counts, batch sizes, conventions)."""
        return {}

    #: one line for ``replibench metrics <family> <task> --help``: what files the task scores from
    #: outside the pipeline; None when it scores none (then :meth:`score_file` is not offered)
    score_file_help: str | None = None

    def add_score_file_arguments(self, parser) -> None:  # (argparse.ArgumentParser) -> None
        """Declare the options :meth:`score_file` reads (``--pred``, ``--out``, …) on ``parser``."""

    def score_file(self, options: dict[str, Any]) -> dict[str, Any]:
        """Score predictions made outside the pipeline with exactly this task's protocol and metric
        code (``replibench metrics <family> <task>``): ``options`` as declared by
        :meth:`add_score_file_arguments`; writes the record to ``options["out"]`` atomically and
        returns it. Formats: README, "Bring your own predictions"."""
        from replibench.errors import ConfigError

        raise ConfigError(f"task {self.name!r} does not score files from outside the pipeline")


def model_config(config_class: type, hyperparameters: dict[str, Any], facts: dict[str, Any], *, name: str):
    """The one rule by which every model's config is built from a run.

    ``facts`` are what the data fixes and a model cannot choose (channels, classes, vocabulary,
    sequence lengths, the radius graph's cutoff); ``hyperparameters`` are everything else, from the
    preset and the user's overrides. Facts come from the data; a setting that names a fact with
    another value is a :class:`ConfigError` (never silently overridden either way; ``None`` is a
    placeholder for the data's value, as the LRA presets write ``vocab_size``); a fact the
    model's config has no field for is not passed. An unknown setting is an error naming the
    allowed fields. Configs with nested sections build through their ``from_dict``.
    """
    import dataclasses

    from replibench.errors import ConfigError

    allowed = {f.name for f in dataclasses.fields(config_class)}
    unknown = sorted(set(hyperparameters) - allowed)
    if unknown:
        raise ConfigError(f"model {name!r}: unknown hyper-parameter(s) {unknown}; allowed: {sorted(allowed)}")

    def same(a: Any, b: Any) -> bool:
        return list(a) == list(b) if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) else a == b

    for key, value in facts.items():  # None in the settings = "the data's value" (a preset's placeholder)
        if hyperparameters.get(key) is not None and not same(hyperparameters[key], value):
            raise ConfigError(f"model {name!r}: model.{key} = {hyperparameters[key]!r} contradicts the data, "
                              f"which fixes it to {value!r}; remove it from the settings")
    values = {**hyperparameters, **{key: value for key, value in facts.items() if key in allowed}}
    from_dict = getattr(config_class, "from_dict", None)
    return from_dict(values) if from_dict is not None else config_class(**values)


def build_registered_model(name: str, hyperparameters: dict[str, Any], **facts: Any):
    """Instantiate registry model ``name`` from the run's settings and the data's facts
    (:func:`model_config`: the one precedence rule every task uses)."""
    from replibench.registry import resolve

    model_class = resolve("model", name)
    return model_class(model_config(model_class.Config, hyperparameters, facts, name=name))
