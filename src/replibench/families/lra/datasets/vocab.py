"""Tokenisation of the LRA text-like tasks exactly as the s4 code base does it.

s4 (``src/dataloaders/lra.py`` @ e757cef) tokenises ListOps with :func:`listops_tokens` (LRA's
post-2021-03-04 rule: drop ``(`` and ``)``, rename ``]`` to ``X``, split on whitespace) and Text /
Retrieval character by character (``list(text)``); it truncates to ``l_max - 1`` tokens, appends
``<eos>`` and builds the vocabulary on the training split with torchtext's
``build_vocab_from_iterator``: specials ``<pad>, <unk>, <eos>`` first, then every token seen at
least ``min_freq`` times, most frequent first, ties in lexicographic order. Unknown tokens map to
``<unk>``. :class:`Vocabulary` reproduces that ordering without torchtext.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property

PAD, UNK, EOS = "<pad>", "<unk>", "<eos>"
SPECIALS: tuple[str, ...] = (PAD, UNK, EOS)

#: total token budget per sequence (``l_max``) in s4's dataset defaults/configs; Retrieval's is
#: per document (two documents of 4,000 each)
L_MAX: dict[str, int] = {"listops": 2048, "text": 4096, "retrieval": 4000}
#: IMDB character vocabulary keeps characters seen at least this often in train (s4 default)
MIN_FREQ: dict[str, int] = {"listops": 1, "text": 15, "retrieval": 1}


def listops_tokens(source: str) -> list[str]:
    """ListOps source → tokens: ``(``/``)`` deleted, ``]`` renamed ``X``, whitespace split."""
    return source.translate({ord("]"): ord("X"), ord("("): None, ord(")"): None}).split()


def char_tokens(text: str) -> list[str]:
    """Text/Retrieval are character level: one token per Unicode code point."""
    return list(text)


@dataclass(frozen=True)
class Vocabulary:
    """Token ↔ id map; ids are positions in :attr:`tokens` (specials first)."""

    tokens: tuple[str, ...]

    @classmethod
    def build(cls, sequences: Iterable[Sequence[str]], *, min_freq: int = 1) -> "Vocabulary":
        """torchtext ordering: specials, then by descending count, ties by token string."""
        counts: Counter[str] = Counter()
        for sequence in sequences:
            counts.update(sequence)
        kept = [(token, n) for token, n in counts.items() if n >= min_freq and token not in SPECIALS]
        kept.sort(key=lambda item: (-item[1], item[0]))
        return cls(SPECIALS + tuple(token for token, _ in kept))

    def __len__(self) -> int:
        return len(self.tokens)

    @cached_property
    def index(self) -> dict[str, int]:
        return {token: i for i, token in enumerate(self.tokens)}

    @property
    def pad_id(self) -> int:
        return self.tokens.index(PAD)

    def encode(self, tokens: Sequence[str], *, l_max: int) -> list[int]:
        """Truncate to ``l_max - 1`` tokens, append ``<eos>``, map unknown tokens to ``<unk>``."""
        if l_max < 2:
            raise ValueError(f"l_max must leave room for <eos>, got {l_max}")
        index = self.index
        unk = index[UNK]
        ids = [index.get(token, unk) for token in tokens[: l_max - 1]]
        ids.append(index[EOS])
        return ids
