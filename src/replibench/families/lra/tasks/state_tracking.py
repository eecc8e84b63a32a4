"""``state-tracking``: parity and modular arithmetic with linear RNNs (Grazzi et al., ICLR 2025).

The model is a causal language model over the task's small vocabulary (as in the paper's code);
its logits at the last input position are compared with the answer token. The loss is the
cross-entropy over the whole vocabulary at that position (the paper's masked LM loss); the
prediction is the arg-max over the whole vocabulary, so a model that outputs a non-answer token
is simply wrong. The score is :func:`replibench.families.lra.metrics.accuracy.scaled_accuracy` on the test split
(sizes 40–256, longer than anything seen in training), plus plain accuracy.

The model is the registry model of ``run.model`` (``mamba``: the diagonal selective linear RNN;
``deltanet``) built from ``settings["model"]`` (its config fields); the eigenvalue range is the
config field ``negative_eigenvalues`` (True → [-1, 1]), which the family sets from the run's
variant. ``data_origin`` is ``official`` only where the data is the paper's own protocol —
parity from the xLSTM generator's algorithm at the paper's sizes and uniform lengths — and
``generated`` otherwise (smaller sets, other size sampling, tasks whose generator is unverified).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from replibench.errors import DataError
from replibench.runs import RunSpec
from replibench.families.task import Task, build_registered_model
from replibench.families.lra.tasks.classify import pad_ragged

#: tasks whose generator we checked against the paper's (xLSTM ``formal_language/tasks/parity.py``)
PROTOCOL_CHECKED_TASKS = ("parity",)

@dataclass
class StateTrackingData:
    task: str
    vocab_size: int
    first_answer: int
    num_classes: int
    pad_id: int
    splits: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)


def load_state_tracking(data_dir: Path) -> StateTrackingData:
    import pyarrow.parquet as pq

    from replibench.data.tables import read_data_card

    notes = read_data_card(data_dir)["notes"]
    pad = notes["vocab_size"] - 1 if notes["task"] == "mod-arithmetic-brackets" else 0
    data = StateTrackingData(notes["task"], int(notes["vocab_size"]), int(notes["first_answer_token"]),
                             int(notes["num_classes"]), pad, notes=notes)
    for split in ("train", "val", "test"):
        path = Path(data_dir) / f"{split}.parquet"
        if not path.exists():
            raise DataError(f"{path}: missing; generate the state-tracking data first")
        table = pq.read_table(path)
        column = table.column("input_ids").combine_chunks()
        data.splits[split] = {
            "values": column.values.to_numpy(), "offsets": column.offsets.to_numpy().astype(np.int64),
            "target": table.column("target").to_numpy().astype(np.int64),
            "label": table.column("label").to_numpy(), "example_id": table.column("example_id").to_numpy(),
        }
    return data


def is_paper_protocol(notes: dict[str, Any]) -> bool:
    """True when the generated data is exactly the paper's protocol (see the module docstring)."""
    from replibench.families.lra.datasets.state_tracking import StateTrackingConfig

    paper = StateTrackingConfig(task=notes.get("task", ""))
    return (notes.get("task") in PROTOCOL_CHECKED_TASKS
            and all(_plain(notes.get(key)) == _plain(value) for key, value in paper.as_dict().items()))


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, (tuple, list)) else value


