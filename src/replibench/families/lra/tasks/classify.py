"""``lra-classify``: sequence classification on the six Long Range Arena tasks.

Reads a dataset folder written by :mod:`replibench.families.lra.datasets.preprocess` and feeds the model
as the s4 code base does:

* token tasks (ListOps, Text): ids padded with ``<pad>`` to the longest sequence of the batch,
  with a boolean ``mask`` (True on real tokens, ``<eos>`` included); ``task.max_length`` truncates
  (the LRA Transformer's Text config reads 1,000 bytes where s4 reads 4,096);
* Retrieval: two documents per example, each padded to the longest document of the batch (both
  to a common length, as s4's collate does), passed as ``x`` and ``x2`` with their masks;
* pixel tasks (Image, Pathfinder, Path-X): for the SSMs float sequences ``(B, L, 1)``, Image
  normalised with s4's grayscale CIFAR statistics (mean 122.6/255, std 61/255),
  Pathfinder/Path-X scaled to [0, 1] (s4 ``center: false``); for the LRA Transformer (a model
  whose ``vocab_size`` is set) the 8-bit intensities as tokens ``(B, L)``, with LRA's padding
  mask ``token > 0`` (which, as in LRA's code, also hides black pixels from attention).

Model: the registry class of ``run.model`` (:class:`~replibench.families.lra.models.sequence_classifier.
SequenceClassifier` for every LRA model) built from ``settings["model"]`` — the family's preset —
with the data's shapes filled in (``vocab_size`` for tokens, ``d_input`` 1 for float pixels,
``n_classes``, ``dual`` for Retrieval); called as ``model(x, mask, x2, mask2)`` → logits
``(B, n_classes)``.

Metric: test accuracy in percent (:func:`replibench.families.lra.metrics.accuracy.accuracy`); averages over tasks
are :func:`replibench.families.lra.metrics.accuracy.lra_average` with a named convention (the family derives both).
Results on generated data carry ``data_origin: generated``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from replibench.errors import DataError
from replibench.runs import RunSpec
from replibench.families.task import Task

#: 8-bit pixel intensities: the LRA Transformer's embedding size on the image tasks
PIXEL_LEVELS = 256
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
    card_notes: dict[str, Any] = field(default_factory=dict)
    pixel_tokens: bool = False  # pixels as 8-bit tokens (LRA Transformer) instead of floats
    max_length: int | None = None  # truncate token sequences (per document) to this many tokens


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
                   generated=bool(notes.get("generated", False)), pixel_scale=scale,
                   card_notes={k: v for k, v in notes.items() if k not in ("vocab", "review_ids")})
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
               length: int | None = None, max_length: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Gather ragged rows into ``(B, L)`` padded ids and their lengths (each row truncated to
    its first ``max_length`` ids when given), vectorised."""
    starts, lengths = offsets[rows], offsets[rows + 1] - offsets[rows]  # (B,), (B,)
    if max_length is not None:
        lengths = np.minimum(lengths, max_length)
    width = int(lengths.max(initial=0)) if length is None else length
    position = np.arange(width)[None, :]  # (1, L)
    valid = position < lengths[:, None]  # (B, L)
    gather = np.where(valid, starts[:, None] + position, 0)  # (B, L)
    ids = np.where(valid, values[gather] if values.size else pad_id, pad_id)  # (B, L)
    return ids, lengths


