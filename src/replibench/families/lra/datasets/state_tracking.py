"""Formal-language state-tracking tasks of Grazzi et al. (ICLR 2025), in the token layout of the
xLSTM formal-language code their experiments use (NX-AI/xlstm ``experiments/data/formal_language``
and automl/unlocking_state_tracking): a causal LM reads the sequence and its output at the last
input position is scored against one answer token.

* ``parity`` (vocab 3: 0 pad, 1/2 = bits 0/1): a sequence of total size ``s`` holds ``s - 1``
  random bits; the answer is ``1 + (number of ones mod 2)``.
* ``mod-arithmetic`` (no brackets; vocab 10: 0 pad, 1 ``+``, 2 ``-``, 3 ``*``, 4 ``=``, 5–9 the
  numbers 0–4): odd size ``s``; numbers and operators alternate, ``=`` at ``s - 2``; the answer is the
  value mod 5 with ``*`` binding tighter than ``+``/``-``.
* ``mod-arithmetic-brackets`` (numbers 0–4 are ids 0–4, then ``+ - * ( ) =`` and pad): a random
  bracketed expression of ``s - 3`` tokens built recursively with ``+``/``-`` (the unlocking repo's
  generator, ``mult=False``), then ``=``; answer = value mod 5. The modulus 5 is an assumption
  (Delétang et al.'s; the paper's vocab_size for this task is not in the sources we could read).

Train sizes 3–40, validation/test sizes 40–256 (paper §5.1). Every draw comes from a
``numpy.random.Generator``. The stored row is the *input* (answer removed) and the answer token.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from replibench.data.tables import Rejects, write_data_card, write_parquet_atomic

TASKS = ("parity", "mod-arithmetic", "mod-arithmetic-brackets")
MODULUS = 5
#: (vocab size, first answer token, number of answer classes) per task
TASK_TOKENS: dict[str, tuple[int, int, int]] = {
    "parity": (3, 1, 2),
    "mod-arithmetic": (10, 5, MODULUS),
    "mod-arithmetic-brackets": (MODULUS + 7, 0, MODULUS),
}
TRAIN_SIZES = (3, 40)  # inclusive, paper §5.1
TEST_SIZES = (40, 256)


@dataclass(frozen=True)
class StateTrackingConfig:
    """Sizes of the generated splits; the paper's are 5,120,000 / 8,192 / 8,192."""

    task: str = "parity"
    num_train: int = 5_120_000
    num_val: int = 8_192
    num_test: int = 8_192
    train_sizes: tuple[int, int] = TRAIN_SIZES
    test_sizes: tuple[int, int] = TEST_SIZES
    #: training sizes are drawn from ``train_sizes`` with P(size) ∝ size^(-power): 0 is uniform
    #: (the paper, the xLSTM generator); > 0 favours short sequences (a CPU-budget deviation,
    #: see draw_sizes). Validation/test sizes are always uniform.
    train_size_power: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def parity_example(rng: np.random.Generator, size: int) -> tuple[list[int], int]:
    bits = rng.integers(0, 2, size=size - 1)
    return (bits + 1).tolist(), int(bits.sum() % 2) + 1


def evaluate_no_brackets(numbers: list[int], operators: list[str]) -> int:
    """Left-to-right terms, ``*`` first, then ``+``/``-``; mod :data:`MODULUS`."""
    total, term, sign = 0, numbers[0], 1
    for op, number in zip(operators, numbers[1:]):
        if op == "*":
            term *= number
        else:
            total += sign * term
            term, sign = number, (-1 if op == "-" else 1)
    return (total + sign * term) % MODULUS


def mod_arithmetic_example(rng: np.random.Generator, size: int) -> tuple[list[int], int]:
    size = size if size % 2 == 1 else size - 1  # xLSTM sizes are odd: 2k - 1
    count = (size - 1) // 2  # numbers before "="
    numbers = rng.integers(0, MODULUS, size=count).tolist()
    ops = [("+", "-", "*")[i] for i in rng.integers(0, 3, size=count - 1)]
    tokens: list[int] = [numbers[0] + 5]
    for op, number in zip(ops, numbers[1:]):
        tokens += [{"+": 1, "-": 2, "*": 3}[op], number + 5]
    tokens.append(4)  # "="
    return tokens, evaluate_no_brackets(numbers, ops) + 5


def _bracket_expression(rng: np.random.Generator, length: int) -> tuple[list[str], int]:
    if length < 5:
        value = int(rng.integers(MODULUS))
        forms = {1: ([str(value)], value), 2: (["-", str(value)], -value % MODULUS),
                 3: (["(", str(value), ")"], value), 4: (["(", "-", str(value), ")"], -value % MODULUS)}
        return forms[length]
    left_length = int(rng.integers(1, length - 3))
    left, left_value = _bracket_expression(rng, left_length)
    right, right_value = _bracket_expression(rng, length - left_length - 3)
    if int(rng.integers(0, 2)) == 0:
        return ["(", *left, "+", *right, ")"], (left_value + right_value) % MODULUS
    return ["(", *left, "-", *right, ")"], (left_value - right_value) % MODULUS


