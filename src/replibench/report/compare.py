"""Regression check: which metrics moved between two results tables beyond their noise band.

Rows are matched on (family, dataset, task, variant, model, metric, preset, split, data_origin) and
compared as the mean over seeds. The noise band of a row is

    band = max(sigmas × seed std, max(relative × |baseline|, absolute))

where the seed std is the larger sample std of the two tables among those with ≥ 2 seeds, and
(relative, absolute) is the family's stated tolerance (``Family.regression_tolerance``, or
``--tolerance`` / ``--absolute-tolerance``). With one seed only the stated tolerance applies; with
several, the tolerance is a floor so that deterministic models (seed std 0) do not flag rounding.
A metric that moved beyond its band, became missing, or disappeared from the candidate is flagged;
rows new in the candidate are listed but not flagged. Wall-clock metrics (a unit in
``WALL_CLOCK_UNITS``, e.g. the crystals' ``sampling_s_per_1000``) measure the machine as much as the
code: a pull request's runner is not the one that made the baseline, so they are listed, never flagged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from replibench.errors import ConfigError

MATCH = ["family", "dataset", "task", "variant", "model", "metric", "preset", "split", "data_origin"]
DEFAULT_SIGMAS = 2.0

OK = "ok"
MOVED = "moved beyond noise band"
VANISHED = "missing in candidate"
BECAME_MISSING = "value missing in candidate"
NEW = "new in candidate"
BECAME_PRESENT = "value new in candidate"
WALL_CLOCK = "wall-clock time: listed, not flagged"
FLAGGED = (MOVED, VANISHED, BECAME_MISSING)

#: units of metrics that time the run on its machine
WALL_CLOCK_UNITS = frozenset({"s", "ms", "min", "h"})


@dataclass(frozen=True)
class Tolerance:
    relative: float
    absolute: float

    def allowed(self, baseline: float) -> float:
        return max(self.relative * abs(baseline), self.absolute)


def family_tolerance(family: str) -> Tolerance:
    """The family's stated regression tolerance (the base default for families this checkout lacks)."""
    from replibench.families.base import Family
    from replibench.registry import FAMILIES, resolve

    stated = resolve("family", family).regression_tolerance if family in FAMILIES else Family.regression_tolerance
    return Tolerance(float(stated.get("relative", 0.0)), float(stated.get("absolute", 0.0)))


def parse_tolerances(specs: list[str], kind: str) -> tuple[float | None, dict[str, float]]:
    """``["0.02", "ett=0.05"]`` → (0.02 for every family, {"ett": 0.05})."""
    default, per_family = None, {}
    for spec in specs:
        family, _, number = spec.rpartition("=")
        try:
            value = float(number)
        except ValueError:
            raise ConfigError(f"--{kind} {spec!r}: expected NUMBER or FAMILY=NUMBER") from None
        if value < 0 or math.isnan(value):
            raise ConfigError(f"--{kind} {spec!r}: must be a number ≥ 0")
        if family:
            per_family[family] = value
        else:
            default = value
    return default, per_family


def _tolerance_of(family: str, relative: tuple[float | None, dict[str, float]],
                  absolute: tuple[float | None, dict[str, float]]) -> Tolerance:
    """The command line's tolerance for ``family`` (its own, else the one for all), else the stated one."""
    stated = family_tolerance(family)

    def pick(given: tuple[float | None, dict[str, float]], fallback: float) -> float:
        return given[1].get(family, given[0] if given[0] is not None else fallback)

    return Tolerance(pick(relative, stated.relative), pick(absolute, stated.absolute))


def _summarise(table):  # (pd.DataFrame) -> pd.DataFrame
    table = table.assign(data_origin=table["data_origin"].fillna("official"), split=table["split"].fillna("test"),
                         unit=table["unit"] if "unit" in table else None)
    return (table.groupby(MATCH + ["direction", "unit"], dropna=False, sort=True)
            .agg(mean=("value", lambda v: float(v.mean(skipna=False))), std=("value", "std"),
                 seeds=("seed", "nunique"))
            .reset_index())