class LraClassifyTask(Task):
    name = "lra-classify"
    score_file_help = "LRA classification: Parquet with example_id, predicted (class index) per test example"

    def load(self, data_dir: Path, run: RunSpec, settings: dict[str, Any]) -> LraData:
        data = load_lra_folder(Path(data_dir))
        task = settings.get("task", {})
        data.max_length = task.get("max_length")
        data.pixel_tokens = data.input_kind == "pixels" and settings.get("model", {}).get("vocab_size") is not None
        return data

    def build_model(self, data: LraData, run: RunSpec, settings: dict[str, Any]):
        from replibench.families.task import build_registered_model

        # facts of the data: classes, whether examples are pairs, the vocabulary (or one input
        # channel of raw pixels); the presets may state them too, but only with the same values
        facts: dict[str, Any] = {"n_classes": data.num_classes, "dual": data.input_kind == "token-pairs"}
        if data.input_kind != "pixels":
            facts["vocab_size"] = data.vocab_size
        elif data.pixel_tokens:
            facts["vocab_size"] = PIXEL_LEVELS  # LRA's 8-bit intensities as tokens
        else:
            facts["d_input"] = 1
        return build_registered_model(run.model, copy.deepcopy(settings.get("model", {})), **facts)

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
            if data.pixel_tokens:  # LRA: 8-bit intensities through an embedding, mask = token > 0
                tokens = torch.from_numpy(part.pixels[rows].astype(np.int64))  # (B, L)
                batch["inputs"], batch["mask"] = tokens, tokens > 0
                return batch
            pixels = part.pixels[rows].astype(np.float32) / 255.0  # (B, L) in [0, 1]
            if data.pixel_scale == "cifar-gray":
                pixels = (pixels - IMAGE_MEAN) / IMAGE_STD
            batch["inputs"] = torch.from_numpy(pixels).unsqueeze(-1)  # (B, L, 1); every position is real
            return batch
        width = None
        if data.input_kind == "token-pairs":  # both documents padded to one common length (s4 collate)
            width = int(max((part.offsets[rows + 1] - part.offsets[rows]).max(initial=0),
                            (part.offsets2[rows + 1] - part.offsets2[rows]).max(initial=0)))
            if data.max_length:
                width = min(width, data.max_length)
        ids, lengths = pad_ragged(part.values, part.offsets, rows, data.pad_id, width, data.max_length)
        batch["inputs"] = torch.from_numpy(ids.astype(np.int64))  # (B, L)
        batch["mask"] = torch.arange(ids.shape[1])[None, :] < torch.from_numpy(lengths)[:, None]  # (B, L)
        if data.input_kind == "token-pairs":
            ids2, lengths2 = pad_ragged(part.values2, part.offsets2, rows, data.pad_id, width, data.max_length)
            batch["inputs2"] = torch.from_numpy(ids2.astype(np.int64))
            batch["mask2"] = torch.arange(ids2.shape[1])[None, :] < torch.from_numpy(lengths2)[:, None]
        return batch

    @staticmethod
    def logits(model, batch: dict[str, Any]):
        """``model(x, mask, x2, mask2)`` (SequenceClassifier's interface) → (B, n_classes)."""
        return model(batch["inputs"], batch.get("mask"), batch.get("inputs2"), batch.get("mask2"))

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
        return self._evaluate(model, data, "val", eval_batch_size(settings))[1]

    def predict(self, model, data: LraData, run: RunSpec, settings: dict[str, Any]):
        import pyarrow as pa

        logits, _ = self._evaluate(model, data, "test", eval_batch_size(settings))
        part = data.splits["test"]
        return pa.table({
            "example_id": pa.array(part.example_id, pa.int64()),
            "label": pa.array(part.label, pa.int64()),
            "predicted": pa.array(logits.argmax(dim=-1).numpy().astype(np.int64), pa.int64()),
            "logits": pa.array(logits.numpy().astype(np.float32).tolist(), pa.list_(pa.float32())),
        })

    def add_score_file_arguments(self, parser) -> None:
        from replibench.families.lra.byo import add_classify_arguments

        add_classify_arguments(parser)

    def score_file(self, options: dict[str, Any]) -> dict[str, Any]:
        from replibench.families.lra.byo import score_classification_file

        return score_classification_file(**options)

    def score(self, predictions, data: LraData, settings: dict[str, Any]) -> dict[str, float]:
        from replibench.families.lra.metrics.accuracy import accuracy

        return {"accuracy": accuracy(labels=predictions.column("label").to_numpy(),
                                     predicted=predictions.column("predicted").to_numpy())}

    def metric_info(self) -> dict[str, Any]:
        from replibench.families.lra.metrics.accuracy import METRICS

        return {"accuracy": METRICS["accuracy"]}

    def protocol(self, data: LraData, settings: dict[str, Any]) -> dict[str, Any]:
        notes = data.card_notes
        facts = {
            "data_origin": "generated" if data.generated else "official",
            "dataset": data.dataset, "input": data.input_kind, "num_classes": data.num_classes,
            "test_examples": len(data.splits["test"]), "test_batch_size": eval_batch_size(settings),
            "split": notes.get("split") or ("generated train, val, test in generation order" if data.generated
                                             else "IMDB train / test, validation = test (LRA, s4)"
                                             if notes.get("val_is_test") else "release train/val/test files"),
            "metric": "accuracy (%) on the test split",
        }
        if data.input_kind == "pixels":
            facts["pixel_encoding"] = ("8-bit tokens, attention mask token > 0 (LRA)" if data.pixel_tokens else
                                       "float, CIFAR grayscale normalised (s4)" if data.pixel_scale == "cifar-gray"
                                       else "float in [0, 1] (s4 center: false)")
        else:
            facts["max_length"] = data.max_length or notes.get("l_max") or notes.get("l_max_per_document")
        if notes.get("val_is_test"):
            facts["val_is_test"] = True
        if data.generated:
            facts["generator"] = notes.get("generator")
            facts["generator_seed"] = notes.get("seed")
        return facts


def eval_batch_size(settings: dict[str, Any]) -> int:
    return int(settings.get("task", {}).get("eval_batch_size", 64))


def _device(model):
    try:
        return next(model.parameters()).device
    except StopIteration:
        import torch

        return torch.device("cpu")


def _to_device(batch: dict[str, Any], model) -> dict[str, Any]:
    device = _device(model)
    return {key: value.to(device) if hasattr(value, "to") else value for key, value in batch.items()}


LRA_CLASSIFY = LraClassifyTask()
