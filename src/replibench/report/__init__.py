"""The leaderboard: a pure function of the results table and the papers' reference numbers.

Rows are (family, dataset, task, variant, model, metric): ours as mean ± std over seeds, the
paper's value and source, the difference, the band it is allowed and a status. Only ``paper``-preset
runs on official data can be "reproduced"; ``smoke`` rows and rows on generated/synthetic data say
so and never count. Families may derive extra rows (e.g. ETT's average over the four horizons).

What "reproduced" means (:func:`reproduction_band`): a ``paper``-preset run on official data with a
value for every seed, and

    |ours − paper| ≤ band = max(stated tolerance, printed precision, seed band)

* stated tolerance: the reference's ``max(absolute, relative × |paper|)``, written beside each paper
  number with its reason (references/*.yaml);
* printed precision: half a unit in the last digit the paper printed (0.384 → 0.0005; read from the
  YAML text, so 0.500 keeps its three digits): the paper's number is only known to that precision;
* seed band: with n ≥ 2 seeds of sample std s, ``2 s √(1 + 1/n)``: the spread of ``ours − paper``
  when our value is a mean of n seeds and the paper's a single run from the same seed distribution
  (papers rarely say how many runs they averaged; one is the cautious assumption), 2σ ≈ 95 %
  two-sided. It only widens the band: a metric whose seeds disagree by more than the stated
  tolerance cannot be called "not reproduced" on the strength of one paper number.

The Markdown and HTML renderings live in ``report.markdown`` and ``report.html``; the per-paper
views (:func:`paper_views`) lay rows out as the papers' own tables (``Family.paper_tables``).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from replibench.errors import DataError
from replibench.report.format import (NO_PAPER, NO_VALUE, NOT_REAL_DATA_SUFFIX, NOT_REPRODUCED, NOT_RUN, REPRODUCED, SMOKE,
                                      SUMMARY_CLASSES, is_missing, status_kind, summary_class)

KEY = ["family", "dataset", "task", "variant", "model", "metric"]
#: reference fields that may come from a file's ``defaults`` but must be known for every entry
REQUIRED_AFTER_DEFAULTS = ("family", "paper", "tolerance")


#: how many seed standard deviations the seed band spans (two-sided ≈ 95 %)
SEED_SIGMAS = 2.0


def printed_precisions(text: str) -> list[float | None]:
    """Per entry of a references YAML text, half a unit in the last digit its ``value`` was printed
    with (``0.384`` → 0.0005, ``0.500`` → 0.0005, ``59.60`` → 0.005, ``94`` → 0.5); None for a null
    value. Read from the YAML source, because a parsed float has lost its trailing zeros."""
    from decimal import Decimal, InvalidOperation

    import yaml

    root = yaml.compose(text)
    entries = next((value for key, value in root.value if key.value == "entries"), None)
    precisions: list[float | None] = []
    def value_node(mapping):  # the entry's own ``value``, else the one a YAML merge (``<<: *anchor``) brings
        own = next((value for key, value in mapping.value if key.value == "value"), None)
        merged = next((value for key, value in mapping.value if key.value == "<<"), None)
        return own if own is not None or merged is None else value_node(merged)

    for item in entries.value if entries is not None else []:
        scalar = value_node(item)
        try:
            exponent = Decimal(scalar.value).as_tuple().exponent if scalar is not None else None
        except InvalidOperation:  # null, ~
            exponent = None
        precisions.append(None if not isinstance(exponent, int) else 0.5 * 10.0 ** exponent)
    return precisions


def load_references(paths: list[Path]) -> list[dict[str, Any]]:
    """Read reference YAML files (``defaults`` + ``entries``), validate, and return flat entries.

    Every entry (after its file's defaults) names its family and — unless its value is null (our
    row with no comparable published number, whose note says why) — its paper and tolerance; a key
    (family, dataset, task, variant, model, metric) appears once across all files. Each entry also
    gets ``value_precision``: half a unit in the last digit the paper printed (:func:`printed_precisions`).
    """
    import jsonschema
    import yaml

    from replibench.config import schema_text

    schema = yaml.safe_load(schema_text("references.schema.yaml"))
    validator = jsonschema.Draft202012Validator(schema)
    entries: list[dict[str, Any]] = []
    for path in paths:
        try:
            text = Path(path).read_text(encoding="utf-8")
            document = yaml.safe_load(text)
        except (OSError, yaml.YAMLError) as error:
            raise DataError(f"{path}: cannot read the references: {error}") from error
        error = jsonschema.exceptions.best_match(validator.iter_errors(document))
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
            raise DataError(f"{path}: {where}: {error.message}")
        defaults = document.get("defaults", {})
        precisions = printed_precisions(text)
        for index, entry in enumerate(document["entries"]):
            merged = {**defaults, **entry, "reference_file": str(path), "value_precision": precisions[index]}
            for name in REQUIRED_AFTER_DEFAULTS:
                if name != "family" and merged.get("value") is None:
                    continue  # value null + note: our row with no published number, no paper to be within
                if name not in merged:
                    raise DataError(f"{path}: entries/{index}: no {name!r} (give it in the entry or in defaults)")
            entries.append(merged)
    seen: dict[tuple, str] = {}
    for entry in entries:
        key = tuple(entry[k] for k in KEY)
        if key in seen:
            raise DataError(f"{entry['reference_file']}: duplicate reference for {key} (also in {seen[key]})")
        seen[key] = entry["reference_file"]
    return entries


def _mean_or_nan(values) -> float:
    """Mean over seeds, NaN as soon as one seed has no value (a failed seed is never skipped)."""
    return float(values.mean(skipna=False))


def aggregate_seeds(results):  # (pd.DataFrame) -> pd.DataFrame
    """Mean, sample std and count over seeds per (family, dataset, task, variant, model, metric,
    preset), with the per-seed values and the run ids behind each row."""
    group = KEY + ["preset", "direction", "unit", "data_origin", "derived"]
    table = results.assign(**{flag: results[flag] if flag in results else False
                              for flag in ("derived", "comparison_only")})
    for flag in ("derived", "comparison_only"):
        table[flag] = table[flag].fillna(False).astype(bool)
    return (table.groupby(group, dropna=False, sort=True)
            .agg(ours=("value", _mean_or_nan), ours_std=("value", "std"), seeds=("seed", "nunique"),
                 steps=("steps", "max"), max_steps=("max_steps", "max"), epochs=("epochs", "max"),
                 train_wall_s=("train_wall_s", "sum"), gpu_hours=("gpu_hours", "sum"),
                 comparison_only=("comparison_only", "any"),
                 seed_values=("value", lambda v: [float(x) for x in v]),
                 seed_list=("seed", lambda s: [int(x) for x in s]),
                 run_ids=("run_id", lambda ids: sorted(set(ids))))
            .reset_index())


def family_derived_rows(results):  # (pd.DataFrame) -> pd.DataFrame
    """Rows a family derives from its per-variant results (e.g. ETT's "avg" over horizons),
    marked ``derived``; their ``run_id`` joins the ids of the runs they come from with ``;``."""
    import pandas as pd

    from replibench.registry import FAMILIES, resolve

    frames = []
    for family in sorted(set(results["family"])):
        if family not in FAMILIES:
            continue
        derive = getattr(resolve("family", family), "derived_results", None)
        if derive is not None:
            frames.append(derive(results[results["family"] == family]))
    frames = [frame.assign(derived=True) for frame in frames if len(frame)]
    return pd.concat(frames, ignore_index=True) if frames else results.iloc[0:0].assign(derived=True)


def allowed_difference(tolerance: dict[str, float] | None, paper_value: float) -> float:
    """The stated tolerance as an absolute bound: max(absolute, relative × |paper|)."""
    tolerance = tolerance if isinstance(tolerance, dict) else {}
    return max(tolerance.get("absolute", 0.0), tolerance.get("relative", 0.0) * abs(paper_value))


def describe_tolerance(tolerance: dict[str, float] | None) -> str:
    """``±5 %``, ``±0.01`` or ``±max(5 %, 0.01)``; ``–`` when none is stated."""
    if not isinstance(tolerance, dict) or not tolerance:
        return "–"
    parts = []
    if tolerance.get("relative"):
        parts.append(f"{tolerance['relative'] * 100:g} %")
    if tolerance.get("absolute"):
        parts.append(f"{tolerance['absolute']:g}")
    return "±" + (parts[0] if len(parts) == 1 else f"max({', '.join(parts)})") if parts else "±0"


def reproduction_band(row: dict[str, Any]) -> tuple[float, str]:
    """The largest |ours − paper| a row may have and still count as reproduced, and what set it:
    ``"tolerance"`` (the stated one), ``"paper precision"`` (half a unit in the paper's last printed
    digit) or ``"seed spread"`` (``SEED_SIGMAS × std × √(1 + 1/n)`` over n ≥ 2 seeds). The module
    docstring gives the reasons. On a tie the stated tolerance is named."""
    bands = [(allowed_difference(row.get("tolerance"), row["paper_value"]), "tolerance")]
    precision = row.get("value_precision")
    if not is_missing(precision):
        bands.append((float(precision), "paper precision"))
    seeds, std = row.get("seeds"), row.get("ours_std")
    if not is_missing(seeds) and seeds >= 2 and not is_missing(std):
        bands.append((SEED_SIGMAS * float(std) * math.sqrt(1.0 + 1.0 / seeds), "seed spread"))
    return max(bands, key=lambda band: band[0])


def status_of(row: dict[str, Any]) -> str:
    """The status of one leaderboard row (a run of ours, maybe with a paper number): see the module
    docstring for what "reproduced" needs; :data:`NOT_RUN` is given by :func:`paper_views` to a
    paper number with no row."""
    if is_missing(row["paper_value"]):
        note = row.get("note")  # a reference with value null says why no number compares
        return NO_PAPER + (f" ({note})" if isinstance(note, str) and note else "")
    if is_missing(row["ours"]):
        return NO_VALUE
    if row["preset"] != "paper":
        return SMOKE
    if row["data_origin"] != "official":
        return f"{row['data_origin']}{NOT_REAL_DATA_SUFFIX}"
    allowed, _ = reproduction_band(row)
    return REPRODUCED if abs(row["ours"] - row["paper_value"]) <= allowed else NOT_REPRODUCED


def describe_band(row: dict[str, Any]) -> str:
    """The tol. column: the stated tolerance (``±5 %``), or the wider band and its origin
    (``±0.021 (seed spread)``, ``±0.0005 (paper precision)``); ``–`` without a paper number."""
    if is_missing(row.get("band")):
        return "–"
    if row["band_from"] == "tolerance":
        return describe_tolerance(row["tolerance"])
    return f"±{row['band']:.2g} ({row['band_from']})"


def natural_key(text: str) -> tuple:
    """Sort ``h96`` before ``h192`` and ``mask0.125`` before ``mask0.5``."""
    return tuple((0, float(part), "") if re.fullmatch(r"\d+(\.\d+)?", part) else (1, 0.0, part)
                 for part in re.findall(r"\d+(?:\.\d+)?|\D+", text))


def run_table(results):  # (pd.DataFrame) -> pd.DataFrame
    """One row per run (run id and preset) of the results table: its device, origin and compute."""
    columns = ["run_id", "preset", "device", "origin", "gpu_hours", "cpu_hours"]
    table = results.reindex(columns=columns)
    return table.drop_duplicates(["run_id", "preset"]).set_index(["run_id", "preset"])


def runs_behind(row: dict[str, Any]) -> list[str]:
    """The run ids a leaderboard row comes from (a derived row joins several with ``;``)."""
    return sorted({part for joined in row["run_ids"] for part in str(joined).split(";") if part})


def compute_of(run_ids: list[tuple[str, str]], runs) -> dict[str, float]:
    """GPU- and CPU-hours (summed) and the same for the recorded runs only, over (run id, preset) pairs."""
    total = {"gpu_hours": 0.0, "cpu_hours": 0.0, "recorded_gpu_hours": 0.0, "recorded_cpu_hours": 0.0}
    for key in sorted(set(run_ids)):
        if key not in runs.index:
            continue
        run = runs.loc[key]
        for name in ("gpu_hours", "cpu_hours"):
            hours = 0.0 if is_missing(run[name]) else float(run[name])
            total[name] += hours
            if run["origin"] == "recorded":
                total[f"recorded_{name}"] += hours
    return total


def build_leaderboard(results, references: list[dict[str, Any]]):  # -> pd.DataFrame
    """Join aggregated results (plus family-derived rows) with the references; one row per key
    and preset, ordered by family, dataset, task, measured-before-derived, variant, model, metric.
    Each row also gets the devices and origins (local/recorded) of its runs, their GPU- and
    CPU-hours, and its reproduction band (:func:`reproduction_band`)."""
    import pandas as pd

    rows = results.assign(derived=False)
    if len(results):
        rows = pd.concat([rows, family_derived_rows(results)], ignore_index=True)
    board = aggregate_seeds(rows)
    columns = ["paper_value", "paper", "table", "source", "averaging", "tolerance", "note", "reference_file",
               "value_precision"]
    refs = pd.DataFrame(references).rename(columns={"value": "paper_value"}).reindex(columns=KEY + columns)
    board = board.merge(refs, on=KEY, how="left")
    board["paper_value"] = board["paper_value"].astype(float)
    # a comparison-only metric (scored under another paper's rule) is shown only beside that paper
    board = board[~(board["comparison_only"] & board["paper_value"].isna() & ~board["derived"])]
    board["delta"] = board["ours"] - board["paper_value"]
    board["delta_relative"] = board["delta"] / board["paper_value"].abs().replace(0.0, math.nan)
    records = board.to_dict("records")
    bands = [reproduction_band(r) if not is_missing(r["paper_value"]) else (math.nan, None) for r in records]
    board["band"] = [band for band, _ in bands]
    board["band_from"] = [source for _, source in bands]
    board["status"] = [status_of(r) for r in records]
    board["tolerance_text"] = [describe_tolerance(t) for t in board["tolerance"]]
    runs = run_table(results)
    facts = []
    for row in board.to_dict("records"):
        keys = [(run_id, row["preset"]) for run_id in runs_behind(row)]
        known = [runs.loc[key] for key in keys if key in runs.index]
        facts.append({"devices": "; ".join(sorted({str(run["device"]) for run in known})),
                      "origins": ", ".join(sorted({str(run["origin"]) for run in known})),
                      **compute_of(keys, runs)})
    facts = pd.DataFrame(facts, index=board.index,
                         columns=["devices", "origins", "gpu_hours", "cpu_hours", "recorded_gpu_hours",
                                  "recorded_cpu_hours"])
    board = board.drop(columns=["gpu_hours"]).join(facts)
    board["band_text"] = [describe_band(r) for r in board.to_dict("records")]
    order = board.assign(_variant=board["variant"].map(natural_key))
    order = order.sort_values(["family", "dataset", "task", "derived", "_variant", "model", "metric", "preset"],
                              kind="stable")
    return board.loc[order.index].reset_index(drop=True)


def _value_order(table, name: str, value: str) -> tuple:
    listed = tuple(table.order.get(name, ()))
    return (listed.index(value) if value in listed else len(listed), natural_key(value))


def _label(table, names: tuple[str, ...], values: tuple[str, ...]) -> str:
    labels = (table.labels.get(value, value) for value in values)
    return " ".join(label for label in labels if label)  # a value spelled "" (e.g. "default") is not shown


def declared_paper_tables(families: list[str]) -> list[tuple[str, Any]]:
    """``(family, PaperTable)`` of every registered family among ``families`` (Family.paper_tables)."""
    from replibench.registry import FAMILIES, resolve

    return [(family, table) for family in sorted(set(families)) if family in FAMILIES
            for table in resolve("family", family).paper_tables]


def paper_views(board, references: list[dict[str, Any]], tables: list[tuple[str, Any]],
                results) -> list[dict[str, Any]]:
    """One view per declared paper table: its row and column labels, a cell per (row, column) the
    paper has a number (or a null reference) for, a summary and the compute behind it.

    A cell shows the ``paper``-preset row when there is one, else the ``smoke`` row (status "smoke
    run"), else :data:`NOT_RUN`. The summary counts the cells that have a paper number by
    :data:`SUMMARY_CLASSES`; compute sums the GPU-/CPU-hours of the distinct runs behind the cells
    (also for the recorded runs alone, the part that does not change from one local run to the next).
    """
    runs = run_table(results)
    by_key = {(tuple(row[k] for k in KEY), row["preset"]): row for row in board.to_dict("records")}
    views = []
    for family, table in tables:
        chosen = [entry for entry in references
                  if entry["family"] == family
                  and all(entry[name] in values for name, values in table.select.items())
                  and table.paper in (entry.get("paper") or "") and table.table in (entry.get("table") or "")]
        if not chosen:
            continue
        for name in KEY[1:]:
            values = {entry[name] for entry in chosen}
            if name not in table.rows + table.columns and len(values) > 1:
                raise DataError(f"{family}: paper table {table.title!r}: field {name!r} takes the values "
                                f"{sorted(values)} but is neither in rows {table.rows} nor in columns "
                                f"{table.columns}: one cell would hold several paper numbers")

        def axis(names: tuple[str, ...]) -> list[tuple[str, ...]]:
            keys = {tuple(entry[name] for name in names) for entry in chosen}
            return sorted(keys, key=lambda values: [_value_order(table, n, v) for n, v in zip(names, values)])

        row_keys, column_keys = axis(table.rows), axis(table.columns)
        cells: dict[tuple[int, int], dict[str, Any]] = {}
        counts = {name: 0 for name, _ in SUMMARY_CLASSES}
        behind: list[tuple[str, str]] = []
        for entry in chosen:
            key = tuple(entry[k] for k in KEY)
            row = by_key.get((key, "paper")) or by_key.get((key, "smoke"))
            paper_value = math.nan if entry["value"] is None else float(entry["value"])
            if row is None:
                status = NOT_RUN if entry["value"] is not None else status_of(
                    {"paper_value": math.nan, "note": entry.get("note")})
                cell = {"paper_value": paper_value, "ours": math.nan, "ours_std": math.nan, "seeds": 0,
                        "delta": math.nan, "band_text": describe_tolerance(entry.get("tolerance")),
                        "preset": None, "status": status}
            else:
                cell = {name: row[name] for name in ("paper_value", "ours", "ours_std", "seeds", "delta", "band_text",
                                                     "preset", "status")}
                behind += [(run_id, row["preset"]) for run_id in runs_behind(row)]
            cell["paper_precision"] = entry.get("value_precision")
            cell["kind"] = status_kind(cell["status"])
            cell["summary"] = summary_class(cell["status"])
            if entry["value"] is not None and cell["summary"] in counts:
                counts[cell["summary"]] += 1
            position = (row_keys.index(tuple(entry[n] for n in table.rows)),
                        column_keys.index(tuple(entry[n] for n in table.columns)))
            cells[position] = cell
        views.append({
            "family": family, "title": table.title,
            "anchor": re.sub(r"[^a-z0-9]+", "-", f"{family} {table.title}".lower()).strip("-"),
            "row_labels": [_label(table, table.rows, values) for values in row_keys],
            "column_labels": [_label(table, table.columns, values) for values in column_keys],
            "cells": cells, "counts": counts, "papers": sorted({entry["paper"] for entry in chosen
                                                                if isinstance(entry.get("paper"), str)}),
            "paper_numbers": sum(entry["value"] is not None for entry in chosen),
            **compute_of(behind, runs),
        })
    return views


def references_without_rows(board, references: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Per family, the paper numbers that no leaderboard row compares with (runs not in the table,
    e.g. the ``paper`` sweep after a smoke run)."""
    present = {tuple(row[k] for k in KEY) for row in board[KEY].to_dict("records")}
    missing: dict[str, list[dict[str, Any]]] = {}
    for entry in references:
        if entry["value"] is not None and tuple(entry[k] for k in KEY) not in present:
            missing.setdefault(entry["family"], []).append(entry)
    return missing


def superseded_rows(superseded: list[tuple[Path, dict[str, Any]]], base: Path) -> list[dict[str, Any]]:
    """One plain row per replaced recording, for the leaderboards' "earlier recordings" list: what
    ran where and when, with what code, and its numbers (not counted in any leaderboard row)."""
    import os

    from replibench.results import cpu_hours, gpu_hours, run_id_of

    rows = []
    for path, record in superseded:
        provenance = record["provenance"]
        rows.append({"run_id": run_id_of(record), "preset": record["preset"], "device": provenance["device"],
                     "created": provenance["created"], "commit": (provenance["commit"] or "–")[:7]
                     + ("+dirty" if provenance.get("commit_dirty") else ""),
                     "steps": record["training"]["steps"], "metrics": dict(sorted(record["metrics"].items())),
                     "gpu_hours": gpu_hours(record), "cpu_hours": cpu_hours(record),
                     "path": Path(os.path.relpath(Path(path).resolve(), Path(base).resolve())).as_posix()})
    return rows


def report_stage(*, metrics_paths: list[Path], reference_paths: list[Path], results_out: Path,
                 leaderboard_out: Path, html_out: Path | None, plots_dir: Path,
                 recorded_paths: list[Path] = (), superseded_paths: list[Path] = (),
                 claim_paths: list[Path] = ()) -> None:
    """All metrics.json (local ``metrics_paths`` and committed ``recorded_paths``) → results.parquet,
    leaderboard.{md,parquet,html} and the plots. A local run that is also recorded is set aside
    (the recorded one counts) and named in the log. ``superseded_paths`` (replaced recordings,
    ``recorded/<run>/superseded/*.json``) are listed in both leaderboards, never counted.
    ``claim_paths`` (``results/claims/…json``, :mod:`replibench.report.claims`) add rows of kind
    "claim" to both leaderboards."""
    import pyarrow as pa

    from replibench.atomic import write_text_atomic
    from replibench.data.tables import write_parquet_atomic
    from replibench.report.claims import read_claims
    from replibench.report.plots import family_plots
    from replibench.report.html import leaderboard_html
    from replibench.report.markdown import leaderboard_markdown
    from replibench.results import RECORDED, read_runs, read_superseded, results_from_runs, write_results_table

    claims = read_claims(list(claim_paths))
    runs, superseded = read_runs(metrics_paths, recorded_paths)
    earlier = superseded_rows(read_superseded(superseded_paths), base=Path(leaderboard_out).parent)
    for path in superseded:
        print(f"{path}: set aside, the same run is recorded under recorded/ (the recorded one counts)")
    results = results_from_runs(runs)
    write_results_table(results, results_out)
    references = load_references(reference_paths)
    board = build_leaderboard(results, references)
    table = board.drop(columns=["tolerance", "seed_values", "seed_list"]).assign(
        run_ids=board["run_ids"].map(";".join))
    write_parquet_atomic(pa.Table.from_pandas(table, preserve_index=False),
                         Path(leaderboard_out).with_suffix(".parquet"))
    records = [record for _, _, record in runs]
    paths = [path for path, _, _ in runs]
    recorded = frozenset(path for path, origin, _ in runs if origin == RECORDED)
    plots = {family: family_plots(board=board, records=records, metrics_paths=paths, family=family,
                                  plots_dir=Path(plots_dir), without_files=recorded)
             for family in sorted(set(board["family"]))}
    missing = references_without_rows(board, references)
    views = paper_views(board, references, declared_paper_tables(list(board["family"]) +
                                                                 [entry["family"] for entry in references]), results)
    write_text_atomic(leaderboard_out, leaderboard_markdown(board, plots, missing, base=Path(leaderboard_out).parent,
                                                            views=views, superseded=earlier, claims=claims))
    if html_out is not None:
        write_text_atomic(html_out, leaderboard_html(board, results, plots, missing, base=Path(html_out).parent,
                                                     views=views, superseded=earlier, claims=claims))
    print(f"{len(runs)} runs ({len(recorded)} recorded), {len(board)} leaderboard rows, {len(views)} paper "
          f"views, {len(claims)} claim settings → {leaderboard_out}" + (f", {html_out}" if html_out is not None else ""))
