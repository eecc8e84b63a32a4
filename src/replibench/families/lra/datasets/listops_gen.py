"""ListOps generator and evaluator, re-implemented from LRA's ``lra_benchmarks/data/listops.py``.

Algorithm (Tay et al. 2021; Nangia & Bowman 2018): a tree is grown from depth 1. Below
``max_depth`` a node is a leaf — a uniform digit 0–9 — with probability ``1 - OPERATOR_P`` (0.75),
otherwise an operator node; at ``max_depth`` a leaf is forced. An operator node draws its number of
children uniformly from ``2..max_args`` (each grown one level deeper) and its operator uniformly
from MIN, MAX, MED, SM (FIRST/LAST exist upstream but are disabled). A tree's length counts
digits as 1 and each operator as 2 (its ``[OP`` and its ``]``); the serialisation's round brackets
do not count. Trees are kept when ``min_length < length < max_length`` (strict) and duplicates are
removed. Semantics: MED is ``int(numpy.median(args))`` (x.5 truncated), SM is the sum modulo 10.

Serialisation: the left-nested binary form upstream writes, e.g. ``[MAX 2 9 ]`` →
``( ( ( [MAX 2 ) 9 ) ] )``.

Differences from upstream, by necessity: upstream draws from Python's unseeded ``random`` and
splits train/val/test in ``set`` iteration order, so its files are not reproducible; here every
draw comes from one ``numpy.random.Generator`` and examples are split in generation order. The
data is statistically equivalent, not byte-identical to ``listops-1000``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Union

import numpy as np

MIN, MAX, MED, SUM_MOD, END = "[MIN", "[MAX", "[MED", "[SM", "]"
OPERATORS: tuple[str, ...] = (MIN, MAX, MED, SUM_MOD)
#: probability that a node above max_depth is an operator (upstream VALUE_P = 0.25: leaf iff u > 0.25)
OPERATOR_P = 0.25

Tree = Union[int, tuple]  # a digit, or (operator, [children])


@dataclass(frozen=True)
class ListOpsConfig:
    """Generator parameters; defaults are LRA's ``listops.py`` flags (the released task)."""

    max_depth: int = 10
    max_args: int = 10
    min_length: int = 500  # exclusive
    max_length: int = 2000  # exclusive
    num_train: int = 96_000
    num_val: int = 2_000
    num_test: int = 2_000

    def as_dict(self) -> dict:
        return asdict(self)


def sample_tree(rng: np.random.Generator, depth: int, max_depth: int, max_args: int,
                budget: int | None = None) -> tuple[Tree, int]:
    """One random tree and its length (digits 1, operators 2).

    With ``budget``, growth stops as soon as the length reaches it and ``(None, length)`` comes
    back: such a tree would be rejected by the length window anyway, so the accepted trees have
    exactly the upstream distribution while huge trees cost nothing.
    """
    if depth >= max_depth or rng.random() >= OPERATOR_P:
        return int(rng.integers(10)), 1
    num_children = int(rng.integers(2, max_args + 1))
    children = []
    length = 2
    for _ in range(num_children):
        remaining = None if budget is None else budget - length
        child, child_length = sample_tree(rng, depth + 1, max_depth, max_args, remaining)
        length += child_length
        if child is None or (budget is not None and length >= budget):
            return None, length
        children.append(child)
    operator = OPERATORS[int(rng.integers(len(OPERATORS)))]
    return (operator, children), length


def evaluate(tree: Tree) -> int:
    """Value 0–9 of a tree; nested lists are evaluated first."""
    if isinstance(tree, int):
        return tree
    operator, children = tree
    values = [evaluate(child) for child in children]
    if operator == MIN:
        return min(values)
    if operator == MAX:
        return max(values)
    if operator == MED:
        return int(np.median(values))
    if operator == SUM_MOD:
        return sum(values) % 10
    raise ValueError(f"unknown ListOps operator {operator!r}")


def to_source(tree: Tree) -> str:
    """Upstream serialisation: ``( ( [OP a ) b ) … ] )`` — left-nested pairs in round brackets."""
    if isinstance(tree, int):
        return str(tree)
    operator, children = tree
    text = f"( {operator} {to_source(children[0])} )"
    for child in children[1:]:
        text = f"( {text} {to_source(child)} )"
    return f"( {text} {END} )"


def parse_source(source: str) -> Tree:
    """Inverse of :func:`to_source` on the bracket-free token stream (``[OP`` … ``]``)."""
    tokens = source.replace("(", " ").replace(")", " ").split()
    position = 0

    def parse() -> Tree:
        nonlocal position
        token = tokens[position]
        position += 1
        if token in OPERATORS:
            children = []
            while tokens[position] != END:
                children.append(parse())
            position += 1
            return (token, children)
        if token.isdigit() and len(token) == 1:
            return int(token)
        raise ValueError(f"unexpected ListOps token {token!r}")

    tree = parse()
    if position != len(tokens):
        raise ValueError(f"trailing tokens after a complete expression: {tokens[position:][:5]}")
    return tree


def token_length(tree: Tree) -> int:
    """Length as the generator counts it (digits 1, operators 2)."""
    if isinstance(tree, int):
        return 1
    return 2 + sum(token_length(child) for child in tree[1])


def generate_listops(config: ListOpsConfig, rng: np.random.Generator) -> dict[str, list[tuple[str, int]]]:
    """``{"train"|"val"|"test": [(source, target), ...]}`` — unique sources, lengths in the window."""
    total = config.num_train + config.num_val + config.num_test
    seen: set[str] = set()
    examples: list[tuple[str, int]] = []
    while len(examples) < total:
        tree, length = sample_tree(rng, 1, config.max_depth, config.max_args, config.max_length)
        if tree is None or not config.min_length < length < config.max_length:
            continue
        source = to_source(tree)
        if source in seen:
            continue
        seen.add(source)
        examples.append((source, evaluate(tree)))
    val_end = config.num_train + config.num_val
    return {"train": examples[: config.num_train], "val": examples[config.num_train:val_end],
            "test": examples[val_end:]}


def label_histogram(targets: Sequence[int]) -> np.ndarray:
    """Counts of each class 0–9 (for data cards and sanity checks)."""
    return np.bincount(np.asarray(targets, dtype=np.int64), minlength=10)
