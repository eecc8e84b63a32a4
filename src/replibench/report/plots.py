"""Figures of the leaderboard (matplotlib, Agg): per family "paper vs ours" and learning curves,
plus whatever figures the family itself adds through ``Family.report_plots``.

Every figure is described by a :class:`PlotRef`; ``match`` says which leaderboard rows it belongs
to, so the HTML leaderboard links each row to its own figures. matplotlib is imported inside the
functions that draw.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from replibench.atomic import atomic_path


@dataclass(frozen=True)
class PlotRef:
    """One figure: its file, a title, and the leaderboard rows it belongs to.

    ``match`` maps leaderboard columns (``dataset``, ``task``, ``model``, ``variant``, ``metric``)
    to values; a row links the figure when it agrees on every key. ``{}`` = every row of the family.
    """

    family: str
    path: Path
    title: str
    match: dict[str, str] = field(default_factory=dict)

    def belongs_to(self, row: dict[str, Any]) -> bool:
        return row.get("family") == self.family and all(row.get(k) == v for k, v in self.match.items())


@dataclass(frozen=True)
class ReportRun:
    """A run as the family plot hook sees it: the metrics.json record, its path, and the
    family's declared ``report_files`` found beside it (name → path)."""

    record: dict[str, Any]
    metrics_path: Path
    files: dict[str, Path]


def save_figure(figure, path: Path) -> Path:
    """Write ``figure`` as PNG atomically (fixed dpi, no timestamp metadata: same data, same bytes)."""
    import matplotlib.pyplot as plt

    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=100, metadata={"Software": None})
    plt.close(figure)
    return Path(path)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def safe_name(text: str) -> str:
    """A file-name-safe spelling of a leaderboard value (names are kebab-case already)."""
    return re.sub(r"[^a-z0-9.-]+", "-", text.lower()).strip("-") or "x"


def plot_paper_vs_ours(board, family: str, out_dir: Path) -> list[PlotRef]:
    """One panel per metric: the paper's number (x) against ours (y, mean ± seed std), one colour
    per model; hollow markers for rows that are not reproductions (smoke or generated data)."""
    rows = board[(board["family"] == family) & board["paper_value"].notna() & board["ours"].notna()]
    if not len(rows):
        return []
    plt = _pyplot()
    metrics = sorted(set(rows["metric"]))
    columns = min(3, len(metrics))
    lines = math.ceil(len(metrics) / columns)
    figure, axes = plt.subplots(lines, columns, figsize=(4.2 * columns, 4.0 * lines), squeeze=False)
    models = sorted(set(rows["model"]))
    colours = {model: plt.get_cmap("tab10")(index % 10) for index, model in enumerate(models)}
    for axis, metric in zip(axes.flat, metrics):
        part = rows[rows["metric"] == metric]
        labelled: set[str] = set()
        for model, points in part.groupby("model"):
            official = points["preset"].eq("paper") & points["data_origin"].eq("official")
            for chosen, face in ((points[official], colours[model]), (points[~official], "none")):
                if len(chosen):
                    axis.errorbar(chosen["paper_value"], chosen["ours"], yerr=chosen["ours_std"].fillna(0.0),
                                  fmt="o", markersize=5, color=colours[model], markerfacecolor=face,
                                  linewidth=0.8, label=None if model in labelled else model)
                    labelled.add(model)
        low = float(min(part["paper_value"].min(), part["ours"].min()))
        high = float(max(part["paper_value"].max(), part["ours"].max()))
        pad = (high - low) * 0.05 or abs(high) * 0.05 or 0.05
        axis.plot([low - pad, high + pad], [low - pad, high + pad], color="grey", linewidth=0.8, zorder=0)
        unit = part["unit"].dropna().iloc[0] if part["unit"].notna().any() else ""
        direction = part["direction"].dropna().iloc[0] if part["direction"].notna().any() else ""
        axis.set(xlabel=f"paper ({unit})" if unit else "paper", ylabel="ours",
                 title=f"{metric} ({'lower' if direction == 'min' else 'higher'} is better)")
        axis.legend(fontsize=7)
    for axis in list(axes.flat)[len(metrics):]:
        axis.set_visible(False)
    figure.suptitle(f"{family}: paper vs ours (hollow: smoke/generated data, not a reproduction)", fontsize=10)
    path = save_figure(figure, Path(out_dir) / "paper_vs_ours.png")
    return [PlotRef(family, path, f"{family}: paper vs ours")]


