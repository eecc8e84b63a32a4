"""Order-preserving process-parallel map, identical to a serial ``map``.

Per-structure work in the crystal pipeline (CIF parsing, StructureMatcher, CrystalNN fingerprints)
is pure Python and holds the GIL, so threads do not help; processes do. :func:`ordered_map` runs a
picklable top-level function over items in a ``spawn`` pool (no inherited locks or torch threads
from the parent) and returns results in input order, so a parallel run gives exactly the serial
run's output. ``workers <= 1`` runs in-process, which is also what tests use as the reference.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def default_chunksize(num_items: int, workers: int) -> int:
    """Items per task: about four chunks per worker, so a slow chunk does not stall the pool."""
    return max(1, num_items // (4 * max(1, workers)))


def ordered_map(
    function: Callable[[T], R],
    items: Sequence[T] | Iterable[T],
    *,
    workers: int,
    chunksize: int | None = None,
) -> list[R]:
    """``[function(x) for x in items]``, computed by ``workers`` processes, in input order.

    ``function`` must be a module-level function and items/results picklable (multiprocessing
    sends them between our own processes; nothing read from the network is unpickled).
    """
    items = list(items)
    if workers <= 1 or len(items) <= 1:
        return [function(item) for item in items]
    workers = min(workers, len(items))
    if chunksize is None:
        chunksize = default_chunksize(len(items), workers)
    context = multiprocessing.get_context("spawn")
    with context.Pool(processes=workers) as pool:
        return list(pool.imap(function, items, chunksize=chunksize))
