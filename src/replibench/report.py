"""The leaderboard: a pure function of the results table and the papers' reference numbers.

Rows are (family, dataset, task, variant, model, metric): ours as mean ± std over seeds, the
paper's value and source, the difference, and a status. Only ``paper``-preset runs on official
data can be marked "reproduced"; ``smoke`` rows and rows on generated/synthetic data say so.
Families may derive extra rows (e.g. ETT's average over the four horizons) from the table.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from replibench.atomic import atomic_path, write_text_atomic
from replibench.errors import DataError

KEY = ["family", "dataset", "task", "variant", "model", "metric"]


def load_references(paths: list[Path]) -> list[dict[str, Any]]:
    """Read reference YAML files (``defaults`` + ``entries``), validate, and return flat entries."""
    import jsonschema
    import yaml

    from replibench.config import schema_text

    schema = yaml.safe_load(schema_text("references.schema.yaml"))
    validator = jsonschema.Draft202012Validator(schema)
    entries: list[dict[str, Any]] = []
    for path in paths:
        document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        error = jsonschema.exceptions.best_match(validator.iter_errors(document))
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
            raise DataError(f"{path}: {where}: {error.message}")
        defaults = document.get("defaults", {})
        for index, entry in enumerate(document["entries"]):
            merged = {**defaults, **entry, "reference_file": str(path)}
            if "family" not in merged:
                raise DataError(f"{path}: entries/{index}: no 'family' (give it in the entry or in defaults)")
            entries.append(merged)
    seen: dict[tuple, str] = {}
    for entry in entries:
        key = tuple(entry[k] for k in KEY)
        if key in seen:
            raise DataError(f"{entry['reference_file']}: duplicate reference for {key} (also in {seen[key]})")
        seen[key] = entry["reference_file"]
    return entries


def aggregate_seeds(results):  # (pd.DataFrame) -> pd.DataFrame
    """Mean, sample std and count over seeds per (family, dataset, task, variant, model, metric, preset)."""
    group = KEY + ["preset", "direction", "unit", "data_origin"]
    aggregated = (results.groupby(group, dropna=False, sort=True)
                  .agg(ours=("value", "mean"), ours_std=("value", "std"), seeds=("seed", "nunique"),
                       steps=("steps", "max"), max_steps=("max_steps", "max"), epochs=("epochs", "max"),
                       train_wall_s=("train_wall_s", "sum"), gpu_hours=("gpu_hours", "sum"),
                       run_ids=("run_id", lambda ids: sorted(set(ids))))
                  .reset_index())
    return aggregated


def family_derived_rows(results):  # (pd.DataFrame) -> pd.DataFrame
    """Rows a family derives from its per-variant results (e.g. ETT's "avg" over horizons)."""
    import pandas as pd

    from replibench.registry import FAMILIES, resolve

    frames = []
    for family in sorted(set(results["family"])):
        if family not in FAMILIES:
            continue
        derive = getattr(resolve("family", family), "derived_results", None)
        if derive is not None:
            frames.append(derive(results[results["family"] == family]))
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else results.iloc[0:0]


def status_of(row: dict[str, Any]) -> str:
    if _missing(row["paper_value"]):
        note = row.get("note")  # a reference with value null says why no number compares
        return "no published number" + (f" ({note})" if isinstance(note, str) and note else "")
    if row["preset"] != "paper":
        return "smoke run: not a reproduction"
    if row["data_origin"] != "official":
        return f"{row['data_origin']} data: not a reproduction"
    tolerance = row["tolerance"] if isinstance(row["tolerance"], dict) else {}
    allowed = max(tolerance.get("absolute", 0.0), tolerance.get("relative", 0.0) * abs(row["paper_value"]))
    return "reproduced" if abs(row["ours"] - row["paper_value"]) <= allowed else "not reproduced"


def build_leaderboard(results, references: list[dict[str, Any]]):  # -> pd.DataFrame
    """Join aggregated results (plus family-derived rows) with the references; one row per key."""
    import pandas as pd

    rows = pd.concat([results, family_derived_rows(results)], ignore_index=True) if len(results) else results
    board = aggregate_seeds(rows)
    columns = ["paper_value", "paper", "table", "source", "averaging", "tolerance", "note"]
    refs = pd.DataFrame(references).rename(columns={"value": "paper_value"})
    refs = refs.reindex(columns=KEY + columns)
    board = board.merge(refs, on=KEY, how="left")
    board["paper_value"] = board["paper_value"].astype(float)
    board["delta"] = board["ours"] - board["paper_value"]
    board["status"] = [status_of(r) for r in board.to_dict("records")]
    return board.sort_values(KEY + ["preset"], kind="stable").reset_index(drop=True)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _fmt(value: Any, digits: int = 3) -> str:
    if _missing(value):
        return "–"
    return f"{value:.{digits}f}"


def leaderboard_markdown(board, plots: dict[str, list[str]]) -> str:
    """GitHub-readable leaderboard grouped by family, with links to the family plots."""
    lines = ["# replibench leaderboard", "",
             "Ours = mean ± sample std over seeds (n = seeds). Δ = ours − paper. Only `paper`-preset runs on",
             "official data can be marked *reproduced*; `smoke` rows check the pipeline, not the paper.", ""]
    for family in sorted(set(board["family"])):
        part = board[board["family"] == family]
        lines += [f"## {family}", ""]
        for name in plots.get(family, []):
            lines.append(f"![{family} {Path(name).stem}](plots/{Path(name).name})")
        lines += ["", "| dataset | task | variant | model | metric | ours | n | paper | Δ | status | preset (steps) | source |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for row in part.to_dict("records"):
            ours = _fmt(row["ours"]) + (f" ± {_fmt(row['ours_std'])}" if row["seeds"] > 1 else "")
            capped = not _missing(row["max_steps"])
            steps = f"{row['preset']} ({int(row['steps'])} steps" + (
                f", capped at {int(row['max_steps'])}" if capped else "") + ")"
            source = ", ".join(str(row[k]) for k in ("paper", "table") if isinstance(row[k], str))
            lines.append(f"| {row['dataset']} | {row['task']} | {row['variant']} | {row['model']} | {row['metric']} "
                         f"({row['direction']}) | {ours} | {row['seeds']} | {_fmt(row['paper_value'])} | "
                         f"{_fmt(row['delta'])} | {row['status']} | {steps} | {source} |")
        lines.append("")
    return "\n".join(lines) + "\n"


def plot_family(board, records: list[dict[str, Any]], family: str, plots_dir: Path) -> list[str]:
    """Per family: paper vs ours (scatter, one point per row with a paper number) and learning curves."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    part = board[(board["family"] == family) & board["paper_value"].notna()]
    if len(part):
        figure, axis = plt.subplots(figsize=(5, 5))
        for model, rows in part.groupby("model"):
            axis.scatter(rows["paper_value"], rows["ours"], label=model, s=18)
        low = float(min(part["paper_value"].min(), part["ours"].min()))
        high = float(max(part["paper_value"].max(), part["ours"].max()))
        axis.plot([low, high], [low, high], color="grey", linewidth=0.8)
        axis.set(xlabel="paper", ylabel="ours", title=f"{family}: paper vs ours (all metrics)")
        axis.legend(fontsize=7)
        written.append(_save(figure, plots_dir / f"{family}_paper_vs_ours.png"))
    curves = [r for r in records if r["family"] == family and r["training"].get("curve")]
    if curves:
        figure, axis = plt.subplots(figsize=(7, 4))
        for record in curves:
            curve = record["training"]["curve"]
            label = f"{record['dataset']}/{record['task']}/{record['model']}/{record['variant']}"
            axis.plot([c["epoch"] for c in curve], [c["val_loss"] for c in curve], marker="o", markersize=2,
                      linewidth=0.8, label=label)
        axis.set(xlabel="epoch", ylabel="validation loss", title=f"{family}: learning curves", yscale="log")
        if len(curves) <= 12:
            axis.legend(fontsize=6)
        written.append(_save(figure, plots_dir / f"{family}_learning_curves.png"))
    plt.close("all")
    return written


def family_plots(records: list[dict[str, Any]], family: str, plots_dir: Path) -> list[str]:
    """Plots a family draws itself from its records (``Family.plots``), e.g. crystal property histograms."""
    from replibench.registry import FAMILIES, resolve

    if family not in FAMILIES:
        return []
    return list(resolve("family", family).plots([r for r in records if r["family"] == family], Path(plots_dir)))


def _save(figure, path: Path) -> str:
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=110)
    return str(path)


def report_stage(*, metrics_paths: list[Path], reference_paths: list[Path], results_out: Path,
                 leaderboard_out: Path, plots_dir: Path) -> None:
    import pyarrow as pa

    from replibench.data.tables import write_parquet_atomic
    from replibench.results import gather_results, read_metrics, write_results_table

    results = gather_results(metrics_paths)
    write_results_table(results, results_out)
    board = build_leaderboard(results, load_references(reference_paths))
    table = board.drop(columns=["run_ids", "tolerance"], errors="ignore")
    write_parquet_atomic(pa.Table.from_pandas(table, preserve_index=False),
                         Path(leaderboard_out).with_suffix(".parquet"))
    records = [read_metrics(p) for p in metrics_paths]
    Path(plots_dir).mkdir(parents=True, exist_ok=True)
    plots = {family: plot_family(board, records, family, Path(plots_dir)) + family_plots(records, family, Path(plots_dir))
             for family in sorted(set(board["family"]))}
    write_text_atomic(leaderboard_out, leaderboard_markdown(board, plots))
    print(f"{len(metrics_paths)} runs, {len(board)} leaderboard rows → {leaderboard_out}")
