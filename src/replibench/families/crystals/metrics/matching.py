"""Match rate and RMSE (CDVAE reconstruction / DiffCSP, CrysBFN crystal structure prediction).

For each test crystal: if the prediction passes the convention's gate, ``StructureMatcher(stol=0.5,
ltol=0.3, angle_tol=10).get_rms_dist(pred, truth)[0]`` — the RMS site displacement divided by
``(V / N) ** (1/3)`` (V the volume of the average of the two volume-equalised lattices, N sites):
a dimensionless number. ``None`` (no match) or an exception → unmatched.

- match rate (%) = matched test crystals / all test crystals × 100;
- RMSE = mean of the normalised RMS over matched crystals only (unmatched do not enter);
- k samples: a test crystal is matched if any of its samples is; its RMS is the smallest.

Exact pre-filter: ``get_rms_dist`` can only match crystals with the same fractional composition
(the site mapping is species-consistent and complete), so unequal compositions skip the matcher.

Bounded work: a degenerate cell (a length of 1e9 Å) keeps pymatgen's Niggli reduction inside
compiled code for minutes, where no Python signal can stop it. Cells longer than
:data:`MAX_CELL_LENGTH_A` are refused before matching (:func:`absurd_cell`), and every match runs in
a forked child process (:func:`bounded_rms`) that is killed after :data:`MATCH_TIME_LIMIT_S`; a
killed match counts as unmatched and is reported (``matcher_timeouts``), like ``matcher_errors``.
"""

from __future__ import annotations

import os
import select
import signal
import time
import warnings
from collections.abc import Sequence
from functools import lru_cache

#: longest lattice vector (Å) a crystal may have to be matched or fingerprinted: 1,000 Å is ~50×
#: the longest cell of MP-20/Perov-5/Carbon-24 (their cells hold at most 20-24 atoms)
MAX_CELL_LENGTH_A = 1000.0
#: wall-clock limit (s) for matching one predicted structure against its test crystal; typical
#: matches take milliseconds to a second
MATCH_TIME_LIMIT_S = 60.0

from replibench.families.crystals.metrics.conventions import STRUCTURE_MATCHER_TOLERANCES


@lru_cache(maxsize=1)
def structure_matcher():
    """pymatgen ``StructureMatcher`` with the papers' tolerances, other arguments at their defaults."""
    from pymatgen.analysis.structure_matcher import StructureMatcher

    return StructureMatcher(**STRUCTURE_MATCHER_TOLERANCES)


def reset_matcher_cache() -> None:
    """Empty pymatgen's process-wide cache of reduced structures before an independent job.

    ``StructureMatcher._get_reduced_istructure`` is an ``lru_cache`` keyed by structure equality
    *within tolerance*, so a structure matched earlier (e.g. the Niggli-reduced twin of a raw test
    crystal) can stand in for the current one and shift the RMS in the last digits: results would
    depend on what the process did before. Clearing it per test crystal makes every result a pure
    function of its inputs, so any split of the work over processes gives identical numbers.
    """
    from pymatgen.analysis.structure_matcher import StructureMatcher

    cached = getattr(StructureMatcher, "_get_reduced_istructure", None)
    if cached is not None and hasattr(cached, "cache_clear"):
        cached.cache_clear()


def same_fractional_composition(first, second) -> bool:
    """True when two structures have equal reduced compositions (the matcher's necessary condition)."""
    return first.composition.reduced_composition == second.composition.reduced_composition


def normalised_rms(*, prediction, truth) -> tuple[float | None, bool]:
    """(normalised RMS or ``None`` when unmatched, whether the matcher raised).

    Dimensionless: RMS displacement / (V/N)^(1/3), pymatgen's ``get_rms_dist(pred, truth)[0]``.
    """
    if not same_fractional_composition(prediction, truth):
        return None, False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = structure_matcher().get_rms_dist(prediction, truth)
    except Exception:
        return None, True
    return (None if result is None else float(result[0])), False


