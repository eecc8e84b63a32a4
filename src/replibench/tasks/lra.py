"""``lra-classify``: sequence classification on the six Long Range Arena tasks.

Reads a dataset folder written by :mod:`replibench.datasets.lra_preprocess` and feeds the model
as the s4 code base does:

* token tasks (ListOps, Text): ids padded with ``<pad>`` to the longest sequence of the batch,
  with ``lengths`` and a boolean ``mask`` (True on real tokens, ``<eos>`` included);
* Retrieval: two documents per example, each padded to the longest document of the batch (both
  to a common length, as s4's collate does), passed as ``inputs`` and ``inputs2``;
* pixel tasks (Image, Pathfinder, Path-X): float sequences ``(B, L, 1)``, Image normalised with
  s4's grayscale CIFAR statistics (mean 122.6/255, std 61/255), Pathfinder/Path-X scaled to [0, 1]
  (s4 ``center: false``).

Model interface (built by the lra-models work, imported lazily): the class at
``settings["model_class"]`` (default :data:`MODEL_CLASS`) with a dataclass config
(``cls.config_class`` or ``SequenceClassifierConfig`` in the same module). The task fills the
shape fields the config declares — ``d_input`` (1 for pixels, vocabulary size for tokens),
``vocab_size``/``n_tokens`` (None for pixels), ``n_classes``, ``dual`` (True for Retrieval) — and
calls ``model(inputs, lengths=…)`` or, for Retrieval, ``model(inputs, lengths=…, inputs2=…,
lengths2=…)``; the model returns logits ``(B, n_classes)``.

Metric: test accuracy in percent (:func:`replibench.metrics.lra.accuracy`); averages over tasks
are :func:`replibench.metrics.lra.lra_average` with a named convention.
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from replibench.errors import ConfigError, DataError
from replibench.runs import RunSpec
from replibench.tasks.base import Task

MODEL_CLASS = "replibench.models.sequence_classifier:SequenceClassifier"
#: s4 ``CIFAR10(grayscale=True)``: Normalize(mean=122.6/255, std=61/255) after ToTensor
IMAGE_MEAN, IMAGE_STD = 122.6 / 255.0, 61.0 / 255.0
SPLITS = ("train", "val", "test")


@dataclass
class Split:
    """One split in memory: ragged token ids (flat + offsets) or dense pixels."""

    example_id: np.ndarray  # (N,) int64
    label: np.ndarray  # (N,) int64
    values: np.ndarray | None = None  # flat int32 ids
    offsets: np.ndarray | None = None  # (N + 1,) int64
    values2: np.ndarray | None = None
    offsets2: np.ndarray | None = None
    pixels: np.ndarray | None = None  # (N, L) uint8

    def __len__(self) -> int:
        return int(self.label.shape[0])


@dataclass
class LraData:
    dataset: str
    input_kind: str  # "tokens" | "token-pairs" | "pixels"
    num_classes: int
    vocab_size: int | None
    pad_id: int
    generated: bool
    pixel_scale: str | None  # "cifar-gray" | "unit" | None
    splits: dict[str, Split] = field(default_factory=dict)


def _list_column(table, name: str) -> tuple[np.ndarray, np.ndarray]:
    column = table.column(name).combine_chunks()
    return column.values.to_numpy(zero_copy_only=False), column.offsets.to_numpy().astype(np.int64)


def load_lra_folder(data_dir: Path) -> LraData:
    """Read ``{train,val,test}.parquet`` and ``card.json`` of one LRA dataset folder."""
    import pyarrow.parquet as pq

    from replibench.data.tables import read_data_card

    card = read_data_card(data_dir)
    notes = card.get("notes", {})
    kind = notes.get("input")
    if kind not in ("tokens", "token-pairs", "pixels"):
        raise DataError(f"{data_dir}/card.json: notes.input must be tokens, token-pairs or pixels, found {kind!r}")
    vocab = notes.get("vocab")
    dataset = card["dataset"]
    scale = None
    if kind == "pixels":
        scale = "cifar-gray" if dataset == "image" else "unit"
    data = LraData(dataset=dataset, input_kind=kind, num_classes=int(notes["num_classes"]),
                   vocab_size=len(vocab) if vocab else None, pad_id=vocab.index("<pad>") if vocab else 0,
                   generated=bool(notes.get("generated", False)), pixel_scale=scale)
    for split in SPLITS:
        path = data_dir / f"{split}.parquet"
        if not path.exists():
            raise DataError(f"{path}: missing; run the preprocess stage for {dataset}")
        table = pq.read_table(path)
        part = Split(example_id=table.column("example_id").to_numpy(), label=table.column("label").to_numpy())
        if kind == "pixels":
            values, offsets = _list_column(table, "pixels")
            width = int(offsets[1] - offsets[0]) if len(part) else 0
            if len(part) and not np.all(np.diff(offsets) == width):
                raise DataError(f"{path}: pixel rows have different lengths")
            part.pixels = values.reshape(len(part), width)
        else:
            part.values, part.offsets = _list_column(table, "input_ids")
            if kind == "token-pairs":
                part.values2, part.offsets2 = _list_column(table, "input_ids2")
        if len(part) and (part.label.min() < 0 or part.label.max() >= data.num_classes):
            raise DataError(f"{path}: labels outside 0..{data.num_classes - 1}")
        data.splits[split] = part
    return data


def pad_ragged(values: np.ndarray, offsets: np.ndarray, rows: np.ndarray, pad_id: int,
               length: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Gather ragged rows into ``(B, L)`` padded ids and their lengths, vectorised."""
    starts, lengths = offsets[rows], offsets[rows + 1] - offsets[rows]  # (B,), (B,)
    width = int(lengths.max(initial=0)) if length is None else length
    position = np.arange(width)[None, :]  # (1, L)
    valid = position < lengths[:, None]  # (B, L)
    gather = np.where(valid, starts[:, None] + position, 0)  # (B, L)
    ids = np.where(valid, values[gather] if values.size else pad_id, pad_id)  # (B, L)
    return ids, lengths