class StateTrackingTask(Task):
    name = "state-tracking"

    def load(self, data_dir: Path, run: RunSpec, settings: dict[str, Any]) -> StateTrackingData:
        return load_state_tracking(Path(data_dir))

    def build_model(self, data: StateTrackingData, run: RunSpec, settings: dict[str, Any]):
        return build_registered_model(run.model, dict(settings.get("model", {})), vocab_size=data.vocab_size)

    def num_train_examples(self, data: StateTrackingData) -> int:
        return int(data.splits["train"]["target"].shape[0])

    def make_batch(self, data: StateTrackingData, split: str, indices) -> dict[str, Any]:
        import torch

        part = data.splits[split]
        rows = np.asarray(indices.cpu().numpy() if hasattr(indices, "cpu") else indices, dtype=np.int64)
        ids, lengths = pad_ragged(part["values"], part["offsets"], rows, data.pad_id)  # (B, L), (B,)
        return {"inputs": torch.from_numpy(ids.astype(np.int64)), "lengths": torch.from_numpy(lengths),
                "targets": torch.from_numpy(part["target"][rows]), "labels": torch.from_numpy(part["label"][rows]),
                "example_id": torch.from_numpy(part["example_id"][rows])}

    @staticmethod
    def answer_logits(model, batch: dict[str, Any]):
        """Logits over the vocabulary at each sequence's last input position → (B, V)."""
        import torch

        logits = model(batch["inputs"])  # (B, L, V)
        last = (batch["lengths"] - 1).to(logits.device)
        return logits[torch.arange(logits.shape[0], device=logits.device), last]  # (B, V)

    def training_loss(self, model, batch: dict[str, Any]):
        import torch.nn.functional as F

        device = next(model.parameters()).device
        batch = {k: v.to(device) for k, v in batch.items()}
        return F.cross_entropy(self.answer_logits(model, batch), batch["targets"])

    def _evaluate(self, model, data: StateTrackingData, split: str, batch_size: int):
        import torch
        import torch.nn.functional as F

        device = next(model.parameters()).device
        n = int(data.splits[split]["target"].shape[0])
        was_training = model.training
        model.eval()
        predicted, loss = [], 0.0
        with torch.no_grad():
            for start in range(0, n, batch_size):
                batch = self.make_batch(data, split, np.arange(start, min(start + batch_size, n)))
                batch = {k: v.to(device) for k, v in batch.items()}
                logits = self.answer_logits(model, batch).float()
                loss += F.cross_entropy(logits, batch["targets"], reduction="sum").item()
                predicted.append(logits.argmax(-1).cpu().numpy())
        model.train(was_training)
        return (np.concatenate(predicted) if predicted else np.zeros(0, np.int64)), loss / max(n, 1)

    def validation_loss(self, model, data: StateTrackingData, settings: dict[str, Any]) -> float:
        return self._evaluate(model, data, "val", eval_batch_size(settings))[1]

    def predict(self, model, data: StateTrackingData, run: RunSpec, settings: dict[str, Any]):
        import pyarrow as pa

        predicted, _ = self._evaluate(model, data, "test", eval_batch_size(settings))
        part = data.splits["test"]
        lengths = np.diff(part["offsets"])
        return pa.table({
            "example_id": pa.array(part["example_id"], pa.int64()),
            "length": pa.array(lengths.astype(np.int64)),
            "target": pa.array(part["target"], pa.int64()),
            "predicted": pa.array(predicted.astype(np.int64)),
        })

    def score(self, predictions, data: StateTrackingData, settings: dict[str, Any]) -> dict[str, float]:
        from replibench.families.lra.metrics.accuracy import accuracy, scaled_accuracy

        target = predictions.column("target").to_numpy()
        predicted = predictions.column("predicted").to_numpy()
        return {"scaled_accuracy": scaled_accuracy(labels=target, predicted=predicted, num_classes=data.num_classes),
                "accuracy": accuracy(labels=target, predicted=predicted)}

    def metric_info(self) -> dict[str, Any]:
        from replibench.families.lra.metrics.accuracy import METRICS

        return {name: METRICS[name] for name in ("scaled_accuracy", "accuracy")}

    def protocol(self, data: StateTrackingData, settings: dict[str, Any]) -> dict[str, Any]:
        notes = data.notes
        lengths = np.diff(data.splits["test"]["offsets"])
        negative = bool(settings.get("model", {}).get("negative_eigenvalues", False))
        return {
            "data_origin": "official" if is_paper_protocol(notes) else "generated",
            "task": data.task, "num_classes": data.num_classes,
            "eigenvalue_range": "[-1, 1]" if negative else "[0, 1]",
            "train_sizes": _plain(notes.get("train_sizes")), "test_sizes": _plain(notes.get("test_sizes")),
            "train_size_power": notes.get("train_size_power", 0.0),
            "train_examples": int(data.splits["train"]["target"].shape[0]),
            "test_examples": int(lengths.shape[0]),
            "test_input_tokens": [int(lengths.min()), int(lengths.max())] if lengths.size else None,
            "test_batch_size": eval_batch_size(settings),
            "metric": "scaled accuracy (acc - 1/C)/(1 - 1/C) of the answer at the last input position",
        }


def eval_batch_size(settings: dict[str, Any]) -> int:
    return int(settings.get("task", {}).get("eval_batch_size", 256))


STATE_TRACKING = StateTrackingTask()
