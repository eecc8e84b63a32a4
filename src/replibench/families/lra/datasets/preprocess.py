"""Preprocessing of the six LRA tasks into ``{split}.parquet`` + ``card.json`` + ``rejects.parquet``.

Each ``preprocess_*`` function takes explicit input paths (or generator parameters) and an output
folder; none decides a path itself. Tokenisation and splits follow the s4 code base (see
:mod:`replibench.families.lra.datasets.vocab` and :mod:`replibench.families.lra.datasets.tables`):

=========== ====================== ============================ ==========================
task        source                 tokens / pixels              splits
=========== ====================== ============================ ==========================
listops     release ``basic_*``    bracket rewrite, l_max 2048  release train/val/test
text        ``aclImdb_v1.tar.gz``  chars, min_freq 15, 4096     train / test; val = test
retrieval   release ``tsv_data``   chars, 4000 per document     train / eval / test
image       CIFAR-10 python        grayscale (PIL "L"), 1024    s4: 90/10 of train, test
pathfinder  release 32px hard      uint8 pixels, 1024           s4: 80/10/10, seed 42
path-x      release 128px hard     uint8 pixels, 16384          s4: 80/10/10, seed 42
=========== ====================== ============================ ==========================
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from replibench.data.checksum import sha256_file
from replibench.data.tables import Rejects
from replibench.families.lra.datasets import tables
from replibench.families.lra.datasets.readers import (
    decode_grayscale_png,
    metadata_sort_key,
    read_aan_tsv,
    read_cifar_batch,
    read_imdb,
    read_listops_tsv,
    read_pathfinder_metadata,
)
from replibench.families.lra.datasets.sources import (
    CIFAR10_ARCHIVE,
    CIFAR10_BATCH_MD5,
    CIFAR10_TRAIN_BATCHES,
    IMDB_ARCHIVE,
    LRA_RELEASE_URL,
    RELEASE_PREFIXES,
    iter_archive_members,
    iter_release_members,
)
from replibench.families.lra.datasets.vocab import L_MAX, MIN_FREQ, Vocabulary, char_tokens, listops_tokens
from replibench.errors import DataError

LICENSE_RELEASE = "Apache-2.0 (LRA release)"
PATHFINDER_RESOLUTION = {"pathfinder": 32, "path-x": 128}


def _archive_source(path: str | Path, url: str) -> dict[str, Any]:
    return {"name": Path(path).name, "url": url, "sha256": sha256_file(path)}


def _generated_source(generator: str, params: dict[str, Any], seed: int) -> dict[str, Any]:
    return {"name": generator, "url": None, "sha256": None, "params": params, "seed": seed}


# --- ListOps -----------------------------------------------------------------------------------
def write_listops(rows: dict[str, list[tuple[str, int]]], out: str | Path, *, dataset: str,
                  sources: list[dict], rejects: Rejects, generated: bool, notes: dict[str, Any]) -> dict:
    """Tokenise ``(source, target)`` rows per split (vocabulary from train) and write them."""
    l_max = L_MAX["listops"]
    tokens = {split: [listops_tokens(source)[: l_max - 1] for source, _ in rows[split]] for split in tables.SPLITS}
    vocab = Vocabulary.build(tokens["train"], min_freq=MIN_FREQ["listops"])
    built, next_id = {}, 0
    for split in tables.SPLITS:
        ids = [vocab.encode(seq, l_max=l_max) for seq in tokens[split]]
        example_ids = range(next_id, next_id + len(ids))
        next_id += len(ids)
        built[split] = tables.token_table(example_ids, ids, [target for _, target in rows[split]])
    return tables.write_dataset(
        out, dataset=dataset, tables=built, schema=tables.token_schema(), rejects=rejects, sources=sources,
        generated=generated, license=LICENSE_RELEASE, citation=tables.CITATION_LRA,
        notes={"vocab": list(vocab.tokens), "l_max": l_max, "num_classes": 10, "input": "tokens", **notes},
    )


def preprocess_listops_release(archive: str | Path, out: str | Path) -> dict:
    rejects = Rejects()
    texts: dict[str, tuple[str, str]] = {}
    for name, data in iter_release_members(archive, "listops"):
        split = Path(name).stem.removeprefix("basic_")
        if split in tables.SPLITS:
            texts[split] = (name, data.decode("utf-8"))
    missing = [split for split in tables.SPLITS if split not in texts]
    if missing:
        raise DataError(f"{archive}: no basic_{{{','.join(missing)}}}.tsv under {RELEASE_PREFIXES['listops']}")
    rows = {split: [(r.source, r.target) for r in read_listops_tsv(text, source=name, rejects=rejects)]
            for split, (name, text) in texts.items()}
    return write_listops(rows, out, dataset="listops", sources=[_archive_source(archive, LRA_RELEASE_URL)],
                         rejects=rejects, generated=False, notes={})


def preprocess_listops_generated(out: str | Path, *, config, seed: int) -> dict:
    """Generated ListOps (``config``: :class:`~replibench.families.lra.datasets.listops_gen.ListOpsConfig`)."""
    from replibench.families.lra.datasets.listops_gen import generate_listops

    rows = generate_listops(config, np.random.default_rng(seed))
    return write_listops(rows, out, dataset="listops-generated",
                         sources=[_generated_source("lra_listops_gen", config.as_dict(), seed)],
                         rejects=Rejects(), generated=True, notes={"generator": config.as_dict(), "seed": seed})


# --- Text (IMDB) -------------------------------------------------------------------------------
def write_text(members: Iterable[tuple[str, bytes]], out: str | Path, *, sources: list[dict],
               dataset: str = "text") -> dict:
    """IMDB reviews (``(name, bytes)`` of ``…/{train,test}/{pos,neg}/<id>_<rating>.txt``) → char
    tokens, vocabulary from train with min_freq 15; val is the test split (LRA and s4 both
    validate on the IMDB test set)."""
    rejects = Rejects()
    reviews = read_imdb(members, rejects=rejects)
    if not reviews["train"] or not reviews["test"]:
        raise DataError(f"{dataset}: found {len(reviews['train'])} train and {len(reviews['test'])} test reviews")
    l_max = L_MAX["text"]
    tokens = {split: [char_tokens(r.text)[: l_max - 1] for r in reviews[split]] for split in ("train", "test")}
    vocab = Vocabulary.build(tokens["train"], min_freq=MIN_FREQ["text"])
    train_ids = [vocab.encode(seq, l_max=l_max) for seq in tokens["train"]]
    test_ids = [vocab.encode(seq, l_max=l_max) for seq in tokens["test"]]
    n_train = len(train_ids)
    train = tables.token_table(range(n_train), train_ids, [r.label for r in reviews["train"]])
    test = tables.token_table(range(n_train, n_train + len(test_ids)), test_ids, [r.label for r in reviews["test"]])
    return tables.write_dataset(
        out, dataset=dataset, tables={"train": train, "val": test, "test": test}, schema=tables.token_schema(),
        rejects=rejects, sources=sources, generated=False,
        license="research use; no licence stated by the authors",
        citation="Maas et al., Learning Word Vectors for Sentiment Analysis, ACL 2011; " + tables.CITATION_LRA,
        notes={"vocab": list(vocab.tokens), "l_max": l_max, "min_freq": MIN_FREQ["text"], "num_classes": 2,
               "input": "tokens", "val_is_test": True,
               "review_ids": {s: [f"{r.review_id}_{r.rating}" for r in reviews[s]] for s in ("train", "test")}},
    )


def preprocess_text_archive(archive: str | Path, out: str | Path) -> dict:
    """From ``aclImdb_v1.tar.gz``, streaming only ``aclImdb/{train,test}/{pos,neg}/*.txt``."""
    def select(name: str) -> bool:
        parts = name.split("/")
        return len(parts) == 4 and parts[1] in ("train", "test") and parts[2] in ("pos", "neg")

    members = iter_archive_members(archive, select)
    return write_text(members, out, sources=[_archive_source(archive, IMDB_ARCHIVE.url)])


# --- Retrieval (AAN) ---------------------------------------------------------------------------
def preprocess_retrieval_release(archive: str | Path, out: str | Path) -> dict:
    rejects = Rejects()
    split_of = {"train": "train", "eval": "val", "test": "test"}
    rows: dict[str, list] = {}
    for name, data in iter_release_members(archive, "retrieval"):
        stem = Path(name).name.removeprefix("new_aan_pairs.").removesuffix(".tsv")
        if stem in split_of:
            rows[split_of[stem]] = read_aan_tsv(data.decode("utf-8"), source=name, rejects=rejects)
    missing = [s for s in tables.SPLITS if s not in rows]
    if missing:
        raise DataError(f"{archive}: AAN split files missing for {missing}")
    l_max = L_MAX["retrieval"]
    cut = {s: [(char_tokens(r.text1)[: l_max - 1], char_tokens(r.text2)[: l_max - 1]) for r in rows[s]]
           for s in tables.SPLITS}
    vocab = Vocabulary.build([a for a, _ in cut["train"]] + [b for _, b in cut["train"]], min_freq=1)
    built, next_id = {}, 0
    for split in tables.SPLITS:
        first = [vocab.encode(a, l_max=l_max) for a, _ in cut[split]]
        second = [vocab.encode(b, l_max=l_max) for _, b in cut[split]]
        built[split] = tables.pair_table(range(next_id, next_id + len(first)), first, second,
                                         [r.label for r in rows[split]])
        next_id += len(first)
    return tables.write_dataset(
        out, dataset="retrieval", tables=built, schema=tables.pair_schema(), rejects=rejects,
        sources=[_archive_source(archive, LRA_RELEASE_URL)], generated=False, license=LICENSE_RELEASE,
        citation="Radev et al., The ACL Anthology Network corpus, 2013; " + tables.CITATION_LRA,
        notes={"vocab": list(vocab.tokens), "l_max_per_document": l_max, "num_classes": 2, "input": "token-pairs"},
    )


# --- Image (CIFAR-10, grayscale) ---------------------------------------------------------------
def grayscale(images: np.ndarray) -> np.ndarray:
    """(N, 32, 32, 3) uint8 → (N, 32, 32) uint8 with PIL's ``convert("L")`` (ITU-R 601-2 luma),
    which is what torchvision's ``Grayscale`` applies in s4's CIFAR pipeline."""
    from PIL import Image

    return np.stack([np.asarray(Image.fromarray(image).convert("L")) for image in images])


def preprocess_image(archive: str | Path, out: str | Path) -> dict:
    wanted = set(CIFAR10_BATCH_MD5)
    batches: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for member, data in iter_archive_members(archive, lambda name: Path(name).name in wanted):
        name = Path(member).name
        digest = hashlib.md5(data).hexdigest()
        if digest != CIFAR10_BATCH_MD5[name]:
            raise DataError(f"{archive}: member {member} has md5 {digest}, expected {CIFAR10_BATCH_MD5[name]}")
        batches[name] = read_cifar_batch(data, source=f"{archive}:{member}")
    missing = sorted(wanted - set(batches))
    if missing:
        raise DataError(f"{archive}: CIFAR-10 batches missing: {missing}")
    train_images = grayscale(np.concatenate([batches[b][0] for b in CIFAR10_TRAIN_BATCHES]))
    train_labels = np.concatenate([batches[b][1] for b in CIFAR10_TRAIN_BATCHES])
    test_images, test_labels = grayscale(batches["test_batch"][0]), batches["test_batch"][1]
    train_idx, val_idx = tables.s4_random_split(len(train_labels), (1 - tables.CIFAR_VAL_FRACTION, tables.CIFAR_VAL_FRACTION))
    n = len(train_labels)
    built = {
        "train": tables.pixel_table(train_idx, train_images[train_idx], train_labels[train_idx]),
        "val": tables.pixel_table(val_idx, train_images[val_idx], train_labels[val_idx]),
        "test": tables.pixel_table(np.arange(n, n + len(test_labels)), test_images, test_labels),
    }
    return tables.write_dataset(
        out, dataset="image", tables=built, schema=tables.pixel_schema(), rejects=Rejects(),
        sources=[_archive_source(archive, CIFAR10_ARCHIVE.url)], generated=False,
        license=CIFAR10_ARCHIVE.license, citation="Krizhevsky, Learning Multiple Layers of Features from Tiny Images, 2009",
        notes={"resolution": 32, "num_classes": 10, "input": "pixels", "grayscale": "PIL convert('L')",
               "split": "s4 split_train_val(0.1), torch random_split seed 42"},
    )


# --- Pathfinder / Path-X ---------------------------------------------------------------------
def write_pathfinder(images: np.ndarray, labels: np.ndarray, out: str | Path, *, dataset: str, resolution: int,
                     rejects: Rejects, sources: list[dict], generated: bool, notes: dict[str, Any]) -> dict:
    """s4's 80/10/10 random split (seed 42) of images in source order, then write."""
    parts = tables.s4_random_split(len(labels), tables.PATHFINDER_SPLIT_FRACTIONS)
    built = {split: tables.pixel_table(idx, images[idx], labels[idx]) for split, idx in zip(tables.SPLITS, parts)}
    return tables.write_dataset(
        out, dataset=dataset, tables=built, schema=tables.pixel_schema(), rejects=rejects, sources=sources,
        generated=generated, license="MIT (generator); LRA release Apache-2.0",
        citation="Linsley et al., NeurIPS 2018; Kim et al., ICLR 2020; " + tables.CITATION_LRA,
        notes={"resolution": resolution, "num_classes": 2, "input": "pixels",
               "split": "s4 random_split 80/10/10 seed 42", **notes},
    )


def preprocess_pathfinder_release(archive: str | Path, out: str | Path, *, task: str = "pathfinder") -> dict:
    """Stream ``pathfinder{32,128}/curv_contour_length_14`` (Pathfinder / Path-X) from the release.

    Images are decoded as they stream past (all images of the set are held in memory, ~3.3 GB
    for Path-X); a PNG that is empty or does not decode, or a metadata line whose image is
    missing, is rejected with its reason. s4 would crash on such an image; if the hard set had
    one, our example count — and hence the seed-42 split — would differ from s4's (counted in the card).
    """
    resolution = PATHFINDER_RESOLUTION[task]
    prefix = RELEASE_PREFIXES[task][0]
    rejects = Rejects()
    metadata: dict[str, str] = {}
    decoded: dict[str, np.ndarray | None] = {}
    for name, data in iter_release_members(archive, task):
        relative = name[name.index(prefix) + len(prefix):]
        if relative.startswith("metadata/"):
            metadata[name] = data.decode("utf-8")
        elif relative.endswith(".png"):
            image, reason = decode_grayscale_png(data, resolution=resolution)
            decoded[relative] = image
            if image is None:
                rejects.add(source=name, row=1, reason=reason, raw=None)
    entries = []
    for name in sorted(metadata, key=metadata_sort_key):
        entries.extend(read_pathfinder_metadata(metadata[name], source=name, rejects=rejects))
    images, labels = [], []
    for entry in entries:
        if entry.image_path not in decoded:
            rejects.add(source=entry.metadata_file, row=entry.line, reason=f"image {entry.image_path} not in archive")
        elif decoded[entry.image_path] is not None:
            images.append(decoded[entry.image_path])
            labels.append(entry.label)
    if not images:
        raise DataError(f"{archive}: no usable images under {prefix}")
    return write_pathfinder(np.stack(images), np.asarray(labels, dtype=np.int64), out, dataset=task,
                            resolution=resolution, rejects=rejects,
                            sources=[_archive_source(archive, LRA_RELEASE_URL)], generated=False,
                            notes={"release_folder": prefix, "s4_compatible_count": len(rejects) == 0})


def preprocess_pathfinder_generated(out: str | Path, *, config, count: int, seed: int,
                                    dataset: str = "pathfinder-generated") -> dict:
    """Generated Pathfinder images (``config``: :class:`~.pathfinder_gen.PathfinderConfig`)."""
    from replibench.families.lra.datasets.pathfinder_gen import generate_pathfinder

    images, labels = generate_pathfinder(config, count, np.random.default_rng(seed))
    return write_pathfinder(images, labels, out, dataset=dataset, resolution=config.resolution, rejects=Rejects(),
                            sources=[_generated_source("lra_pathfinder_gen", config.as_dict(), seed)],
                            generated=True, notes={"generator": config.as_dict(), "seed": seed, "count": count})


# --- Shape-faithful stand-ins (rehearsal only) --------------------------------------------------
def preprocess_shaped_generated(out: str | Path, *, config, seed: int, dataset: str) -> dict:
    """Random examples at Text / Retrieval / Image's shapes (``config``:
    :class:`~.shaped_gen.ShapedConfig`): a rehearsal's data where the archive is not at hand."""
    from replibench.families.lra.datasets.shaped_gen import BYTE_VOCABULARY, SHAPES, generate_shaped

    kind, length, classes = SHAPES[config.task]
    arrays = generate_shaped(config, np.random.default_rng(seed))
    built, next_id = {}, 0
    for split in tables.SPLITS:
        part = arrays[split]
        ids = range(next_id, next_id + len(part["label"]))
        if kind == "pixels":
            built[split] = tables.pixel_table(np.asarray(ids), part["pixels"], part["label"])
        elif kind == "token-pairs":
            built[split] = tables.pair_table(ids, part["input_ids"].tolist(), part["input_ids2"].tolist(), part["label"])
        else:
            built[split] = tables.token_table(ids, part["input_ids"].tolist(), part["label"])
        next_id += len(part["label"])
    schema = {"tokens": tables.token_schema, "token-pairs": tables.pair_schema, "pixels": tables.pixel_schema}[kind]()
    notes: dict[str, Any] = {"num_classes": classes, "input": kind, "stands_in_for": config.task,
                             "generator": config.as_dict(), "seed": seed}
    if kind == "pixels":
        notes["resolution"] = int(round(length ** 0.5))
    else:
        notes.update({"vocab": list(BYTE_VOCABULARY.tokens), "l_max": length})
    return tables.write_dataset(
        out, dataset=dataset, tables=built, schema=schema, rejects=Rejects(),
        sources=[_generated_source("lra_shaped_stand_in", config.as_dict(), seed)], generated=True,
        license="generated (random examples)", citation=tables.CITATION_LRA, notes=notes)