def plot_learning_curves(records: list[dict[str, Any]], family: str, out_dir: Path) -> list[PlotRef]:
    """Per (dataset, task) of the family: validation loss (else training loss) per evaluation
    point of every run's training curve, one colour per model, one line per variant and seed."""
    plt = _pyplot()
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for record in records:
        if record["family"] == family and record["training"].get("curve"):
            groups.setdefault((record["dataset"], record["task"]), []).append(record)
    written = []
    for (dataset, task), members in sorted(groups.items()):
        figure, axis = plt.subplots(figsize=(7, 4))
        models = sorted({r["model"] for r in members})
        colours = {model: plt.get_cmap("tab10")(index % 10) for index, model in enumerate(models)}
        labelled: set[str] = set()
        named: set[tuple[str, str]] = set()
        positive = True
        for record in sorted(members, key=lambda r: (r["model"], r["variant"], r["seed"])):
            curve = record["training"]["curve"]
            key = "val_loss" if any(point.get("val_loss") is not None for point in curve) else "train_loss"
            points = [(point.get("step", point.get("epoch")), point[key]) for point in curve
                      if point.get(key) is not None]
            if not points:
                continue
            positive &= all(y > 0 for _, y in points)
            axis.plot(*zip(*points), marker="o", markersize=2, linewidth=0.8, color=colours[record["model"]],
                      label=None if record["model"] in labelled else record["model"])
            labelled.add(record["model"])
            if (record["model"], record["variant"]) not in named:  # name each variant once, at its line's end
                named.add((record["model"], record["variant"]))
                axis.annotate(record["variant"], points[-1], fontsize=6, color=colours[record["model"]],
                              xytext=(3, 0), textcoords="offset points", va="center")
        if not labelled:
            plt.close(figure)
            continue
        axis.set(xlabel="training step", ylabel="validation loss (train loss where none)",
                 title=f"{family}/{dataset}/{task}: learning curves (one line per variant and seed)",
                 yscale="log" if positive else "linear")
        axis.legend(fontsize=7)
        path = save_figure(figure, Path(out_dir) / f"learning_curves_{safe_name(dataset)}_{safe_name(task)}.png")
        written.append(PlotRef(family, path, f"{dataset}/{task}: learning curves", {"dataset": dataset, "task": task}))
    return written


def family_plots(*, board, records: list[dict[str, Any]], metrics_paths: list[Path], family: str,
                 plots_dir: Path, without_files: frozenset[Path] = frozenset()) -> list[PlotRef]:
    """Every figure of one family in ``plots_dir/<family>/``: paper vs ours, learning curves, and
    the family's own (``Family.report_plots``, with the ``report_files`` beside each metrics.json).
    Runs in ``without_files`` (recorded runs: only their metrics.json is committed) are left out of
    the family's own figures."""
    from replibench.errors import DataError
    from replibench.registry import FAMILIES, resolve

    out_dir = Path(plots_dir) / family
    out_dir.mkdir(parents=True, exist_ok=True)
    plots = plot_paper_vs_ours(board, family, out_dir) + plot_learning_curves(records, family, out_dir)
    if family not in FAMILIES:
        return plots
    family_object = resolve("family", family)
    runs = []
    for record, path in zip(records, metrics_paths):
        if record["family"] != family or Path(path) in without_files:
            continue
        files = {name: Path(path).parent / name for name in family_object.report_files}
        missing = [str(p) for p in files.values() if not p.is_file()]
        if missing:
            raise DataError(f"{path}: the {family} report plots need {missing} beside it (Family.report_files)")
        runs.append(ReportRun(record, Path(path), files))
    extra = family_object.report_plots(runs, board[board["family"] == family], out_dir)
    for plot in extra:
        if not isinstance(plot, PlotRef) or plot.family != family or not Path(plot.path).is_file():
            raise DataError(f"{family}: report_plots must return PlotRef(family={family!r}, ...) of written "
                            f"files; found {plot!r}")
    return plots + list(extra)
