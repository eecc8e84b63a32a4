"""``leaderboard.md``: the leaderboard as GitHub-readable Markdown, one section per family.

Only values that follow from the metrics and the references are printed (no wall times, dates or
commits), so the file changes exactly when a number, a row or a paper reference changes — CI opens
a leaderboard pull request on that, not on every rerun.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from replibench.report.claims import claims_markdown
from replibench.report.format import (REPRODUCED, RULE, SMOKE, SUMMARY_CLASSES, SUPERSEDED_COLUMNS, SUPERSEDED_INTRO,
                                      SUPERSEDED_TITLE, family_summary, format_hours, format_number, format_ours,
                                      format_steps, format_view_cell, superseded_cells)

#: the mark of each status class in the Markdown paper tables (GitHub shows no colours)
MARKS = {"reproduced": "✅", "not-reproduced": "❌", "not-a-reproduction": "🟡", "not-run": "⬜",
         "no-value": "➖", "no-paper": ""}


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _link(path: Path, base: Path | None) -> str:
    return Path(os.path.relpath(path, base)).as_posix() if base is not None else Path(path).as_posix()


def format_runs(row: dict[str, Any]) -> str:
    """Where the row's runs ran and came from; compute only for recorded runs (a local run's wall
    time changes on every rerun, and this file must not: it is in leaderboard.html)."""
    text = f"{row['origins'] or '–'}: {row['devices'] or '–'}"
    if row["recorded_gpu_hours"] or row["recorded_cpu_hours"]:
        text += f", {format_hours(row['recorded_gpu_hours'])} GPU-h, {format_hours(row['recorded_cpu_hours'])} CPU-h"
    return text


def views_summary_markdown(views: list[dict[str, Any]]) -> list[str]:
    """One line per paper table: cells by status and the compute of its recorded runs."""
    # headings carry their mark after the word, so "| reproduced |" stays a status cell of the long table only
    marks = {**MARKS, "smoke": MARKS["not-a-reproduction"], "not-real-data": MARKS["not-a-reproduction"]}
    lines = ["| paper table | paper numbers | " + " | ".join(f"{name} {marks[kind]}" for kind, name in SUMMARY_CLASSES)
             + " | recorded compute |", "|---" * (len(SUMMARY_CLASSES) + 3) + "|"]
    for view in views:
        counts = " | ".join(str(view["counts"][kind]) for kind, _ in SUMMARY_CLASSES)
        lines.append(f"| [{_cell(view['title'])}](#{view['anchor']}) | {view['paper_numbers']} | {counts} | "
                     f"{format_hours(view['recorded_gpu_hours'])} GPU-h, "
                     f"{format_hours(view['recorded_cpu_hours'])} CPU-h |")
    return lines + [""]


def view_markdown(view: dict[str, Any]) -> list[str]:
    """The paper's table: a row per row label, a column per column label, each cell
    ``paper | ours | Δ`` and the status mark."""
    lines = [f'<a id="{view["anchor"]}"></a>', "", f"### {view['title']}", "",
             f"Paper{'s' if len(view['papers']) > 1 else ''}: {'; '.join(_cell(p) for p in view['papers'])}. "
             "Each cell: paper \\| ours \\| Δ, then ✅ reproduced, ❌ not reproduced, 🟡 smoke run or generated "
             "data, "
             "⬜ not yet run, ➖ no value.", "",
             "| | " + " | ".join(_cell(label) for label in view["column_labels"]) + " |",
             "|---" * (len(view["column_labels"]) + 1) + "|"]
    for r, label in enumerate(view["row_labels"]):
        cells = []
        for c in range(len(view["column_labels"])):
            cell = view["cells"].get((r, c))
            paper, ours, delta = format_view_cell(cell)
            cells.append("" if cell is None else
                         f"{paper} \\| {_cell(ours)} \\| {delta} {MARKS[cell['kind']]}".rstrip())
        lines.append(f"| {_cell(label)} | " + " | ".join(cells) + " |")
    return lines + [""]


def leaderboard_markdown(board, plots: dict[str, list], missing: dict[str, list[dict[str, Any]]] | None = None,
                         base: Path | None = None, views: list[dict[str, Any]] | None = None,
                         superseded: list[dict[str, Any]] | None = None,
                         claims: list[dict[str, Any]] | None = None) -> str:
    """GitHub-readable leaderboard: the papers' own tables (``views``, from
    :func:`replibench.report.paper_views`), then the long table grouped by family, with the family's
    figures linked (paths relative to ``base``, the folder the Markdown file is written to) and its
    sources listed."""
    missing = missing or {}
    views = views or []
    lines = ["# replibench leaderboard", "",
             "Ours = mean ± sample std over seeds (n = seeds). Δ = ours − paper. " + RULE,
             f"`smoke` rows (\"{SMOKE}\") check the pipeline, not the paper, and never count.",
             "Rows marked * are derived by the family from other rows (e.g. ETT's mean over the four horizons).",
             "runs: the origin and device of the runs (local: this `snakemake`; recorded: committed under "
             "`recorded/`).",
             "The same tables, sortable and with every run's provenance and compute: `leaderboard.html`.", ""]
    if views:
        lines += ["## The papers' tables", ""] + views_summary_markdown(views)
        for view in views:
            lines += view_markdown(view)
    families = sorted(set(board["family"]) | set(missing))
    lines += ["| family | rows | reproduced rows | paper numbers without a run |", "|---|---|---|---|"]
    for family in families:
        part = board[board["family"] == family]
        lines.append(f"| [{family}](#{family}) | {len(part)} | {int((part['status'] == REPRODUCED).sum())} "
                     f"| {len(missing.get(family, []))} |")
    lines.append("")
    for family in families:
        part = board[board["family"] == family]
        lines += [f"## {family}", "", family_summary(part), ""]
        for plot in plots.get(family, []):
            lines.append(f"* [{plot.title}]({_link(plot.path, base)})")
        if plots.get(family):
            lines.append("")
            lines += [f"![{plot.title}]({_link(plot.path, base)})" for plot in plots[family] if not plot.match]
            lines.append("")
        sources: dict[tuple, int] = {}
        table = ["| dataset | task | variant | model | metric | ours | n | paper | Δ | tol. | status | preset | runs "
                 "| ref |",
                 "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for row in part.to_dict("records"):
            reference = ""
            if isinstance(row["paper"], str):
                key = (row["paper"], row["table"], row["source"], row["averaging"])
                reference = f"[{sources.setdefault(key, len(sources) + 1)}]"
            variant = row["variant"] + ("*" if row["derived"] else "")
            table.append(" | ".join(["", row["dataset"], row["task"], variant, row["model"],
                                     f"{row['metric']} ({row['direction']})", format_ours(row), str(row["seeds"]),
                                     format_number(row["paper_value"]), format_number(row["delta"], 3),
                                     row["band_text"] if isinstance(row["paper"], str) else "–",
                                     row["status"], format_steps(row), _cell(format_runs(row)), reference,
                                     ""]).strip())
        lines += table + [""]
        for (paper, table_name, source, averaging), number in sources.items():
            lines.append(f"{number}. {_cell(paper)}, {_cell(table_name)} ({_cell(source)}); "
                         f"averaging: {_cell(averaging)}")
        if sources:
            lines.append("")
        if missing.get(family):
            files = ", ".join(sorted({f"`{entry['reference_file']}`" for entry in missing[family]}))
            lines += [f"{len(missing[family])} paper numbers of {files} have no run in this table "
                      "(the `paper` preset runs them).", ""]
    lines += claims_markdown(claims or [])
    lines += superseded_markdown(superseded or [])
    return "\n".join(lines).rstrip("\n") + "\n"


def superseded_markdown(rows: list[dict[str, Any]]) -> list[str]:
    """Earlier recordings of runs recorded again (``report.superseded_rows``): listed, not counted."""
    if not rows:
        return []
    lines = [f"## {SUPERSEDED_TITLE}", "", SUPERSEDED_INTRO, "",
             "| " + " | ".join(SUPERSEDED_COLUMNS) + " |", "|---" * len(SUPERSEDED_COLUMNS) + "|"]
    for row in rows:
        cells = [_cell(text) for text in superseded_cells(row)] + [f"[json]({row['path']})"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines + [""]
