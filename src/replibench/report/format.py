"""What the report modules share: the status of a leaderboard row and how numbers are printed.

``report`` (the leaderboard table), ``report.markdown``, ``report.html`` and ``report.compare`` all
import these from here, so the report modules import one another one way only (no cycle).
"""

from __future__ import annotations

import math
from typing import Any

REPRODUCED = "reproduced"
NOT_REPRODUCED = "not reproduced"
SMOKE = "smoke run: not a reproduction"
NO_PAPER = "no published number"
NO_VALUE = "no value (a seed gave none)"
NOT_RUN = "not yet run"
#: a run of ours whose data was generated/synthetic: "<origin> data: not a reproduction"
NOT_REAL_DATA_SUFFIX = " data: not a reproduction"


def is_missing(value: Any) -> bool:
    """None or NaN: a number the table does not have (the one test for it in the report modules)."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def status_kind(status: str) -> str:
    """A CSS-friendly class of a status: reproduced, not-reproduced, not-a-reproduction (smoke or
    generated data), no-paper, no-value, not-run."""
    if status.startswith(NO_PAPER):  # also "no published number (<why>)"
        return "no-paper"
    return {REPRODUCED: "reproduced", NOT_REPRODUCED: "not-reproduced", NOT_RUN: "not-run",
            NO_VALUE: "no-value"}.get(status, "not-a-reproduction")


#: the per-paper summary's columns, in order: (class, heading)
SUMMARY_CLASSES = (("reproduced", "reproduced"), ("not-reproduced", "not reproduced"), ("not-run", "not yet run"),
                   ("smoke", "smoke only"), ("not-real-data", "generated/synthetic data"), ("no-value", "no value"))


def summary_class(status: str) -> str:
    """The per-paper summary's class of a status (:data:`SUMMARY_CLASSES`), ``no-paper`` for a cell
    without a published number (not counted)."""
    if status == SMOKE:
        return "smoke"
    if status.endswith(NOT_REAL_DATA_SUFFIX):
        return "not-real-data"
    return status_kind(status)


#: what "reproduced" means, for both renderings (the ``replibench.report`` docstring gives the reasons)
RULE = ("A row is *reproduced* when it comes from a `paper`-preset run on official data with a value for every "
        "seed and |Δ| ≤ band = max(stated tolerance, half a unit in the paper's last printed digit, "
        "2 × seed std × √(1 + 1/n) when n ≥ 2 seeds); tol. shows the stated tolerance, or the wider band and "
        "what set it.")


def format_number(value: Any, digits: int = 4) -> str:
    """``digits`` significant digits (0.3851, 55.91, 0.002341); ``–`` for a missing value."""
    if is_missing(value):
        return "–"
    return f"{value:.{digits}g}"


def format_ours(row: dict[str, Any]) -> str:
    """Mean, and ± sample std over seeds (2 significant digits) when there are several."""
    text = format_number(row["ours"])
    if row["seeds"] > 1 and not is_missing(row["ours"]):
        text += f" ± {format_number(row['ours_std'], 2)}"
    return text


def format_steps(row: dict[str, Any]) -> str:
    steps = row["steps"]
    text = row["preset"] if is_missing(steps) else f"{row['preset']}, {int(steps)} steps"
    if not is_missing(row["max_steps"]) and row["max_steps"]:
        text += f" (cap {int(row['max_steps'])})"
    return text


def format_hours(hours: float) -> str:
    """``0.42`` h, ``12`` h, ``0`` (2 significant digits)."""
    return "0" if not hours else f"{hours:.2g}"


#: the "earlier recordings" list of both leaderboards: its title, what it is, and its columns
SUPERSEDED_TITLE = "Earlier recordings (replaced, not counted)"
SUPERSEDED_INTRO = "Runs recorded again (`replibench record --replace`); the rows above use the newer recording."
SUPERSEDED_COLUMNS = ("run", "preset", "device", "created", "commit", "steps", "metrics", "compute", "file")


def superseded_cells(row: dict[str, Any]) -> list[str]:
    """The text of a replaced recording's row (``report.superseded_rows``), one per column of
    :data:`SUPERSEDED_COLUMNS` but the last (the file, which each format links its own way)."""
    metrics = ", ".join(f"{name} {format_number(value)}" for name, value in row["metrics"].items())
    compute = f"{format_hours(row['gpu_hours'])} GPU-h, {format_hours(row['cpu_hours'])} CPU-h"
    return [row["run_id"], row["preset"], row["device"], row["created"], row["commit"], str(row["steps"]),
            metrics, compute]


def format_printed(value: Any, precision: float | None) -> str:
    """The paper's number with the digits the paper printed (precision = half a unit in the last
    one: 0.0005 → ``0.500``); :func:`format_number` when the precision is unknown."""
    if is_missing(value) or precision is None or is_missing(precision) or precision <= 0:
        return format_number(value)
    decimals = max(0, round(-math.log10(2 * precision)))
    return f"{value:.{decimals}f}"


def format_view_cell(cell: dict[str, Any] | None) -> tuple[str, str, str]:
    """(paper as printed, ours, signed Δ) of a paper-table cell; ours is ``not run`` or
    ``smoke: …`` where so."""
    if cell is None:
        return "", "", ""
    ours = format_ours(cell) if cell["seeds"] else "not run"
    if cell["preset"] == "smoke":
        ours = f"smoke: {ours}"
    delta = "–" if is_missing(cell["delta"]) else f"{cell['delta']:+.2g}"
    return format_printed(cell["paper_value"], cell.get("paper_precision")), ours, delta


def family_summary(part) -> str:
    counts = part["status"].map(status_kind).value_counts()
    rows = f"{len(part)} row{'' if len(part) == 1 else 's'}"
    return (f"{rows}: {counts.get('reproduced', 0)} reproduced, {counts.get('not-reproduced', 0)} not "
            f"reproduced, {counts.get('not-a-reproduction', 0)} not reproductions (smoke or generated data), "
            f"{counts.get('no-paper', 0)} without a published number.")