def compare_results(baseline, candidate, *, sigmas: float = DEFAULT_SIGMAS,
                    relative: tuple[float | None, dict[str, float]] = (None, {}),
                    absolute: tuple[float | None, dict[str, float]] = (None, {})):  # -> pd.DataFrame
    """One row per matched metric with both means, the difference, the band and a status."""
    import pandas as pd

    base, cand = _summarise(baseline), _summarise(candidate)
    merged = base.merge(cand, on=MATCH, how="outer", suffixes=("_baseline", "_candidate"), indicator=True)
    rows = []
    for row in merged.to_dict("records"):
        tolerance = _tolerance_of(row["family"], relative, absolute)
        base_mean, cand_mean = row["mean_baseline"], row["mean_candidate"]
        stds = [row[f"std_{side}"] for side in ("baseline", "candidate")
                if row[f"seeds_{side}"] == row[f"seeds_{side}"] and row[f"seeds_{side}"] >= 2]
        seed_std = max(stds) if stds else math.nan
        band = math.nan
        if row["_merge"] == "right_only":
            status = NEW
        elif row["_merge"] == "left_only":
            status = VANISHED
        elif math.isnan(cand_mean) and not math.isnan(base_mean):
            status = BECAME_MISSING
        elif math.isnan(base_mean):
            status = OK if math.isnan(cand_mean) else BECAME_PRESENT
        else:
            band = max(sigmas * seed_std if stds else 0.0, tolerance.allowed(base_mean))
            status = MOVED if abs(cand_mean - base_mean) > band else OK
        if status == MOVED and WALL_CLOCK_UNITS & {row["unit_baseline"], row["unit_candidate"]}:
            status = WALL_CLOCK
        direction = next((row[f"direction_{side}"] for side in ("baseline", "candidate")
                          if isinstance(row[f"direction_{side}"], str)), None)
        delta = cand_mean - base_mean
        better = None if not delta == delta or delta == 0 else bool((delta < 0) == (direction == "min"))
        rows.append({**{k: row[k] for k in MATCH}, "direction": direction,
                     "baseline": base_mean, "baseline_std": row["std_baseline"],
                     "baseline_seeds": row["seeds_baseline"],
                     "candidate": cand_mean, "candidate_std": row["std_candidate"],
                     "candidate_seeds": row["seeds_candidate"], "delta": delta, "band": band,
                     "band_from": "seed std" if stds and band == sigmas * seed_std else "tolerance",
                     "better": better, "status": status})
    return pd.DataFrame(rows)


def comparison_markdown(diff, *, baseline_name: str, candidate_name: str, sigmas: float) -> str:
    """A short Markdown report (the pull-request comment): flagged rows first, then the changed ones."""
    from replibench.report.format import format_number

    flagged = diff[diff["status"].isin(FLAGGED)]
    changed = diff[diff["status"].isin((OK, WALL_CLOCK)) & (diff["delta"].abs() > 0)]
    new = diff[diff["status"].isin((NEW, BECAME_PRESENT))]
    lines = ["### replibench: metrics against the baseline", "",
             f"Baseline `{baseline_name}`, candidate `{candidate_name}`: {len(diff)} metrics compared, "
             f"**{len(flagged)} flagged**, {len(changed)} changed within their noise band, {len(new)} new.",
             f"Noise band = max({sigmas:g} × seed std (≥ 2 seeds), the family's stated tolerance).", ""]

    def table(part, title: str) -> None:
        if not len(part):
            return
        lines.extend([f"#### {title}", "", "| family | dataset | task | variant | model | metric | preset | baseline | "
                      "candidate | Δ | band | status |", "|---|---|---|---|---|---|---|---|---|---|---|---|"])
        for row in part.to_dict("records"):
            trend = "" if row["better"] is None else (" (better)" if row["better"] else " (worse)")
            lines.append(f"| {row['family']} | {row['dataset']} | {row['task']} | {row['variant']} | {row['model']} | "
                         f"{row['metric']} ({row['direction']}) | {row['preset']} | {format_number(row['baseline'])} | "
                         f"{format_number(row['candidate'])} | {format_number(row['delta'], 3)}{trend} | "
                         f"{format_number(row['band'], 2)} ({row['band_from']}) | {row['status']} |")
        lines.append("")

    table(flagged, "Flagged")
    table(changed, "Changed within the noise band")
    table(new, "New in the candidate")
    return "\n".join(lines).rstrip("\n") + "\n"


def compare_stage(*, baseline: Path, candidate: Path, sigmas: float, tolerance: list[str],
                  absolute_tolerance: list[str], markdown_out: Path | None) -> int:
    """Print (and optionally write) the comparison; return 1 when a metric is flagged, else 0."""
    from replibench.atomic import write_text_atomic
    from replibench.results import read_results_table

    if sigmas < 0 or math.isnan(sigmas):
        raise ConfigError(f"--sigmas {sigmas}: must be ≥ 0")
    diff = compare_results(read_results_table(baseline), read_results_table(candidate), sigmas=sigmas,
                           relative=parse_tolerances(tolerance, "tolerance"),
                           absolute=parse_tolerances(absolute_tolerance, "absolute-tolerance"))
    text = comparison_markdown(diff, baseline_name=str(baseline), candidate_name=str(candidate), sigmas=sigmas)
    if markdown_out is not None:
        write_text_atomic(markdown_out, text)
    print(text, end="")
    return 1 if diff["status"].isin(FLAGGED).any() else 0