def bracket_vocabulary() -> dict[str, int]:
    symbols = ["+", "-", "*", "(", ")", "=", "[PAD]"]
    return {**{str(n): n for n in range(MODULUS)}, **{s: MODULUS + i for i, s in enumerate(symbols)}}


def mod_arithmetic_brackets_example(rng: np.random.Generator, size: int) -> tuple[list[int], int]:
    size = max(size, 5)
    tokens, value = _bracket_expression(rng, size - 3)
    vocab = bracket_vocabulary()
    return [vocab[t] for t in tokens] + [vocab["="]], value


EXAMPLE_MAKERS = {"parity": parity_example, "mod-arithmetic": mod_arithmetic_example,
                  "mod-arithmetic-brackets": mod_arithmetic_brackets_example}


def draw_sizes(count: int, sizes: tuple[int, int], rng: np.random.Generator, power: float = 0.0) -> np.ndarray:
    """``count`` sizes in ``[sizes[0], sizes[1]]`` (inclusive) with P(s) ∝ s^(-power).

    ``power = 0`` is the paper's uniform draw. Why a power law is offered at all: at the start of
    training only the shortest sequences carry gradient signal about parity (for a sequence of
    n bits the signal scales like the n-th power of a small number), so with uniform sizes
    3–40 the 2-bit sequences (1/38 of the data) drive learning and the paper needs 20k steps of
    batch 256; a power law keeps the same support but makes short sequences common.
    """
    low, high = sizes
    if power == 0:
        return rng.integers(low, high + 1, size=count)
    support = np.arange(low, high + 1)
    weights = support.astype(float) ** (-float(power))
    return rng.choice(support, size=count, p=weights / weights.sum())


def generate_split(task: str, count: int, sizes: tuple[int, int], rng: np.random.Generator,
                   power: float = 0.0):
    """``(inputs, answer tokens)`` for ``count`` examples with sizes drawn from ``sizes``."""
    make = EXAMPLE_MAKERS[task]
    drawn = draw_sizes(count, sizes, rng, power)
    pairs = [make(rng, int(size)) for size in drawn]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def table_schema():
    import pyarrow as pa

    return pa.schema([
        pa.field("example_id", pa.int64(), nullable=False),
        pa.field("input_ids", pa.list_(pa.int32()), nullable=False),
        pa.field("length", pa.int32(), nullable=False),
        pa.field("target", pa.int32(), nullable=False),  # answer token id
        pa.field("label", pa.int64(), nullable=False),  # answer class 0..C-1
    ])


def preprocess_state_tracking(out: str | Path, *, config: StateTrackingConfig, seed: int) -> dict:
    """Generate train/val/test and write Parquet + card (``generated: true``) + empty rejects."""
    import pyarrow as pa

    if config.task not in TASKS:
        raise ValueError(f"unknown state-tracking task {config.task!r}; expected one of {TASKS}")
    vocab_size, first_answer, num_classes = TASK_TOKENS[config.task]
    rng = np.random.default_rng(seed)
    out = Path(out)
    rows, next_id = {}, 0
    for split, count, sizes, power in (("train", config.num_train, config.train_sizes, config.train_size_power),
                                       ("val", config.num_val, config.test_sizes, 0.0),
                                       ("test", config.num_test, config.test_sizes, 0.0)):
        inputs, targets = generate_split(config.task, count, sizes, rng, power)
        table = pa.table({
            "example_id": pa.array(range(next_id, next_id + count), pa.int64()),
            "input_ids": pa.array(inputs, pa.list_(pa.int32())),
            "length": pa.array([len(x) for x in inputs], pa.int32()),
            "target": pa.array(targets, pa.int32()),
            "label": pa.array([t - first_answer for t in targets], pa.int64()),
        })
        next_id += count
        write_parquet_atomic(table, out / f"{split}.parquet",
                             schema=table_schema().with_metadata({b"replibench.generated": b"true"}))
        rows[split] = count
    Rejects().write(out / "rejects.parquet")
    return write_data_card(
        out / "card.json", dataset=config.task, family="lra",
        sources=[{"name": "replibench.families.lra.datasets.state_tracking", "url": None, "sha256": None,
                  "params": config.as_dict(), "seed": seed}],
        rows=rows, rejected_rows=0, license="generated",
        citation="Grazzi et al., Unlocking State-Tracking in Linear RNNs Through Negative Eigenvalues, ICLR 2025",
        notes={"generated": True, "task": config.task, "vocab_size": vocab_size, "first_answer_token": first_answer,
               "num_classes": num_classes, **config.as_dict()},
    )