class LraClassifyTask(Task):
    name = "lra-classify"

    def load(self, data_dir: Path, run: RunSpec, settings: dict[str, Any]) -> LraData:
        return load_lra_folder(Path(data_dir))

    def build_model(self, data: LraData, run: RunSpec, settings: dict[str, Any]):
        model_cls = resolve_class(settings.get("model_class", MODEL_CLASS))
        config_cls = getattr(model_cls, "config_class", None)
        if config_cls is None:
            config_cls = getattr(importlib.import_module(model_cls.__module__), "SequenceClassifierConfig")
        known = {f.name for f in dataclasses.fields(config_cls)}
        overrides = dict(settings.get("model", {}))
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ConfigError(f"model settings {unknown} are not fields of {config_cls.__name__}; known: {sorted(known)}")
        tokens = data.input_kind != "pixels"
        shapes = {"d_input": data.vocab_size if tokens else 1, "vocab_size": data.vocab_size if tokens else None,
                  "n_tokens": data.vocab_size if tokens else None, "n_classes": data.num_classes,
                  "dual": data.input_kind == "token-pairs"}
        if "d_input" not in known and "vocab_size" not in known and "n_tokens" not in known:
            raise ConfigError(f"{config_cls.__name__} declares none of d_input / vocab_size / n_tokens")
        config = config_cls(**{**overrides, **{k: v for k, v in shapes.items() if k in known}})
        return model_cls(config)

    def num_train_examples(self, data: LraData) -> int:
        return len(data.splits["train"])

    def make_batch(self, data: LraData, split: str, indices) -> dict[str, Any]:
        import torch

        part = data.splits[split]
        rows = np.asarray(indices.cpu().numpy() if hasattr(indices, "cpu") else indices, dtype=np.int64)
        batch: dict[str, Any] = {
            "example_id": torch.from_numpy(part.example_id[rows]),
            "labels": torch.from_numpy(part.label[rows]),
        }
        if data.input_kind == "pixels":
            pixels = part.pixels[rows].astype(np.float32) / 255.0  # (B, L) in [0, 1]
            if data.pixel_scale == "cifar-gray":
                pixels = (pixels - IMAGE_MEAN) / IMAGE_STD
            batch["inputs"] = torch.from_numpy(pixels).unsqueeze(-1)  # (B, L, 1)
            batch["lengths"] = torch.full((len(rows),), pixels.shape[1], dtype=torch.long)
            batch["mask"] = torch.ones(pixels.shape, dtype=torch.bool)  # (B, L)
            return batch
        width = None
        if data.input_kind == "token-pairs":  # both documents padded to one common length (s4 collate)
            width = int(max((part.offsets[rows + 1] - part.offsets[rows]).max(initial=0),
                            (part.offsets2[rows + 1] - part.offsets2[rows]).max(initial=0)))
        ids, lengths = pad_ragged(part.values, part.offsets, rows, data.pad_id, width)  # (B, L), (B,)
        batch["inputs"] = torch.from_numpy(ids.astype(np.int64))
        batch["lengths"] = torch.from_numpy(lengths)
        batch["mask"] = torch.arange(ids.shape[1])[None, :] < batch["lengths"][:, None]  # (B, L)
        if data.input_kind == "token-pairs":
            ids2, lengths2 = pad_ragged(part.values2, part.offsets2, rows, data.pad_id, width)
            batch["inputs2"] = torch.from_numpy(ids2.astype(np.int64))
            batch["lengths2"] = torch.from_numpy(lengths2)
            batch["mask2"] = torch.arange(ids2.shape[1])[None, :] < batch["lengths2"][:, None]
        return batch

    @staticmethod
    def logits(model, batch: dict[str, Any]):
        """Forward pass with the interface described in the module docstring → (B, n_classes)."""
        if "inputs2" in batch:
            return model(batch["inputs"], lengths=batch["lengths"], inputs2=batch["inputs2"], lengths2=batch["lengths2"])
        return model(batch["inputs"], lengths=batch["lengths"])

    def training_loss(self, model, batch: dict[str, Any]):
        import torch.nn.functional as F

        return F.cross_entropy(self.logits(model, _to_device(batch, model)), batch["labels"].to(_device(model)))

    def _evaluate(self, model, data: LraData, split: str, batch_size: int):
        import torch
        import torch.nn.functional as F

        part = data.splits[split]
        was_training = model.training
        model.eval()
        outputs, losses = [], []
        with torch.no_grad():
            for start in range(0, len(part), batch_size):
                rows = torch.arange(start, min(start + batch_size, len(part)))
                batch = _to_device(self.make_batch(data, split, rows), model)
                logits = self.logits(model, batch).float()  # (B, C)
                losses.append(F.cross_entropy(logits, batch["labels"], reduction="sum").item())
                outputs.append(logits.cpu())
        model.train(was_training)
        logits = torch.cat(outputs) if outputs else torch.empty(0, data.num_classes)
        return logits, float(sum(losses) / max(len(part), 1))

    def validation_loss(self, model, data: LraData, settings: dict[str, Any]) -> float:
        return self._evaluate(model, data, "val", int(settings.get("eval_batch_size", 64)))[1]

    def predict(self, model, data: LraData, run: RunSpec, settings: dict[str, Any]):
        import pyarrow as pa

        logits, _ = self._evaluate(model, data, "test", int(settings.get("eval_batch_size", 64)))
        part = data.splits["test"]
        columns = {
            "example_id": pa.array(part.example_id, pa.int64()),
            "label": pa.array(part.label, pa.int64()),
            "predicted": pa.array(logits.argmax(dim=-1).numpy().astype(np.int64), pa.int64()),
        }
        if settings.get("store_logits", True):
            columns["logits"] = pa.array(logits.numpy().astype(np.float32).tolist(), pa.list_(pa.float32()))
        return pa.table(columns)

    def score(self, predictions, data: LraData, settings: dict[str, Any]) -> dict[str, float]:
        from replibench.metrics.lra import accuracy

        return {"accuracy": accuracy(labels=predictions.column("label").to_numpy(),
                                     predicted=predictions.column("predicted").to_numpy())}

    def protocol(self, data: LraData, settings: dict[str, Any]) -> dict[str, Any]:
        return {"dataset": data.dataset, "generated": data.generated, "input": data.input_kind,
                "num_classes": data.num_classes, "test_examples": len(data.splits["test"]),
                "metric": "accuracy (%) on the test split"}


def resolve_class(path: str):
    """``"package.module:Attr"`` → the attribute, imported lazily."""
    module_name, _, attribute = path.partition(":")
    if not attribute:
        raise ConfigError(f"model_class {path!r} must be written 'module:Class'")
    try:
        return getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        raise ConfigError(f"model_class {path!r} cannot be imported: {error}") from error


def _device(model):
    try:
        return next(model.parameters()).device
    except StopIteration:
        import torch

        return torch.device("cpu")


def _to_device(batch: dict[str, Any], model) -> dict[str, Any]:
    device = _device(model)
    return {key: value.to(device) if hasattr(value, "to") else value for key, value in batch.items()}
