"""Issue 12 item 8: a degenerate crystal cannot hang scoring.

A cell length of 1e9 Å kept pymatgen's Niggli reduction (inside ``get_rms_dist``, in compiled
code no Python signal interrupts) busy for over 180 s. Absurd cells are refused before any work
and counted (``absurd_cells``); every match runs in a forked child that is killed after the
per-structure time limit and counted (``matcher_timeouts``), like ``matcher_errors``.
"""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

pytest.importorskip("pymatgen")

from replibench.errors import DataError  # noqa: E402
from replibench.families.crystals.metrics.evaluate import evaluate_csp, evaluate_gen  # noqa: E402
from replibench.families.crystals.metrics.matching import (  # noqa: E402
    MAX_CELL_LENGTH_A,
    absurd_cell,
    bounded_rms,
    normalised_rms,
)
from replibench.families.crystals.metrics.structures import CrystalArrays  # noqa: E402

NACL_SITES = (11, 17)


def arrays(a: float = 5.0, x: float = 0.5, first: float | None = None) -> CrystalArrays:
    """NaCl-like two-site cell, lengths (first or a, a, a) Å, cubic angles."""
    lengths = np.array([first if first is not None else a, a, a])
    return CrystalArrays(NACL_SITES, np.array([[0.0, 0.0, 0.0], [x, 0.5, 0.5]]), lengths, np.full(3, 90.0))


def structure(a: float = 5.0, x: float = 0.5, first: float | None = None):
    from pymatgen.core import Lattice, Structure

    return Structure(Lattice.from_parameters(first or a, a, a, 90, 90, 90), ["Na", "Cl"],
                     [[0.0, 0.0, 0.0], [x, 0.5, 0.5]])


def _child_pids() -> set[int]:
    """Live child processes of this test process (other tests' servers may be among them)."""
    import psutil

    return {child.pid for child in psutil.Process().children() if child.status() != psutil.STATUS_ZOMBIE}


def test_absurd_cell_is_named_with_its_length():
    assert absurd_cell(structure()) is None
    assert absurd_cell(structure(first=MAX_CELL_LENGTH_A)) is None
    assert absurd_cell(structure(first=1e9)) == f"absurd_cell: lattice length 1e+09 Å > {MAX_CELL_LENGTH_A:g} Å"


def test_a_match_stuck_in_compiled_code_is_killed_after_the_limit_and_the_next_one_still_runs():
    """The issue's case, bypassing the up-front check: the matcher on a 1e9 Å cell would run for
    minutes; with a 2 s limit it is stopped, and the following sample is matched by a fresh child."""
    truth = structure()
    before = _child_pids()
    started = time.monotonic()
    results = bounded_rms([structure(first=1e9), structure(x=0.52)], truth, time_limit_s=2.0)
    elapsed = time.monotonic() - started
    assert results[0] == (None, "timeout")
    assert results[1][1] == "ok" and results[1][0] == normalised_rms(prediction=structure(x=0.52), truth=truth)[0]
    assert elapsed < 30, elapsed
    assert _child_pids() <= before  # the killed child is gone


def test_bounded_matches_equal_in_process_matches_exactly():
    truth = structure()
    predictions = [structure(x=0.5), structure(x=0.53), structure(a=5.3, x=0.51), structure(a=9.0)]
    expected = [normalised_rms(prediction=p, truth=truth) for p in predictions]
    before = _child_pids()
    assert bounded_rms(predictions, truth) == [(rms, "error" if raised else "ok") for rms, raised in expected]
    assert _child_pids() <= before


def test_csp_scoring_refuses_an_absurd_sample_and_counts_it():
    started = time.monotonic()
    result = evaluate_csp(predictions=[[arrays(first=1e9), arrays(x=0.52)], [arrays(first=1e9)]],
                          truths=[arrays(), arrays()], convention="diffcsp")
    assert time.monotonic() - started < 60
    assert result["counts"]["absurd_cells"] == 2 and result["counts"]["matcher_timeouts"] == 0
    assert result["counts"]["samples_gated_out"] == 2
    assert result["variants"]["k1"]["match_rate"] == 0.0  # the first sample of each truth is the absurd one
    assert result["variants"]["k2"]["match_rate"] == 50.0  # truth 1 matched by its second sample


def test_csp_timeouts_are_counted_like_matcher_errors(monkeypatch):
    import replibench.families.crystals.metrics.assess as assess

    monkeypatch.setattr(assess, "absurd_cell", lambda s: None)  # let the degenerate cell reach the matcher
    result = evaluate_csp(predictions=[[arrays(first=1e9), arrays(x=0.52)]], truths=[arrays()],
                          convention="diffcsp", match_time_limit_s=2.0)
    assert result["counts"]["matcher_timeouts"] == 1 and result["counts"]["matcher_errors"] == 0
    assert result["variants"]["k2"]["match_rate"] == 100.0


def test_an_absurd_test_crystal_is_a_data_error_naming_it():
    with pytest.raises(DataError, match=r"test crystals #\[2\] .* cannot be built: absurd_cell: lattice length 1e\+09"):
        evaluate_csp(predictions=[[arrays()], [arrays()]], truths=[arrays(), arrays(first=1e9)], convention="diffcsp")


def test_generated_absurd_cell_is_invalid_and_counted_without_being_fingerprinted():
    started = time.monotonic()
    result = evaluate_gen(generated=[arrays(first=1e9), arrays(), arrays(x=0.45)], truths=[arrays(), arrays(x=0.45)],
                          dataset="perov-5", convention="diffcsp", allow_fewer_valid=True)
    assert time.monotonic() - started < 120
    assert result["counts"]["absurd_cells"] == 1 and result["counts"]["constructed"] == 2
    assert result["variants"]["default"]["struct_validity"] == pytest.approx(200 / 3)