def absurd_cell(structure) -> str | None:
    """Why ``structure``'s cell is too degenerate to be worked on (a lattice vector longer than
    :data:`MAX_CELL_LENGTH_A` Å), or ``None`` when it is not."""
    longest = max(structure.lattice.abc)
    if not longest <= MAX_CELL_LENGTH_A:  # also catches NaN
        return f"absurd_cell: lattice length {longest:.6g} Å > {MAX_CELL_LENGTH_A:g} Å"
    return None


def _format(rms: float | None, raised: bool) -> bytes:
    return (b"error" if raised else b"none" if rms is None else b"ok " + repr(rms).encode()) + b"\n"


def _parse(line: bytes) -> tuple[float | None, str]:
    if line.startswith(b"ok "):
        return float(line[3:]), "ok"
    return None, "error" if line == b"error" else "ok"


def _child_matches(write_fd: int, predictions: Sequence, truth) -> None:
    """In the forked child: one line per prediction, then exit without running the parent's cleanup."""
    try:
        for prediction in predictions:
            os.write(write_fd, _format(*normalised_rms(prediction=prediction, truth=truth)))
    finally:
        os._exit(0)


def bounded_rms(predictions: Sequence, truth, *, time_limit_s: float = MATCH_TIME_LIMIT_S
                ) -> list[tuple[float | None, str]]:
    """:func:`normalised_rms` of each prediction against ``truth``, each bounded by ``time_limit_s``.

    Returns ``(rms or None, status)`` per prediction, status ``"ok"``, ``"error"`` (the matcher
    raised) or ``"timeout"`` (killed after ``time_limit_s`` seconds; counts as unmatched). The
    matches run in one forked child per call (a fresh one after a timeout), so compiled code that
    ignores signals can still be stopped; the numbers equal an in-process run's. Without
    ``os.fork`` the matches run in-process, unbounded.
    """
    if not hasattr(os, "fork"):
        return [(rms, "error" if raised else "ok")
                for rms, raised in (normalised_rms(prediction=p, truth=truth) for p in predictions)]
    if not predictions:
        return []
    structure_matcher()  # built once here, inherited by every child
    results: list[tuple[float | None, str]] = []
    while len(results) < len(predictions):
        remaining = predictions[len(results):]
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_fd)
            _child_matches(write_fd, remaining, truth)
        os.close(write_fd)
        buffer = b""
        try:
            while len(results) < len(predictions):
                deadline = time.monotonic() + time_limit_s
                while b"\n" not in buffer:
                    ready, _, _ = select.select([read_fd], [], [], max(0.0, deadline - time.monotonic()))
                    chunk = os.read(read_fd, 4096) if ready else None
                    if not chunk:  # timed out (None) or the child died (b"")
                        break
                    buffer += chunk
                if b"\n" not in buffer:
                    results.append((None, "timeout" if chunk is None else "error"))
                    break
                line, buffer = buffer.split(b"\n", 1)
                results.append(_parse(line))
        finally:
            os.close(read_fd)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.waitpid(pid, 0)
    return results


def best_of_samples(*, rms_per_sample: Sequence[float | None]) -> float | None:
    """Smallest RMS among matched samples of one test crystal; ``None`` if none matched."""
    matched = [value for value in rms_per_sample if value is not None]
    return min(matched) if matched else None


def match_rate_and_rmse(*, rms_per_truth: Sequence[float | None]) -> dict[str, float | int | None]:
    """Aggregate per-test-crystal results: ``match_rate`` (%), ``rmse`` (dimensionless, matched only).

    ``rmse`` is ``None`` when nothing matched (the papers' ``mean`` of an empty array is NaN).
    """
    total = len(rms_per_truth)
    if total == 0:
        raise ValueError("match rate of an empty test set is undefined")
    matched = [value for value in rms_per_truth if value is not None]
    return {
        "match_rate": 100.0 * len(matched) / total,
        "rmse": (sum(matched) / len(matched)) if matched else None,
        "num_matched": len(matched),
        "num_truth": total,
    }
