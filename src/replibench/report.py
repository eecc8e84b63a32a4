"""The leaderboard: a pure function of the results table and the papers' reference numbers.

Rows are (family, dataset, task, variant, model, metric): ours as mean ± std over seeds, the
paper's value and source, the difference, the stated tolerance and a status. Only ``paper``-preset
runs on official data can be "reproduced"; ``smoke`` rows and rows on generated/synthetic data say
so and never count. Families may derive extra rows (e.g. ETT's average over the four horizons).
The Markdown and HTML renderings live in ``report_markdown`` and ``report_html``.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from replibench.errors import DataError

KEY = ["family", "dataset", "task", "variant", "model", "metric"]
#: reference fields that may come from a file's ``defaults`` but must be known for every entry
REQUIRED_AFTER_DEFAULTS = ("family", "paper", "tolerance")

REPRODUCED = "reproduced"
NOT_REPRODUCED = "not reproduced"
SMOKE = "smoke run: not a reproduction"
NO_PAPER = "no published number"
NO_VALUE = "no value (a seed gave none)"


def load_references(paths: list[Path]) -> list[dict[str, Any]]:
    """Read reference YAML files (``defaults`` + ``entries``), validate, and return flat entries.

    Every entry (after its file's defaults) names its family and — unless its value is null (our
    row with no comparable published number, whose note says why) — its paper and tolerance; a key
    (family, dataset, task, variant, model, metric) appears once across all files.
    """
    import jsonschema
    import yaml

    from replibench.config import schema_text

    schema = yaml.safe_load(schema_text("references.schema.yaml"))
    validator = jsonschema.Draft202012Validator(schema)
    entries: list[dict[str, Any]] = []
    for path in paths:
        try:
            document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as error:
            raise DataError(f"{path}: cannot read the references: {error}") from error
        error = jsonschema.exceptions.best_match(validator.iter_errors(document))
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
            raise DataError(f"{path}: {where}: {error.message}")
        defaults = document.get("defaults", {})
        for index, entry in enumerate(document["entries"]):
            merged = {**defaults, **entry, "reference_file": str(path)}
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


def is_missing(value: Any) -> bool:
    """None or NaN: a number the table does not have (the one test for it in the report modules)."""
    return value is None or (isinstance(value, float) and math.isnan(value))


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


def status_of(row: dict[str, Any]) -> str:
    if is_missing(row["paper_value"]):
        note = row.get("note")  # a reference with value null says why no number compares
        return NO_PAPER + (f" ({note})" if isinstance(note, str) and note else "")
    if is_missing(row["ours"]):
        return NO_VALUE
    if row["preset"] != "paper":
        return SMOKE
    if row["data_origin"] != "official":
        return f"{row['data_origin']} data: not a reproduction"
    allowed = allowed_difference(row["tolerance"], row["paper_value"])
    return REPRODUCED if abs(row["ours"] - row["paper_value"]) <= allowed else NOT_REPRODUCED


def status_kind(status: str) -> str:
    """A CSS-friendly class of a status: reproduced, not-reproduced, not-a-reproduction, no-paper, no-value."""
    if status.startswith(NO_PAPER):  # also "no published number (<why>)"
        return "no-paper"
    return {REPRODUCED: "reproduced", NOT_REPRODUCED: "not-reproduced",
            NO_VALUE: "no-value"}.get(status, "not-a-reproduction")


def natural_key(text: str) -> tuple:
    """Sort ``h96`` before ``h192`` and ``mask0.125`` before ``mask0.5``."""
    return tuple((0, float(part), "") if re.fullmatch(r"\d+(\.\d+)?", part) else (1, 0.0, part)
                 for part in re.findall(r"\d+(?:\.\d+)?|\D+", text))


def build_leaderboard(results, references: list[dict[str, Any]]):  # -> pd.DataFrame
    """Join aggregated results (plus family-derived rows) with the references; one row per key
    and preset, ordered by family, dataset, task, measured-before-derived, variant, model, metric."""
    import pandas as pd

    rows = results.assign(derived=False)
    if len(results):
        rows = pd.concat([rows, family_derived_rows(results)], ignore_index=True)
    board = aggregate_seeds(rows)
    columns = ["paper_value", "paper", "table", "source", "averaging", "tolerance", "note", "reference_file"]
    refs = pd.DataFrame(references).rename(columns={"value": "paper_value"}).reindex(columns=KEY + columns)
    board = board.merge(refs, on=KEY, how="left")
    board["paper_value"] = board["paper_value"].astype(float)
    # a comparison-only metric (scored under another paper's rule) is shown only beside that paper
    board = board[~(board["comparison_only"] & board["paper_value"].isna() & ~board["derived"])]
    board["delta"] = board["ours"] - board["paper_value"]
    board["delta_relative"] = board["delta"] / board["paper_value"].abs().replace(0.0, math.nan)
    board["status"] = [status_of(r) for r in board.to_dict("records")]
    board["tolerance_text"] = [describe_tolerance(t) for t in board["tolerance"]]
    order = board.assign(_variant=board["variant"].map(natural_key))
    order = order.sort_values(["family", "dataset", "task", "derived", "_variant", "model", "metric", "preset"],
                              kind="stable")
    return board.loc[order.index].reset_index(drop=True)


def references_without_rows(board, references: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Per family, the paper numbers that no leaderboard row compares with (runs not in the table,
    e.g. the ``paper`` sweep after a smoke run)."""
    present = {tuple(row[k] for k in KEY) for row in board[KEY].to_dict("records")}
    missing: dict[str, list[dict[str, Any]]] = {}
    for entry in references:
        if entry["value"] is not None and tuple(entry[k] for k in KEY) not in present:
            missing.setdefault(entry["family"], []).append(entry)
    return missing


def report_stage(*, metrics_paths: list[Path], reference_paths: list[Path], results_out: Path,
                 leaderboard_out: Path, html_out: Path | None, plots_dir: Path) -> None:
    """All metrics.json → results.parquet, leaderboard.{md,parquet,html} and the plots."""
    import pyarrow as pa

    from replibench.atomic import write_text_atomic
    from replibench.data.tables import write_parquet_atomic
    from replibench.plots import family_plots
    from replibench.report_html import leaderboard_html
    from replibench.report_markdown import leaderboard_markdown
    from replibench.results import gather_results, read_metrics, write_results_table

    results = gather_results(metrics_paths)
    write_results_table(results, results_out)
    references = load_references(reference_paths)
    board = build_leaderboard(results, references)
    table = board.drop(columns=["tolerance", "seed_values", "seed_list"]).assign(
        run_ids=board["run_ids"].map(";".join))
    write_parquet_atomic(pa.Table.from_pandas(table, preserve_index=False),
                         Path(leaderboard_out).with_suffix(".parquet"))
    records = [read_metrics(p) for p in metrics_paths]
    plots = {family: family_plots(board=board, records=records, metrics_paths=list(metrics_paths), family=family,
                                  plots_dir=Path(plots_dir))
             for family in sorted(set(board["family"]))}
    missing = references_without_rows(board, references)
    write_text_atomic(leaderboard_out, leaderboard_markdown(board, plots, missing, base=Path(leaderboard_out).parent))
    if html_out is not None:
        write_text_atomic(html_out, leaderboard_html(board, results, plots, missing, base=Path(html_out).parent))
    print(f"{len(metrics_paths)} runs, {len(board)} leaderboard rows → {leaderboard_out}"
          + (f", {html_out}" if html_out is not None else ""))
