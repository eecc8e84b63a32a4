"""Shape-faithful stand-ins for LRA Text, Retrieval and Image, for the paper preset's rehearsal only.

Their archives (IMDB, the LRA release's AAN pairs, CIFAR-10) are not at hand offline, and a
rehearsal measures cost, not accuracy: what a step costs depends on the sequence length, the
vocabulary (embedding rows), the number of classes and the input kind, not on what the tokens
say. So each example here is uniformly random at the task's *longest* shape:

========== ================================ ============================ =========
task       input                            length                       classes
========== ================================ ============================ =========
text       tokens                           4,096 (l_max, ``<eos>`` last) 2
retrieval  token pairs                      4,000 per document           2
image      pixels (uint8, 32 × 32 gray)     1,024                         10
========== ================================ ============================ =========

Every sequence has the full length, so a stand-in step is an upper bound of a real one (s4 pads
a batch to its longest review; IMDB reviews are shorter on average). The vocabulary is the 256
byte values after s4's specials (``<pad>, <unk>, <eos>``): LRA's own byte-level vocabulary, and
at least as large as s4's IMDB characters seen ≥ 15 times or AAN's characters, so the embedding
is not undersized. Labels are uniform. Nothing trained on these is a result.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from replibench.families.lra.datasets.vocab import L_MAX, SPECIALS, Vocabulary

#: the tasks this generator stands in for → (input kind, length per sequence, classes)
SHAPES: dict[str, tuple[str, int, int]] = {
    "text": ("tokens", L_MAX["text"], 2),
    "retrieval": ("token-pairs", L_MAX["retrieval"], 2),
    "image": ("pixels", 32 * 32, 10),
}
#: byte-level characters after the specials (see the module docstring)
BYTE_VOCABULARY = Vocabulary(SPECIALS + tuple(chr(code) for code in range(256)))


@dataclass(frozen=True)
class ShapedConfig:
    """Which task's shape and how many examples per split."""

    task: str
    num_train: int
    num_val: int
    num_test: int

    def __post_init__(self) -> None:
        if self.task not in SHAPES:
            raise ValueError(f"shaped stand-in: task must be one of {sorted(SHAPES)}, got {self.task!r}")
        counts = (self.num_train, self.num_val, self.num_test)
        if min(counts) < 1:
            raise ValueError(f"shaped stand-in {self.task}: every split needs ≥ 1 example, got {counts}")

    def as_dict(self) -> dict:
        return asdict(self)


def random_token_ids(rng: np.random.Generator, count: int, length: int) -> np.ndarray:
    """(count, length) int32 ids of byte tokens, ``<eos>`` last (s4's encoding of a full-length text)."""
    first_byte = len(SPECIALS)
    ids = rng.integers(first_byte, len(BYTE_VOCABULARY), size=(count, length), dtype=np.int32)
    ids[:, -1] = BYTE_VOCABULARY.index["<eos>"]
    return ids


def generate_shaped(config: ShapedConfig, rng: np.random.Generator) -> dict[str, dict[str, np.ndarray]]:
    """split → arrays: ``input_ids`` (N, L) [+ ``input_ids2``] for token tasks, ``pixels``
    (N, 32, 32) uint8 for Image, and ``label`` (N,) int64."""
    kind, length, classes = SHAPES[config.task]
    out: dict[str, dict[str, np.ndarray]] = {}
    for split, count in (("train", config.num_train), ("val", config.num_val), ("test", config.num_test)):
        arrays: dict[str, np.ndarray] = {}
        if kind == "pixels":
            side = int(round(length ** 0.5))
            arrays["pixels"] = rng.integers(0, 256, size=(count, side, side), dtype=np.uint8)
        else:
            arrays["input_ids"] = random_token_ids(rng, count, length)
            if kind == "token-pairs":
                arrays["input_ids2"] = random_token_ids(rng, count, length)
        arrays["label"] = rng.integers(0, classes, size=count, dtype=np.int64)
        out[split] = arrays
    return out
